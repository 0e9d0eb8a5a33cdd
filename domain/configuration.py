"""The system configuration an administrator edits: Harbor's `/api/v2.0/configurations` keys
(authentication, LDAP, OIDC, who may create projects, robots' default lifetime) and two of
Portlog's own (`ldap_start_tls`, `ldap_ca_file`).

A key's value comes from, in order: the operator (the config file's `[configurations]` table or
a `PORTLOG_<KEY>` variable: pinned, not editable through the API), the last value set through
the API (the aggregate here, topic `domain.configuration:SystemConfiguration.<Event>`, id
`uuid5("/configurations")`), or its default. Secret values are sealed (encrypted) before they go
into an event, and no API answer ever carries them. Events are a public schema (fields only
added, with defaults).
"""

from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass
from typing import Any, Callable, Mapping
from uuid import NAMESPACE_URL, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import ConflictError, InvalidInputError
from domain.robot import ROBOT_PREFIX

DB_AUTH, LDAP_AUTH, OIDC_AUTH = "db_auth", "ldap_auth", "oidc_auth"
LDAP_SCOPES = (0, 1, 2)  # base, one level, subtree: Harbor's numbers


@dataclass(frozen=True)
class ConfigKey:
    kind: type  # bool, int or str
    default: Any
    choices: tuple = ()  # the values allowed, when only some are
    secret: bool = False  # write-only: sealed in events, never in answers
    editable: bool = True  # False: Portlog shows it but nobody sets it
    minimum: int | None = None
    maximum: int | None = None
    pattern: str = ""  # a non-empty text value must match it whole
    shape: str = ""  # what the pattern asks, for the refusal


KEYS: dict[str, ConfigKey] = {
    "auth_mode": ConfigKey(str, DB_AUTH, choices=(DB_AUTH, LDAP_AUTH, OIDC_AUTH)),
    "ldap_url": ConfigKey(str, "", pattern=r"ldaps?://[^\s/?#]+/?", shape="ldap://HOST[:PORT] or ldaps://HOST[:PORT]"),
    "ldap_base_dn": ConfigKey(str, ""),
    "ldap_search_dn": ConfigKey(str, ""),
    "ldap_search_password": ConfigKey(str, "", secret=True),
    "ldap_filter": ConfigKey(str, ""),
    "ldap_uid": ConfigKey(str, "uid"),
    "ldap_scope": ConfigKey(int, 2, choices=LDAP_SCOPES),
    "ldap_timeout": ConfigKey(int, 5, minimum=1, maximum=300),
    "ldap_verify_cert": ConfigKey(bool, True),
    "ldap_start_tls": ConfigKey(bool, False),
    "ldap_ca_file": ConfigKey(str, ""),
    "ldap_group_base_dn": ConfigKey(str, ""),
    "ldap_group_search_filter": ConfigKey(str, ""),
    "ldap_group_attribute_name": ConfigKey(str, "cn"),
    "ldap_group_admin_dn": ConfigKey(str, ""),
    "ldap_group_membership_attribute": ConfigKey(str, "memberof"),
    "ldap_group_search_scope": ConfigKey(int, 2, choices=LDAP_SCOPES),
    "oidc_name": ConfigKey(str, ""),
    "oidc_endpoint": ConfigKey(str, "", pattern=r"https?://[^\s?#]+", shape="an http(s) URL (the issuer)"),
    "oidc_client_id": ConfigKey(str, ""),
    "oidc_client_secret": ConfigKey(str, "", secret=True),
    "oidc_scope": ConfigKey(str, "openid,profile,email"),
    "oidc_groups_claim": ConfigKey(str, ""),
    "oidc_admin_group": ConfigKey(str, ""),
    "oidc_user_claim": ConfigKey(str, ""),
    "oidc_verify_cert": ConfigKey(bool, True),
    "oidc_auto_onboard": ConfigKey(bool, False),
    "project_creation_restriction": ConfigKey(str, "everyone", choices=("everyone", "adminonly")),
    "self_registration": ConfigKey(bool, False, choices=(False,)),  # Portlog has no sign-up page
    "robot_token_duration": ConfigKey(int, 30, minimum=1, maximum=100 * 365),
    "robot_name_prefix": ConfigKey(str, ROBOT_PREFIX, editable=False),
    "read_only": ConfigKey(bool, False, editable=False),
    "quota_per_project_enable": ConfigKey(bool, True, editable=False),
    "storage_per_project": ConfigKey(int, -1, editable=False),
}
MAX_TEXT = 4096
DEFAULT_SOURCE, API_SOURCE = "default", "api"


def env_name(key: str) -> str:
    """The variable that pins `key`: PORTLOG_LDAP_URL for ldap_url."""
    return "PORTLOG_" + key.upper()


def parse_value(key: str, value: object, field: str | None = None) -> Any:
    """`value` as `key`'s type, or InvalidInputError naming `field` (the key by default). Text from
    a variable or a file ("true", "2") is read as the key's type too."""
    spec, field = KEYS.get(key), field or key
    if spec is None:
        raise InvalidInputError(f"unknown configuration key {key!r}", {"key": key})
    parsed = _typed(spec, value)
    if parsed is None:
        raise InvalidInputError(f"{field} must be {_kind_name(spec)}", {"key": key, "value": _shown(spec, value)})
    if spec.choices and parsed not in spec.choices:
        allowed = ", ".join(str(choice).lower() if isinstance(choice, bool) else str(choice) for choice in spec.choices)
        raise InvalidInputError(f"{field} must be one of {allowed}", {"key": key, "value": _shown(spec, parsed)})
    if spec.pattern and parsed and not re.fullmatch(spec.pattern, parsed):
        raise InvalidInputError(f"{field} must be {spec.shape}", {"key": key, "value": parsed})
    if spec.kind is int and ((spec.minimum is not None and parsed < spec.minimum)
                             or (spec.maximum is not None and parsed > spec.maximum)):
        raise InvalidInputError(f"{field} must be from {spec.minimum} to {spec.maximum}", {"key": key, "value": parsed})
    return parsed


def _typed(spec: ConfigKey, value: object) -> Any:
    if spec.kind is bool:
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else None
        return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(text)
    if spec.kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isascii() and value.strip().lstrip("-").isdigit():
            return int(value.strip()) if len(value.strip()) <= 12 else None
        return None
    if isinstance(value, str) and len(value) <= MAX_TEXT and "\x00" not in value:
        return value.strip() if not spec.secret else value
    return None


def _kind_name(spec: ConfigKey) -> str:
    return {bool: "true or false", int: "a whole number"}.get(spec.kind, f"text of at most {MAX_TEXT} characters")


def _shown(spec: ConfigKey, value: object) -> object:
    return "***" if spec.secret else value


@dataclass(frozen=True)
class Configuration:
    """The effective configuration: every key's value and where it came from. Secret values are in
    clear here, for the adapters that use them; `public()` is what answers may show."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]  # key -> "default", "api", "config file" or the variable's name

    def __getattr__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None

    def source(self, key: str) -> str:
        return self.sources[key]

    def pinned(self, key: str) -> bool:
        return self.sources[key] not in (DEFAULT_SOURCE, API_SOURCE)

    def public(self) -> dict[str, dict]:
        """Harbor's shape, `{key: {"value", "editable"}}`, plus `source`; secrets left out (as
        Harbor does), with `has_value` telling whether one is set."""
        shown = {}
        for key, spec in KEYS.items():
            entry = {"editable": spec.editable and not self.pinned(key), "source": self.sources[key]}
            if spec.secret:
                entry["has_value"] = bool(self.values[key])
            else:
                entry["value"] = self.values[key]
            shown[key] = entry
        return shown


def effective(pinned: Mapping[str, tuple[Any, str]], stored: Mapping[str, Any],
              open_secret: Callable[[str], str]) -> Configuration:
    """`pinned`: key -> (value, where the operator set it); `stored`: key -> value set through the
    API (secrets sealed); `open_secret` unseals one."""
    values, sources = {}, {}
    for key, spec in KEYS.items():
        if key in pinned:
            values[key], sources[key] = pinned[key]
        elif key in stored and spec.editable:
            value = stored[key]
            values[key], sources[key] = (open_secret(value) if spec.secret and value else value), API_SOURCE
        else:
            values[key], sources[key] = spec.default, DEFAULT_SOURCE
    return Configuration(values, sources)


class SystemConfiguration(Aggregate):
    class Event(Aggregate.Event):
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: SystemConfiguration) -> None:
            pass

    class Created(Event, Aggregate.Created):
        pass

    class Changed(Event):
        """The keys set by this change and their new values (secrets sealed)."""

        values: dict

        def apply(self, configuration: SystemConfiguration) -> None:
            configuration.values.update(self.values)

    ID = uuid5(NAMESPACE_URL, "/configurations")

    def __init__(self) -> None:
        self.values: dict = {}

    @classmethod
    def create(cls, ctx: RequestContext) -> SystemConfiguration:
        return cls._create(cls.Created, id=cls.ID, **ctx.event_fields())

    def change(self, values: dict, ctx: RequestContext) -> None:
        changed = {key: value for key, value in values.items() if self.values.get(key, KEYS[key].default) != value
                   or KEYS[key].secret}
        if changed:
            self.trigger_event(self.Changed, values=changed, **ctx.event_fields())


class Configurations:
    """The commands: set keys through the API. `current()` gives the effective configuration;
    `seal` encrypts a secret; `other_users_exist()` says whether anyone but `admin` has an account
    (the authentication mode cannot change then: their accounts belong to the old mode)."""

    def __init__(self, app, current: Callable[[], Configuration], seal: Callable[[str], str],
                 other_users_exist: Callable[[], bool]) -> None:
        self.app = app
        self.current = current
        self.seal = seal
        self.other_users_exist = other_users_exist

    def update(self, changes: object, ctx: RequestContext) -> int | None:
        if not isinstance(changes, dict) or not changes:
            raise InvalidInputError("the body is an object of configuration keys and their values")
        current = self.current()
        values = {}
        for key, value in changes.items():
            parsed = parse_value(key, value)
            if not KEYS[key].editable:
                raise InvalidInputError(f"{key} is not editable", {"key": key})
            if current.pinned(key):
                raise InvalidInputError(f"{key} is set by the operator ({current.source(key)}); change it there",
                                        {"key": key, "source": current.source(key)})
            values[key] = self.seal(parsed) if KEYS[key].secret and parsed else parsed
        mode = values.get("auth_mode", current.auth_mode)
        if mode != current.auth_mode and self.other_users_exist():
            raise ConflictError("the authentication mode can change only while no user other than admin "
                                "exists", {"auth_mode": current.auth_mode})
        return self.app.update(SystemConfiguration.ID, lambda c: c.change(values, ctx),
                               create=lambda: SystemConfiguration.create(ctx))
