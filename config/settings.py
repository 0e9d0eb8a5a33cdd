"""Run-time settings, from four layers: command-line flags win over PORTLOG_* environment
variables, which win over the TOML config file (`--config FILE` or PORTLOG_CONFIG), which wins
over the embedded defaults (SQLite and filesystem blobs under ./data). docs/configuration.md
lists every setting.

Every value remembers where it came from (`server.port`, `PORTLOG_PORT`, `--port`), so a bad one
is reported as a `ConfigError` naming that field.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
DEFAULT_UPLOAD_MAX_AGE_SECONDS = 7 * 24 * 3600  # the same week CNCF Distribution waits before purging
MASK = "***"


class ConfigError(ValueError):
    """A bad setting: `field` is where it came from (a file key, a variable or a flag)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class PostgresDsn:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    connect_timeout: int | None = None
    pool_size: int | None = None  # connections of the event store's pool in each process

    def url(self, scheme: str = "postgresql", *, masked: bool = False, with_pool_size: bool = True) -> str:
        userinfo = quote(self.user, safe="")
        if self.password:
            userinfo += ":" + (MASK if masked else quote(self.password, safe=""))
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = {"connect_timeout": self.connect_timeout}
        if with_pool_size:
            query["pool_size"] = self.pool_size
        query_text = urlencode({k: v for k, v in query.items() if v is not None})
        return (f"{scheme}://{userinfo + '@' if userinfo else ''}{host}:{self.port}/{quote(self.dbname, safe='')}"
                + (f"?{query_text}" if query_text else ""))


@dataclass(frozen=True)
class DatabaseConfig:
    kind: str  # "sqlite" | "postgres"
    sqlite_path: Path | None = None
    dsn: PostgresDsn | None = None

    @classmethod
    def sqlite(cls, path: Path) -> DatabaseConfig:
        return cls("sqlite", sqlite_path=path)

    def url(self, *, masked: bool = False) -> str:
        """As written in PORTLOG_DATABASE_URL: a SQLite path or a postgresql:// DSN."""
        return str(self.sqlite_path) if self.kind == "sqlite" else self.dsn.url(masked=masked)

    def sqlalchemy_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.sqlite_path}"
        return self.dsn.url("postgresql+psycopg", with_pool_size=False)

    def event_store_env(self) -> dict[str, str]:
        if self.kind == "sqlite":
            return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(self.sqlite_path),
                    "SQLITE_LOCK_TIMEOUT": "30"}
        dsn = self.dsn
        env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": dsn.dbname,
               "POSTGRES_HOST": dsn.host, "POSTGRES_PORT": str(dsn.port), "POSTGRES_USER": dsn.user,
               "POSTGRES_PASSWORD": dsn.password, "POSTGRES_ENABLE_DB_FUNCTIONS": "y"}
        if dsn.connect_timeout is not None:
            env["POSTGRES_CONNECT_TIMEOUT"] = str(dsn.connect_timeout)
        if dsn.pool_size is not None:
            env["POSTGRES_POOL_SIZE"] = str(dsn.pool_size)
        return env


@dataclass(frozen=True)
class StorageConfig:
    kind: str = "filesystem"  # "filesystem" | "s3"
    root: Path | None = None  # filesystem; None: <data_dir>/storage
    endpoint: str = ""  # s3: host or host:port
    bucket: str = ""
    access_key: str = ""
    secret_key: str = ""
    region: str | None = None
    secure: bool = True
    redirect: bool = False  # s3: answer blob GETs with a redirect to a presigned URL
    upload_max_age_seconds: int = DEFAULT_UPLOAD_MAX_AGE_SECONDS  # abandoned uploads (S3: multipart) removed after

    def location_url(self, *, masked: bool = False) -> str:
        """Where the blobs are, as written in PORTLOG_STORAGE_URL (the location only)."""
        if self.kind == "filesystem":
            return f"file://{quote(str(self.root))}"
        secret = MASK if masked else quote(self.secret_key, safe="")
        query = {"secure": "true" if self.secure else "false", "region": self.region}
        query_text = urlencode({k: v for k, v in query.items() if v is not None})
        return f"s3://{quote(self.access_key, safe='')}:{secret}@{self.endpoint}/{self.bucket}?{query_text}"


@dataclass(frozen=True)
class EventsConfig:
    nats_url: str | None = None  # the event relay to NATS JetStream runs when set
    source: str = "portlog"  # CloudEvents `source` of every event this registry publishes
    webhook_retry_seconds: int = 24 * 3600  # how long a failing webhook delivery is retried
    pull_record_seconds: int = 60  # pulls are counted in memory and recorded once per interval


@dataclass(frozen=True)
class GcConfig:
    # Digests unreferenced for less than this are not collected: a push in flight (its blobs
    # uploaded, its manifest not yet) takes less. Runs may ask for another grace period.
    grace_period_seconds: int = 3600


@dataclass(frozen=True)
class CacheConfig:
    """What each process keeps in memory, bounded (docs/configuration.md)."""
    aggregates: int = 1000  # aggregates (repositories, projects, users, blobs, runs) by id, least recently used out
    manifest_bytes: int = 32 * 1024 * 1024  # manifest bytes by digest, for pulls
    upload_hashers: int = 10_000  # running sha256 of uploads under way; an upload pushed out is hashed from storage


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    data_dir: Path = Path("./data")
    access_log: bool = True
    admin_password: str | None = None
    token_lifetime_seconds: int = 300
    workers: int = 1
    external_url: str | None = None  # how clients reach the registry (behind a proxy): http(s)://HOST[:PORT]
    # Request bodies outside /v2/ (JSON, forms) are refused past this (413); blob uploads stream uncapped.
    max_body_bytes: int = 1024 * 1024
    header_timeout_seconds: int = 30  # a request's headers must have arrived within this
    body_timeout_seconds: int = 60  # a request body that sends nothing for this long is cut off (408)
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (CIDR blocks); none by default.
    trusted_proxies: tuple[str, ...] = ()
    log_level: str = "info"
    database: DatabaseConfig | None = None  # None: the SQLite file <data_dir>/events.db
    read_models: DatabaseConfig | None = None  # None: derived from the event store's database
    storage: StorageConfig = StorageConfig()
    events: EventsConfig = EventsConfig()
    gc: GcConfig = GcConfig()
    cache: CacheConfig = CacheConfig()
    # Encrypts stored credentials of remote registries (adapters/secret_box.py); None: a key file
    # beside embedded data, and no stored credentials in scale-out.
    secret_key: str | None = None
    # CIDR blocks outbound connections (webhooks, registry endpoints) may reach despite the
    # built-in refusals (loopback, link-local, …), and blocks they may never reach (adapters/outbound.py).
    outbound_allow: tuple[str, ...] = ()
    outbound_deny: tuple[str, ...] = ()
    replication_workers: int = 4  # replication tasks run at once by each process
    # How long a claimed replication task outlives a worker that died (a long copy extends it).
    replication_lease_seconds: int = 60
    config_file: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, config_file: str | Path | None = None,
                 **flags: Any) -> Settings:
        """Flags (host, port, workers, data_dir, access_log, log_level; None means not given),
        then `environ` (default os.environ), then the config file, then the defaults."""
        environ = os.environ if environ is None else environ
        file_path, file_field = _config_file_location(environ, config_file)
        layers = [_file_layer(file_path, file_field) if file_path else {}, _env_layer(environ), _flag_layer(flags)]
        settings = _settings_from(_Values(_merge(layers)))
        return replace(settings, config_file=file_path.absolute() if file_path else None)

    def as_environment(self) -> dict[str, str]:
        """The variables that make `from_env` give these settings back (for worker processes)."""
        env = {"PORTLOG_CONFIG": str(self.config_file or ""), "PORTLOG_HOST": self.host,
               "PORTLOG_EXTERNAL_URL": self.external_url or "",
               "PORTLOG_PORT": str(self.port), "PORTLOG_DATA_DIR": str(self.data_dir),
               "PORTLOG_WORKERS": str(self.workers), "PORTLOG_LOG_LEVEL": self.log_level,
               "PORTLOG_ACCESS_LOG": "true" if self.access_log else "false",
               "PORTLOG_MAX_BODY_BYTES": str(self.max_body_bytes),
               "PORTLOG_HEADER_TIMEOUT_SECONDS": str(self.header_timeout_seconds),
               "PORTLOG_BODY_TIMEOUT_SECONDS": str(self.body_timeout_seconds),
               "PORTLOG_TRUSTED_PROXIES": ",".join(self.trusted_proxies)}
        if self.admin_password:
            env["PORTLOG_ADMIN_PASSWORD"] = self.admin_password
        if self.secret_key:
            env["PORTLOG_SECRET_KEY"] = self.secret_key
        env["PORTLOG_OUTBOUND_ALLOW"] = ",".join(self.outbound_allow)
        env["PORTLOG_OUTBOUND_DENY"] = ",".join(self.outbound_deny)
        env["PORTLOG_REPLICATION_WORKERS"] = str(self.replication_workers)
        env["PORTLOG_REPLICATION_LEASE_SECONDS"] = str(self.replication_lease_seconds)
        if self.database:
            env["PORTLOG_DATABASE_URL"] = self.database.url()
        if self.read_models:
            env["PORTLOG_READ_MODELS_URL"] = self.read_models.url()
        if _location(self.storage) != _location(StorageConfig()):
            env["PORTLOG_STORAGE_URL"] = self.storage.location_url()
        if self.events.nats_url:
            env["PORTLOG_NATS_URL"] = self.events.nats_url
        env.update({"PORTLOG_EVENT_SOURCE": self.events.source,
                    "PORTLOG_WEBHOOK_RETRY_SECONDS": str(self.events.webhook_retry_seconds),
                    "PORTLOG_PULL_RECORD_SECONDS": str(self.events.pull_record_seconds),
                    "PORTLOG_GC_GRACE_SECONDS": str(self.gc.grace_period_seconds),
                    "PORTLOG_CACHE_AGGREGATES": str(self.cache.aggregates),
                    "PORTLOG_CACHE_MANIFEST_BYTES": str(self.cache.manifest_bytes),
                    "PORTLOG_CACHE_UPLOAD_HASHERS": str(self.cache.upload_hashers)})
        return env

    @property
    def registry_address(self) -> str:
        """HOST[:PORT] as clients name the registry (`docker pull HOST[:PORT]/team/app`)."""
        if self.external_url:
            return self.external_url.split("://", 1)[1]
        return f"{self.host}:{self.port}"

    @property
    def event_database(self) -> DatabaseConfig:
        return self.database or DatabaseConfig.sqlite(self.data_dir / "events.db")

    @property
    def read_model_database(self) -> DatabaseConfig:
        if self.read_models:
            return self.read_models
        events = self.event_database
        if events.kind == "postgres":
            return events
        return DatabaseConfig.sqlite(events.sqlite_path.parent / "readmodels.db")

    @property
    def event_store_env(self) -> dict[str, str]:
        return {**self.event_database.event_store_env(),
                "AGGREGATE_CACHE_MAXSIZE": str(self.cache.aggregates), "AGGREGATE_CACHE_FASTFORWARD": "y"}

    @property
    def read_model_url(self) -> str:
        return self.read_model_database.sqlalchemy_url()

    @property
    def signing_keys_path(self) -> Path:
        return self.data_dir / "token-keys.json"

    @property
    def blob_root(self) -> Path:
        return self.storage.root or self.data_dir / "storage"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    def effective(self, *, masked: bool = True) -> dict[str, Any]:
        """Every setting in force, in the config file's shape; secrets shown as *** when masked."""
        def hide(secret: str) -> str:
            return MASK if masked else secret

        top: dict[str, Any] = {"data_dir": str(self.data_dir)}
        if self.admin_password:
            top["admin_password"] = hide(self.admin_password)
        return {**top,
                "server": {"host": self.host, "port": self.port, "workers": self.workers,
                           "log_level": self.log_level, "access_log": self.access_log,
                           "max_body_bytes": self.max_body_bytes, "header_timeout_seconds": self.header_timeout_seconds,
                           "body_timeout_seconds": self.body_timeout_seconds,
                           "trusted_proxies": list(self.trusted_proxies),
                           **({"external_url": self.external_url} if self.external_url else {})},
                "database": {"url": self.event_database.url(masked=masked),
                             "read_models_url": self.read_model_database.url(masked=masked)},
                "storage": _effective_storage(self.storage, self.blob_root, hide),
                "events": {k: v for k, v in vars(self.events).items() if v is not None},
                "gc": vars(self.gc), "cache": vars(self.cache),
                "replication": {"workers": self.replication_workers, "lease_seconds": self.replication_lease_seconds},
                "security": {**({"secret_key": hide(self.secret_key)} if self.secret_key else {}),
                             "outbound_allow": list(self.outbound_allow), "outbound_deny": list(self.outbound_deny)}}


def _effective_storage(storage: StorageConfig, root: Path, hide) -> dict[str, Any]:
    if storage.kind == "filesystem":
        return {"type": "filesystem", "root": str(root)}
    region = {"region": storage.region} if storage.region else {}
    return {"type": "s3", "endpoint": storage.endpoint, "bucket": storage.bucket,
            "access_key": storage.access_key, "secret_key": hide(storage.secret_key), **region,
            "secure": storage.secure, "redirect": storage.redirect,
            "upload_max_age_seconds": storage.upload_max_age_seconds}


def _location(storage: StorageConfig) -> StorageConfig:
    return replace(storage, redirect=False, upload_max_age_seconds=DEFAULT_UPLOAD_MAX_AGE_SECONDS)


# --- layers: every raw value with the name of the field it came from ---

class _Raw(NamedTuple):
    value: Any
    field: str


_ENV_KEYS = {
    "PORTLOG_HOST": "server.host", "PORTLOG_PORT": "server.port", "PORTLOG_WORKERS": "server.workers",
    "PORTLOG_EXTERNAL_URL": "server.external_url",
    "PORTLOG_LOG_LEVEL": "server.log_level", "PORTLOG_ACCESS_LOG": "server.access_log",
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
}
_FLAG_KEYS = {"host": "server.host", "port": "server.port", "workers": "server.workers",
              "log_level": "server.log_level", "access_log": "server.access_log", "data_dir": "data_dir"}
_FILE_TOP_LEVEL = ("data_dir", "admin_password")
_FILE_SECTIONS = {
    "server": ("host", "port", "workers", "log_level", "access_log", "external_url", "max_body_bytes",
               "header_timeout_seconds", "body_timeout_seconds", "trusted_proxies"),
    "database": ("url", "read_models_url"),
    "storage": ("url", "type", "root", "endpoint", "bucket", "access_key", "secret_key", "region", "secure",
                "redirect", "upload_max_age_seconds"),
    "events": ("nats_url", "source", "webhook_retry_seconds", "pull_record_seconds"),
    "gc": ("grace_period_seconds",),
    "cache": ("aggregates", "manifest_bytes", "upload_hashers"),
    "security": ("secret_key", "outbound_allow", "outbound_deny"),
    "replication": ("workers", "lease_seconds"),
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
    known_top = (*_FILE_TOP_LEVEL, *_FILE_SECTIONS)
    layer = {}
    for key, value in document.items():
        if key in _FILE_TOP_LEVEL:
            layer[key] = _Raw(value, key)
        elif key in _FILE_SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(key, f"must be a table ([{key}])")
            for name, item in value.items():
                if name not in _FILE_SECTIONS[key]:
                    raise ConfigError(f"{key}.{name}", f"unknown key in {path} "
                                                       f"(known in [{key}]: {', '.join(_FILE_SECTIONS[key])})")
                layer[f"{key}.{name}"] = _Raw(item, f"{key}.{name}")
        else:
            raise ConfigError(key, f"unknown key in {path} (known: {', '.join(known_top)})")
    return layer


def _env_layer(environ: Mapping[str, str]) -> dict[str, _Raw]:
    # An empty variable counts as not set (PORTLOG_ADMIN_PASSWORD= has always meant "generate one").
    return {key: _Raw(environ[name], name) for name, key in _ENV_KEYS.items() if environ.get(name)}


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

class _Values:
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
            raise ConfigError(name, f"must be a string, not {_show(value)}")
        return value

    def required_text(self, key: str, why: str) -> str:
        value = self.text(key)
        if not value:
            raise ConfigError(self.field(key), f"missing ({why})")
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int | None = None) -> int:
        if key not in self.raw:
            return default
        return _integer(*self.raw[key], minimum=minimum, maximum=maximum)

    def boolean(self, key: str, default: bool) -> bool:
        return _boolean(*self.raw[key]) if key in self.raw else default


_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    raise ConfigError(name, f"must be true or false, not {_show(value)}")


def _integer(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an integer, not {_show(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(name, f"must be {bounds}, not {value}")
    return value


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"{type(value).__name__} {value!r}"


def _settings_from(values: _Values) -> Settings:
    data_dir = values.text("data_dir", str(Settings.data_dir))
    if not data_dir:
        raise ConfigError(values.field("data_dir"), "must not be empty")
    log_level = values.text("server.log_level", Settings.log_level).lower()
    if log_level not in LOG_LEVELS:
        raise ConfigError(values.field("server.log_level"), f"must be one of {', '.join(LOG_LEVELS)}, "
                                                            f"not {values.text('server.log_level')!r}")
    host = values.text("server.host", Settings.host)
    if not host:
        raise ConfigError(values.field("server.host"), "must not be empty")
    return Settings(
        host=host,
        external_url=_external_url(values),
        port=values.integer("server.port", Settings.port, minimum=1, maximum=65535),
        workers=values.integer("server.workers", Settings.workers, minimum=1),
        log_level=log_level,
        access_log=values.boolean("server.access_log", Settings.access_log),
        max_body_bytes=values.integer("server.max_body_bytes", Settings.max_body_bytes, minimum=1024),
        header_timeout_seconds=values.integer("server.header_timeout_seconds", Settings.header_timeout_seconds,
                                              minimum=1),
        body_timeout_seconds=values.integer("server.body_timeout_seconds", Settings.body_timeout_seconds,
                                            minimum=1),
        trusted_proxies=_networks(values, "server.trusted_proxies"),
        data_dir=Path(data_dir),
        admin_password=values.text("admin_password") or None,
        database=_database(values, "database.url"),
        read_models=_database(values, "database.read_models_url"),
        storage=_storage(values),
        events=_events(values),
        gc=GcConfig(grace_period_seconds=values.integer(
            "gc.grace_period_seconds", GcConfig.grace_period_seconds, minimum=0)),
        cache=CacheConfig(
            aggregates=values.integer("cache.aggregates", CacheConfig.aggregates, minimum=1),
            manifest_bytes=values.integer("cache.manifest_bytes", CacheConfig.manifest_bytes, minimum=0),
            upload_hashers=values.integer("cache.upload_hashers", CacheConfig.upload_hashers, minimum=0)),
        secret_key=_secret_key(values),
        outbound_allow=_networks(values, "security.outbound_allow"),
        outbound_deny=_networks(values, "security.outbound_deny"),
        replication_workers=values.integer("replication.workers", Settings.replication_workers, minimum=1,
                                           maximum=64),
        # A copy extends its lease at half-life, checking twice a second: 1 s could run out between checks.
        replication_lease_seconds=values.integer("replication.lease_seconds", Settings.replication_lease_seconds,
                                                 minimum=2),
    )


def _secret_key(values: _Values) -> str | None:
    key = values.text("security.secret_key") or None
    if key is not None and len(key) < 32:
        raise ConfigError(values.field("security.secret_key"), "must be at least 32 characters")
    return key


def _networks(values: _Values, key: str) -> tuple[str, ...]:
    """CIDR blocks: a TOML list, or a comma-separated string (the variables)."""
    if key not in values:
        return ()
    raw, name = values.raw[key]
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ConfigError(name, f"must be a list of CIDR blocks, not {_show(raw)}")
    blocks = []
    for item in filter(None, (item.strip() for item in items)):
        try:
            blocks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(name, f"{item!r} is not a CIDR block (such as 10.0.0.0/8 or ::1/128)") from None
    return tuple(blocks)


def _external_url(values: _Values) -> str | None:
    url = (values.text("server.external_url") or "").rstrip("/")
    if url and not re.fullmatch(r"https?://[^/\s?#]+", url):
        raise ConfigError(values.field("server.external_url"),
                          f"{url!r} is not http(s)://HOST[:PORT] (no path)")
    return url or None


def _events(values: _Values) -> EventsConfig:
    nats_url = values.text("events.nats_url") or None
    if nats_url and not all(re.fullmatch(r"(nats|tls)://[^/\s,]+", url) for url in nats_url.split(",")):
        raise ConfigError(values.field("events.nats_url"), f"{nats_url!r} is not a NATS URL "
                                                           "(nats://HOST:PORT[,nats://HOST:PORT…])")
    source = values.text("events.source", EventsConfig.source)
    if not source:
        raise ConfigError(values.field("events.source"), "must not be empty")
    return EventsConfig(
        nats_url=nats_url, source=source,
        webhook_retry_seconds=values.integer("events.webhook_retry_seconds", EventsConfig.webhook_retry_seconds,
                                             minimum=0),
        pull_record_seconds=values.integer("events.pull_record_seconds", EventsConfig.pull_record_seconds,
                                           minimum=1))


# --- databases ---

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def _database(values: _Values, key: str) -> DatabaseConfig | None:
    text = values.text(key)
    if text is None:
        return None
    name = values.field(key)
    if not text:
        raise ConfigError(name, "must not be empty")
    scheme = _SCHEME.match(text)
    if not scheme:
        return DatabaseConfig.sqlite(Path(text))
    if scheme.group(1) == "sqlite":
        return DatabaseConfig.sqlite(_sqlite_url_path(text, name))
    if scheme.group(1) in _POSTGRES_SCHEMES:
        if not text.startswith(f"{scheme.group(1)}://"):
            raise ConfigError(name, "a PostgreSQL DSN is postgresql://USER:PASSWORD@HOST:PORT/DBNAME")
        return DatabaseConfig("postgres", dsn=_postgres_dsn(text, name))
    raise ConfigError(name, f"unknown scheme {scheme.group(1)!r}: give a SQLite file path, sqlite:///PATH or "
                            f"postgresql://USER:PASSWORD@HOST:PORT/DBNAME")


def _sqlite_url_path(text: str, name: str) -> Path:
    # SQLAlchemy's spelling: sqlite:///relative/path, sqlite:////absolute/path
    if not text.startswith("sqlite:///") or text == "sqlite:///":
        raise ConfigError(name, "a SQLite URL is sqlite:///PATH (a file; in-memory databases are not supported)")
    return Path(unquote(text[len("sqlite:///"):]))


def _postgres_dsn(text: str, name: str) -> PostgresDsn:
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(name, "the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ConfigError(name, "the port must be a number from 1 to 65535")
    dbname = unquote(parts.path.removeprefix("/"))
    if not dbname or "/" in dbname:
        raise ConfigError(name, "needs one database name: postgresql://USER:PASSWORD@HOST:PORT/DBNAME")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - {"connect_timeout", "pool_size"}
    if unknown:
        raise ConfigError(name, f"unsupported query parameter {', '.join(sorted(unknown))} "
                                f"(supported: connect_timeout, pool_size)")
    return PostgresDsn(
        host=unquote(parts.hostname or ""), port=port or 5432, user=unquote(parts.username or ""),
        password=unquote(parts.password or ""), dbname=dbname,
        connect_timeout=_option(options, "connect_timeout", name, minimum=0),
        pool_size=_option(options, "pool_size", name, minimum=1))


def _option(options: dict[str, str], key: str, name: str, minimum: int) -> int | None:
    return _integer(options[key], f"{name} ({key})", minimum=minimum) if key in options else None


# --- blob storage ---

_S3_KEYS = ("endpoint", "bucket", "access_key", "secret_key", "region", "secure")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _storage(values: _Values) -> StorageConfig:
    location = _storage_from_url(values) if "storage.url" in values else _storage_from_keys(values)
    return replace(location, redirect=values.boolean("storage.redirect", False),
                   upload_max_age_seconds=values.integer("storage.upload_max_age_seconds",
                                                         DEFAULT_UPLOAD_MAX_AGE_SECONDS, minimum=1))


def _storage_from_keys(values: _Values) -> StorageConfig:
    kind = values.text("storage.type", "filesystem")
    if kind not in ("filesystem", "s3"):
        raise ConfigError(values.field("storage.type"), f"unknown storage type {kind!r} (filesystem or s3)")
    foreign = ("root",) if kind == "s3" else _S3_KEYS
    for key in foreign:
        if f"storage.{key}" in values:
            raise ConfigError(values.field(f"storage.{key}"), f"does not apply to {kind} storage "
                                                              f"(storage.type is {kind!r})")
    if kind == "filesystem":
        root = values.text("storage.root")
        return StorageConfig(root=Path(root).absolute() if root else None)
    why = "required for s3 storage"
    return StorageConfig(
        kind="s3",
        endpoint=_endpoint(values.required_text("storage.endpoint", why), values.field("storage.endpoint")),
        bucket=_bucket(values.required_text("storage.bucket", why), values.field("storage.bucket")),
        access_key=values.required_text("storage.access_key", why),
        secret_key=values.required_text("storage.secret_key", why),
        region=values.text("storage.region") or None,
        secure=values.boolean("storage.secure", True))


def _storage_from_url(values: _Values) -> StorageConfig:
    text, name = values.text("storage.url"), values.field("storage.url")
    scheme = text.partition("://")[0] if "://" in text else ""
    if scheme == "file":
        return _file_storage(text, name)
    if scheme == "s3":
        return _s3_storage(text, name)
    shown = f"unknown scheme {scheme!r}" if scheme else "not a URL"
    raise ConfigError(name, f"{shown}: give file:///PATH or s3://ACCESS:SECRET@HOST:PORT/BUCKET")


def _file_storage(text: str, name: str) -> StorageConfig:
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise ConfigError(name, "a file URL is file:///ABSOLUTE/PATH")
    if parts.query:
        raise ConfigError(name, "a file URL takes no query parameters")
    return StorageConfig(root=Path(unquote(parts.path)))


def _s3_storage(text: str, name: str) -> StorageConfig:
    parts = urlsplit(text)
    if not parts.username or not parts.password:
        raise ConfigError(name, "missing the access key and secret: s3://ACCESS:SECRET@HOST:PORT/BUCKET "
                                "(percent-encode / + : @ in them)")
    endpoint = _endpoint(parts.netloc.rpartition("@")[2], name)
    bucket = _bucket(parts.path.strip("/"), name)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - {"secure", "region"}
    if unknown:
        raise ConfigError(name, f"unsupported query parameter {', '.join(sorted(unknown))} "
                                f"(supported: secure, region)")
    secure = _boolean(options.get("secure", "true"), f"{name} (secure)")
    return StorageConfig(kind="s3", endpoint=endpoint, bucket=bucket, access_key=unquote(parts.username),
                         secret_key=unquote(parts.password), region=options.get("region") or None, secure=secure)


def _endpoint(text: str, name: str) -> str:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if "/" in text or not host:
        raise ConfigError(name, f"the endpoint is HOST or HOST:PORT without a scheme, not {text!r} "
                                f"(storage.secure chooses https)")
    if port:
        _integer(port, f"{name} (port)", minimum=1, maximum=65535)
    return text


def _bucket(text: str, name: str) -> str:
    if not text:
        raise ConfigError(name, "missing the bucket: s3://ACCESS:SECRET@HOST:PORT/BUCKET")
    if not _BUCKET.fullmatch(text):
        raise ConfigError(name, f"{text!r} is not a bucket name (3-63 lower-case letters, digits, dots, hyphens)")
    return text
