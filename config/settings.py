"""Run-time settings, from four layers: command-line flags win over PORTLOG_* environment
variables, which win over the TOML config file (`--config FILE` or PORTLOG_CONFIG), which wins
over the embedded defaults (SQLite and filesystem blobs under ./data). docs/configuration.md
lists every setting.

Every value remembers where it came from (`server.port`, `PORTLOG_PORT`, `--port`), so a bad one
is reported as a `ConfigError` naming that field. The layers and that reading are in
config/layers.py; the databases and the blob storage, with their URLs, in config/locations.py.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from config import layers
from config.layers import ConfigError, Values, show
from config.locations import (
    DEFAULT_UPLOAD_MAX_AGE_SECONDS,
    MASK,
    DatabaseConfig,
    StorageConfig,
    database_from,
    storage_from,
)
from domain.configuration import KEYS as CONFIGURATION_KEYS
from domain.configuration import env_name, parse_value
from domain.errors import InvalidInputError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
LOG_FORMATS = ("text", "json")


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
    """What each process keeps in memory, bounded (docs/configuration.md). The defaults are a
    node's: unless set, each of N worker processes keeps its share (`share`)."""
    aggregates: int = 1000  # aggregates (repositories, projects, users, blobs, runs) by id, least recently used out
    manifest_bytes: int = 32 * 1024 * 1024  # manifest bytes by digest, for pulls
    upload_hashers: int = 10_000  # running sha256 of uploads under way; an upload pushed out is hashed from storage

    @staticmethod
    def share(key: str, workers: int) -> int:
        """One worker's share of a default size: the node's default divided by the workers,
        down to an eighth of it: with more than eight workers the node keeps more, each process
        still its hot set."""
        default = getattr(CacheConfig, key)
        return max(default // 8, default // workers)


def default_workers() -> int:
    """The worker processes `portlog serve` runs unless told: one per CPU this process may run on
    (its affinity mask: a container or `taskset` limits it), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity masks on this platform (macOS)
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class FollowConfig:
    """A follower ships a leader's log (docs/time-travel.md); url None: this registry leads."""
    url: str | None = None  # the leader: http(s)://HOST[:PORT]
    username: str | None = None  # a system administrator, or a robot holding event-log:read
    password: str | None = None
    projects: tuple[str, ...] = ()  # only these projects' events (and those of no project); empty: all


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus metrics (adapters/metrics.py, api/metrics.py; docs/operations.md, Monitoring)."""
    enabled: bool = True  # GET /metrics and the request counting; off: neither (the benchmark compares)
    require_auth: bool = True  # /metrics on the main port takes a system administrator's credentials
    port: int | None = None  # a separate port answering GET /metrics without credentials
    host: str = "127.0.0.1"  # the address that separate port listens on


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    data_dir: Path = Path("./data")
    access_log: bool = True
    admin_password: str | None = None
    token_lifetime_seconds: int = 300
    # Settings built in code serve in one process; read from the environment, the default is
    # default_workers().
    workers: int = 1
    external_url: str | None = None  # how clients reach the registry (behind a proxy): http(s)://HOST[:PORT]
    # Request bodies outside /v2/ (JSON, forms) are refused past this (413); blob uploads stream uncapped.
    max_body_bytes: int = 1024 * 1024
    header_timeout_seconds: int = 30  # a request's headers must have arrived within this
    body_timeout_seconds: int = 60  # a request body that sends nothing for this long is cut off (408)
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (CIDR blocks); none by default.
    trusted_proxies: tuple[str, ...] = ()
    log_level: str = "info"
    log_format: str = "text"  # text, or json: one JSON object a line (api/logs.py)
    log_levels: tuple[tuple[str, str], ...] = ()  # (logger, level): e.g. ("portlog.gc", "debug")
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
    # System configuration keys the operator pinned (domain/configuration.py): key -> (value, where
    # it was set: "config file" or the variable's name). The API shows them and cannot change them.
    configurations: tuple[tuple[str, Any, str], ...] = ()
    follow: FollowConfig = FollowConfig()
    metrics: MetricsConfig = MetricsConfig()
    config_file: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, config_file: str | Path | None = None,
                 **flags: Any) -> Settings:
        """Flags (host, port, workers, data_dir, access_log, log_level; None means not given),
        then `environ` (default os.environ), then the config file, then the defaults."""
        values, file_path = layers.read(os.environ if environ is None else environ, config_file, flags)
        return replace(_settings_from(values), config_file=file_path.absolute() if file_path else None)

    def as_environment(self) -> dict[str, str]:
        """The variables that make `from_env` give these settings back (for worker processes)."""
        env = {"PORTLOG_CONFIG": str(self.config_file or ""), "PORTLOG_HOST": self.host,
               "PORTLOG_EXTERNAL_URL": self.external_url or "",
               "PORTLOG_PORT": str(self.port), "PORTLOG_DATA_DIR": str(self.data_dir),
               "PORTLOG_WORKERS": str(self.workers), "PORTLOG_LOG_LEVEL": self.log_level,
               "PORTLOG_ACCESS_LOG": "true" if self.access_log else "false",
               "PORTLOG_LOG_FORMAT": self.log_format,
               "PORTLOG_LOG_LEVELS": ",".join(f"{name}={level}" for name, level in self.log_levels),
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
        for key, value, source in self.configurations:
            if source != "config file":  # the worker reads the file itself (PORTLOG_CONFIG)
                env[env_name(key)] = str(value).lower() if isinstance(value, bool) else str(value)
        if self.database:
            env["PORTLOG_DATABASE_URL"] = self.database.url()
        if self.read_models:
            env["PORTLOG_READ_MODELS_URL"] = self.read_models.url()
        if _location(self.storage) != _location(StorageConfig()):
            env["PORTLOG_STORAGE_URL"] = self.storage.location_url()
        if self.events.nats_url:
            env["PORTLOG_NATS_URL"] = self.events.nats_url
        if self.follow.url:
            env.update({"PORTLOG_FOLLOW_URL": self.follow.url, "PORTLOG_FOLLOW_USERNAME": self.follow.username or "",
                        "PORTLOG_FOLLOW_PASSWORD": self.follow.password or "",
                        "PORTLOG_FOLLOW_PROJECTS": ",".join(self.follow.projects)})
        env.update({"PORTLOG_METRICS_ENABLED": str(self.metrics.enabled).lower(),
                    "PORTLOG_METRICS_REQUIRE_AUTH": str(self.metrics.require_auth).lower(),
                    "PORTLOG_METRICS_HOST": self.metrics.host})
        if self.metrics.port:
            env["PORTLOG_METRICS_PORT"] = str(self.metrics.port)
        env.update({"PORTLOG_EVENT_SOURCE": self.events.source,
                    "PORTLOG_WEBHOOK_RETRY_SECONDS": str(self.events.webhook_retry_seconds),
                    "PORTLOG_PULL_RECORD_SECONDS": str(self.events.pull_record_seconds),
                    "PORTLOG_GC_GRACE_SECONDS": str(self.gc.grace_period_seconds),
                    "PORTLOG_CACHE_AGGREGATES": str(self.cache.aggregates),
                    "PORTLOG_CACHE_MANIFEST_BYTES": str(self.cache.manifest_bytes),
                    "PORTLOG_CACHE_UPLOAD_HASHERS": str(self.cache.upload_hashers)})
        return env

    @property
    def pinned_configuration(self) -> dict[str, tuple[Any, str]]:
        return {key: (value, source) for key, value, source in self.configurations}

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
        return {**self.event_database.event_store_env(self.workers),
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
                "log": {"format": self.log_format, "levels": dict(self.log_levels)},
                "database": {"url": self.event_database.url(masked=masked),
                             "read_models_url": self.read_model_database.url(masked=masked)},
                "storage": _effective_storage(self.storage, self.blob_root, hide),
                "events": {k: v for k, v in vars(self.events).items() if v is not None},
                "gc": vars(self.gc), "cache": vars(self.cache),
                "replication": {"workers": self.replication_workers, "lease_seconds": self.replication_lease_seconds},
                "metrics": {key: value for key, value in vars(self.metrics).items() if value is not None},
                "security": {**({"secret_key": hide(self.secret_key)} if self.secret_key else {}),
                             "outbound_allow": list(self.outbound_allow), "outbound_deny": list(self.outbound_deny)},
                **({"follow": {"url": self.follow.url, "username": self.follow.username or "",
                               "password": hide(self.follow.password or ""), "projects": list(self.follow.projects)}}
                   if self.follow.url else {}),
                **({"configurations": {key: hide(value) if CONFIGURATION_KEYS[key].secret else value
                                       for key, value, _ in self.configurations}} if self.configurations else {})}


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


def _settings_from(values: Values) -> Settings:
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
    workers = values.integer("server.workers", default_workers(), minimum=1)
    return Settings(
        host=host,
        external_url=_external_url(values),
        port=values.integer("server.port", Settings.port, minimum=1, maximum=65535),
        workers=workers,
        log_level=log_level,
        access_log=values.boolean("server.access_log", Settings.access_log),
        log_format=_log_format(values),
        log_levels=_log_levels(values),
        max_body_bytes=values.integer("server.max_body_bytes", Settings.max_body_bytes, minimum=1024),
        header_timeout_seconds=values.integer("server.header_timeout_seconds", Settings.header_timeout_seconds,
                                              minimum=1),
        body_timeout_seconds=values.integer("server.body_timeout_seconds", Settings.body_timeout_seconds,
                                            minimum=1),
        trusted_proxies=_networks(values, "server.trusted_proxies"),
        data_dir=Path(data_dir),
        admin_password=values.text("admin_password") or None,
        database=database_from(values, "database.url"),
        read_models=database_from(values, "database.read_models_url"),
        storage=storage_from(values),
        events=_events(values),
        gc=GcConfig(grace_period_seconds=values.integer(
            "gc.grace_period_seconds", GcConfig.grace_period_seconds, minimum=0)),
        cache=CacheConfig(
            aggregates=values.integer("cache.aggregates", CacheConfig.share("aggregates", workers), minimum=1),
            manifest_bytes=values.integer("cache.manifest_bytes", CacheConfig.share("manifest_bytes", workers),
                                          minimum=0),
            upload_hashers=values.integer("cache.upload_hashers", CacheConfig.share("upload_hashers", workers),
                                          minimum=0)),
        secret_key=_secret_key(values),
        outbound_allow=_networks(values, "security.outbound_allow"),
        outbound_deny=_networks(values, "security.outbound_deny"),
        replication_workers=values.integer("replication.workers", Settings.replication_workers, minimum=1,
                                           maximum=64),
        # A copy extends its lease at half-life, checking twice a second: 1 s could run out between checks.
        replication_lease_seconds=values.integer("replication.lease_seconds", Settings.replication_lease_seconds,
                                                 minimum=2),
        configurations=_configurations(values),
        follow=_follow(values),
        metrics=_metrics(values),
    )


def _metrics(values: Values) -> MetricsConfig:
    port = values.integer("metrics.port", 0, minimum=0, maximum=65535) or None
    host = values.text("metrics.host", MetricsConfig.host)
    if not host:
        raise ConfigError(values.field("metrics.host"), "must not be empty")
    return MetricsConfig(enabled=values.boolean("metrics.enabled", MetricsConfig.enabled),
                         require_auth=values.boolean("metrics.require_auth", MetricsConfig.require_auth),
                         port=port, host=host)


def _follow(values: Values) -> FollowConfig:
    url = (values.text("follow.url") or "").rstrip("/")
    if not url:
        return FollowConfig()
    if not re.fullmatch(r"https?://[^/\s?#@]+", url):
        raise ConfigError(values.field("follow.url"), f"{url!r} is not http(s)://HOST[:PORT] (no path, no credentials: "
                                                      "give them in follow.username and follow.password)")
    raw = values.raw["follow.projects"][0] if "follow.projects" in values else []
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ConfigError(values.field("follow.projects"), f"must be a list of project names, not {show(raw)}")
    return FollowConfig(url=url, username=values.text("follow.username") or None,
                        password=values.text("follow.password") or None,
                        projects=tuple(dict.fromkeys(filter(None, (item.strip() for item in items)))))


def _configurations(values: Values) -> tuple[tuple[str, Any, str], ...]:
    pinned = []
    for key in CONFIGURATION_KEYS:
        if f"configurations.{key}" not in values:
            continue
        raw, name = values.raw[f"configurations.{key}"]
        try:
            value = parse_value(key, raw, name)
        except InvalidInputError as error:
            raise ConfigError(name, error.message.removeprefix(f"{name} ")) from None
        pinned.append((key, value, "config file" if name == f"configurations.{key}" else name))
    return tuple(pinned)


def _secret_key(values: Values) -> str | None:
    key = values.text("security.secret_key") or None
    if key is not None and len(key) < 32:
        raise ConfigError(values.field("security.secret_key"), "must be at least 32 characters")
    return key


def _log_format(values: Values) -> str:
    log_format = (values.text("log.format", Settings.log_format) or "").lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(values.field("log.format"), f"must be one of {', '.join(LOG_FORMATS)}, "
                                                      f"not {values.text('log.format')!r}")
    return log_format


def _log_levels(values: Values) -> tuple[tuple[str, str], ...]:
    """Levels of single loggers: a TOML table `{"portlog.gc" = "debug"}`, or `portlog.gc=debug,…`
    (the variable)."""
    if "log.levels" not in values:
        return ()
    raw, name = values.raw["log.levels"]
    if isinstance(raw, str):
        pairs = [item.partition("=")[::2] for item in raw.split(",") if item.strip()]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise ConfigError(name, f"must be a table of logger = level, not {show(raw)}")
    levels = []
    for logger, level in pairs:
        logger, level = str(logger).strip(), str(level).strip().lower()
        if not re.fullmatch(r"[A-Za-z_][\w.]*", logger) or level not in LOG_LEVELS:
            raise ConfigError(name, f"{logger}={level} is not a logger name and one of {', '.join(LOG_LEVELS)}")
        levels.append((logger, level))
    return tuple(levels)


def _networks(values: Values, key: str) -> tuple[str, ...]:
    """CIDR blocks: a TOML list, or a comma-separated string (the variables)."""
    if key not in values:
        return ()
    raw, name = values.raw[key]
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ConfigError(name, f"must be a list of CIDR blocks, not {show(raw)}")
    blocks = []
    for item in filter(None, (item.strip() for item in items)):
        try:
            blocks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(name, f"{item!r} is not a CIDR block (such as 10.0.0.0/8 or ::1/128)") from None
    return tuple(blocks)


def _external_url(values: Values) -> str | None:
    url = (values.text("server.external_url") or "").rstrip("/")
    if url and not re.fullmatch(r"https?://[^/\s?#]+", url):
        raise ConfigError(values.field("server.external_url"),
                          f"{url!r} is not http(s)://HOST[:PORT] (no path)")
    return url or None


def _events(values: Values) -> EventsConfig:
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
