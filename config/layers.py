"""The layers settings are read from, each raw value with the field it came from (`server.port`,
`PORTLOG_PORT`, `--port`), and their reading as typed values that name that field in a
`ConfigError`. config/settings.py turns them into `Settings`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from domain.configuration import KEYS as CONFIGURATION_KEYS
from domain.configuration import env_name


class ConfigError(ValueError):
    """A bad setting: `field` is where it came from (a file key, a variable or a flag)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class _Raw(NamedTuple):
    value: Any
    field: str


ENV_KEYS = {
    "PORTLOG_HOST": "server.host", "PORTLOG_PORT": "server.port", "PORTLOG_WORKERS": "server.workers",
    "PORTLOG_EXTERNAL_URL": "server.external_url",
    "PORTLOG_LOG_LEVEL": "server.log_level", "PORTLOG_ACCESS_LOG": "server.access_log",
    "PORTLOG_LOG_FORMAT": "log.format", "PORTLOG_LOG_LEVELS": "log.levels",
    "PORTLOG_MAX_BODY_BYTES": "server.max_body_bytes", "PORTLOG_TRUSTED_PROXIES": "server.trusted_proxies",
    "PORTLOG_HEADER_TIMEOUT_SECONDS": "server.header_timeout_seconds",
    "PORTLOG_BODY_TIMEOUT_SECONDS": "server.body_timeout_seconds",
    "PORTLOG_DATA_DIR": "data_dir", "PORTLOG_ADMIN_PASSWORD": "admin_password",
    "PORTLOG_DATABASE_URL": "database.url", "PORTLOG_READ_MODELS_URL": "database.read_models_url",
    "PORTLOG_STORAGE_URL": "storage.url",
    "PORTLOG_NATS_URL": "events.nats_url", "PORTLOG_EVENT_SOURCE": "events.source",
    "PORTLOG_WEBHOOK_RETRY_SECONDS": "events.webhook_retry_seconds",
    "PORTLOG_PULL_RECORD_SECONDS": "events.pull_record_seconds",
    "PORTLOG_GC_GRACE_SECONDS": "gc.grace_period_seconds",
    "PORTLOG_CACHE_AGGREGATES": "cache.aggregates", "PORTLOG_CACHE_MANIFEST_BYTES": "cache.manifest_bytes",
    "PORTLOG_CACHE_UPLOAD_HASHERS": "cache.upload_hashers",
    "PORTLOG_SECRET_KEY": "security.secret_key",
    "PORTLOG_OUTBOUND_ALLOW": "security.outbound_allow", "PORTLOG_OUTBOUND_DENY": "security.outbound_deny",
    "PORTLOG_REPLICATION_WORKERS": "replication.workers",
    "PORTLOG_REPLICATION_LEASE_SECONDS": "replication.lease_seconds",
    "PORTLOG_FOLLOW_URL": "follow.url", "PORTLOG_FOLLOW_USERNAME": "follow.username",
    "PORTLOG_FOLLOW_PASSWORD": "follow.password", "PORTLOG_FOLLOW_PROJECTS": "follow.projects",
    "PORTLOG_METRICS_ENABLED": "metrics.enabled", "PORTLOG_METRICS_REQUIRE_AUTH": "metrics.require_auth",
    "PORTLOG_METRICS_PORT": "metrics.port", "PORTLOG_METRICS_HOST": "metrics.host",
    # The system configuration's keys (domain/configuration.py), pinned by the operator.
    **{env_name(key): f"configurations.{key}" for key, spec in CONFIGURATION_KEYS.items() if spec.editable},
}
_FLAG_KEYS = {"host": "server.host", "port": "server.port", "workers": "server.workers",
              "log_level": "server.log_level", "access_log": "server.access_log", "data_dir": "data_dir",
              "follow": "follow.url", "follow_projects": "follow.projects"}
FILE_TOP_LEVEL = ("data_dir", "admin_password")
FILE_SECTIONS = {
    "server": ("host", "port", "workers", "log_level", "access_log", "external_url", "max_body_bytes",
               "header_timeout_seconds", "body_timeout_seconds", "trusted_proxies"),
    "log": ("format", "levels"),
    "database": ("url", "read_models_url"),
    "storage": ("url", "type", "root", "endpoint", "bucket", "access_key", "secret_key", "region", "secure",
                "redirect", "upload_max_age_seconds"),
    "events": ("nats_url", "source", "webhook_retry_seconds", "pull_record_seconds"),
    "gc": ("grace_period_seconds",),
    "cache": ("aggregates", "manifest_bytes", "upload_hashers"),
    "security": ("secret_key", "outbound_allow", "outbound_deny"),
    "replication": ("workers", "lease_seconds"),
    "follow": ("url", "username", "password", "projects"),
    "metrics": ("enabled", "require_auth", "port", "host"),
    "configurations": tuple(key for key, spec in CONFIGURATION_KEYS.items() if spec.editable),
}
# Where the blobs are: a storage URL in a higher layer replaces all of these from lower layers.
_STORAGE_LOCATION = tuple(f"storage.{key}" for key in
                          ("url", "type", "root", "endpoint", "bucket", "access_key", "secret_key", "region",
                           "secure"))


def _config_file_location(environ: Mapping[str, str], flag: str | Path | None) -> tuple[Path | None, str]:
    if flag:
        return Path(flag), "--config"
    if environ.get("PORTLOG_CONFIG"):
        return Path(environ["PORTLOG_CONFIG"]), "PORTLOG_CONFIG"
    return None, ""


def _file_layer(path: Path, field_name: str) -> dict[str, _Raw]:
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as error:
        raise ConfigError(field_name, f"cannot read {path}: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(field_name, f"{path} is not valid TOML: {error}") from None
    layer = _flatten(document, path)
    if "storage.url" in layer:
        others = [key for key in _STORAGE_LOCATION[1:] if key in layer]
        if others:
            raise ConfigError("storage.url", f"give either url or the keys {', '.join(others)} in [storage], "
                                             f"not both")
    return layer


def _flatten(document: dict[str, Any], path: Path) -> dict[str, _Raw]:
    known_top = (*FILE_TOP_LEVEL, *FILE_SECTIONS)
    layer = {}
    for key, value in document.items():
        if key in FILE_TOP_LEVEL:
            layer[key] = _Raw(value, key)
        elif key in FILE_SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(key, f"must be a table ([{key}])")
            for name, item in value.items():
                if name not in FILE_SECTIONS[key]:
                    raise ConfigError(f"{key}.{name}", f"unknown key in {path} "
                                                       f"(known in [{key}]: {', '.join(FILE_SECTIONS[key])})")
                layer[f"{key}.{name}"] = _Raw(item, f"{key}.{name}")
        else:
            raise ConfigError(key, f"unknown key in {path} (known: {', '.join(known_top)})")
    return layer


def _env_layer(environ: Mapping[str, str]) -> dict[str, _Raw]:
    # An empty variable counts as not set (PORTLOG_ADMIN_PASSWORD= has always meant "generate one").
    return {key: _Raw(environ[name], name) for name, key in ENV_KEYS.items() if environ.get(name)}


def _flag_layer(flags: dict[str, Any]) -> dict[str, _Raw]:
    unknown = set(flags) - set(_FLAG_KEYS)
    if unknown:
        raise TypeError(f"unknown settings flags: {', '.join(sorted(unknown))}")
    return {_FLAG_KEYS[name]: _Raw(value, "--" + name.replace("_", "-"))
            for name, value in flags.items() if value is not None}


def _merge(layers: list[dict[str, _Raw]]) -> dict[str, _Raw]:
    merged: dict[str, _Raw] = {}
    for layer in layers:
        if "storage.url" in layer:
            for key in _STORAGE_LOCATION:
                merged.pop(key, None)
        merged.update(layer)
    return merged


# --- typed values ---

class Values:
    def __init__(self, raw: dict[str, _Raw]) -> None:
        self.raw = raw

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def field(self, key: str) -> str:
        return self.raw[key].field if key in self.raw else key

    def text(self, key: str, default: str | None = None) -> str | None:
        if key not in self.raw:
            return default
        value, name = self.raw[key]
        if not isinstance(value, str):
            raise ConfigError(name, f"must be a string, not {show(value)}")
        return value

    def required_text(self, key: str, why: str) -> str:
        value = self.text(key)
        if not value:
            raise ConfigError(self.field(key), f"missing ({why})")
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int | None = None) -> int:
        if key not in self.raw:
            return default
        return to_integer(*self.raw[key], minimum=minimum, maximum=maximum)

    def boolean(self, key: str, default: bool) -> bool:
        return to_boolean(*self.raw[key]) if key in self.raw else default


_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def to_boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    raise ConfigError(name, f"must be true or false, not {show(value)}")


def to_integer(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer, not {show(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(name, f"must be {bounds}, not {value}")
    return value


def show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"{type(value).__name__} {value!r}"


def read(environ: Mapping[str, str], config_file: str | Path | None,
         flags: dict[str, Any]) -> tuple[Values, Path | None]:
    """The merged layers (flags over `environ` over the config file), and the config file's path."""
    file_path, file_field = _config_file_location(environ, config_file)
    layers = [_file_layer(file_path, file_field) if file_path else {}, _env_layer(environ), _flag_layer(flags)]
    return Values(_merge(layers)), file_path
