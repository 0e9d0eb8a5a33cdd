"""The message catalogs: every key the scripts use exists in English, and Simplified Chinese
translates every English message (no browser needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "api" / "ui" / "static"
LANGUAGES = ("en", "zh-CN")
# t("catalog.key") and t(`catalog.${…}`) — the latter cannot be checked and is skipped.
LITERAL_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+)\.([a-z0-9_]+)["']""")


PLURAL_CATEGORIES = {"zero", "one", "two", "few", "many", "other"}  # Intl.PluralRules'


def catalog(language: str, name: str) -> dict[str, str | dict[str, str]]:
    return json.loads((STATIC / "i18n" / language / f"{name}.json").read_text(encoding="utf-8"))


def forms(message: str | dict[str, str]) -> dict[str, str]:
    """A message's plural forms ({"other": text} for a plain message)."""
    return message if isinstance(message, dict) else {"other": message}


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def catalog_names(language: str) -> set[str]:
    return {path.stem for path in (STATIC / "i18n" / language).glob("*.json")}


def test_both_languages_have_the_same_catalogs_and_keys():
    assert catalog_names("en") == catalog_names("zh-CN")
    for name in catalog_names("en"):
        english, chinese = catalog("en", name), catalog("zh-CN", name)
        assert set(english) == set(chinese), f"{name}: keys differ: {set(english) ^ set(chinese)}"
        for key, message in chinese.items():
            english_forms = forms(english[key])
            assert all(text.strip() for text in forms(message).values()), f"zh-CN/{name}.{key} is empty"
            assert "other" in forms(message), f"zh-CN/{name}.{key} has no 'other' form"
            assert placeholders(forms(message)["other"]) == placeholders(english_forms["other"]), \
                f"zh-CN/{name}.{key} placeholders"


def test_plural_messages_have_their_forms_and_a_count():
    """A message that shows a count is an object of plural forms, chosen by {count}."""
    plurals = 0
    for language in LANGUAGES:
        for name in catalog_names(language):
            for key, message in catalog(language, name).items():
                if not isinstance(message, dict):
                    continue
                plurals += 1
                assert set(message) <= PLURAL_CATEGORIES and "other" in message, f"{language}/{name}.{key}"
                assert "count" in placeholders(message["other"]), f"{language}/{name}.{key} counts nothing"
                if language == "en":
                    assert "one" in message, f"en/{name}.{key} needs its singular"
    assert plurals >= 14


def test_no_plain_message_puts_a_number_before_a_counted_noun():
    """"1 registry endpoints": such messages must be plural ones."""
    counted = re.compile(r"\{\w+\} (?:[A-Za-z]+ )?(?:runs|endpoints|policies|executions|manifests|blobs|artifacts|"
                         r"days|tasks|entries|repositories|members|projects)\b")
    found = [f"{name}.{key}" for name in catalog_names("en") for key, message in catalog("en", name).items()
             if isinstance(message, str) and counted.search(message)]
    assert not found, found


def test_every_key_the_scripts_use_is_in_the_english_catalogs():
    missing = []
    for script in (STATIC / "js").rglob("*.js"):
        for name, key in LITERAL_KEY.findall(script.read_text(encoding="utf-8")):
            if name not in catalog_names("en") or key not in catalog("en", name):
                missing.append(f"{script.name}: {name}.{key}")
    assert not missing, missing


def test_the_chinese_catalogs_are_in_chinese():
    for name in catalog_names("zh-CN"):
        messages = [forms(message)["other"] for message in catalog("zh-CN", name).values()]
        chinese = [text for text in messages if re.search(r"[\u4e00-\u9fff]", text)]
        assert len(chinese) >= len(messages) * 0.6, f"zh-CN/{name} looks untranslated"


def recorded_operations() -> set[str]:
    """Every audit operation the event catalog can produce: "<kind>.<event in snake case>"."""
    from domain.event_catalog import KINDS, _snake

    return {f"{kind}.{_snake(name)}" for aggregate, kind in KINDS.items()
            for name, member in vars(aggregate).items()
            if isinstance(member, type) and issubclass(member, aggregate.Event) and member is not aggregate.Event}


def test_the_audit_pages_operation_suggestions_are_the_recorded_operations():
    script = (STATIC / "js" / "pages" / "audit.js").read_text(encoding="utf-8")
    listed = re.search(r"const OPERATIONS = \[(.*?)\];", script, re.S).group(1)
    suggested = set(re.findall(r'"([a-z_]+\.[a-z_]+)"', listed))
    assert suggested == recorded_operations()
