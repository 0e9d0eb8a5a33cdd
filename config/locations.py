"""Where the data lives: the event store's and the read models' databases (a SQLite file or a
PostgreSQL DSN) and the blob storage (a directory or an S3 bucket), read from their settings."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from config.layers import ConfigError, Values, to_boolean, to_integer

DEFAULT_UPLOAD_MAX_AGE_SECONDS = 7 * 24 * 3600  # the same week CNCF Distribution waits before purging
MASK = "***"
# The event store's PostgreSQL connections on a node (eventsourcing's defaults for one process):
# kept open, and opened beyond those under load.
EVENT_STORE_POOL, EVENT_STORE_OVERFLOW = 5, 10


def event_store_pool(workers: int) -> tuple[int, int]:
    """(connections kept open, more under load) of each of `workers` processes on a node: the
    node's shares, at least one and one."""
    return max(1, EVENT_STORE_POOL // workers), max(1, EVENT_STORE_OVERFLOW // workers)


@dataclass(frozen=True)
class PostgresDsn:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    connect_timeout: int | None = None
    pool_size: int | None = None  # connections the event store's pool keeps open in each process

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

    def event_store_env(self, workers: int = 1) -> dict[str, str]:
        """eventsourcing's settings for one of `workers` processes on a node."""
        if self.kind == "sqlite":
            return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(self.sqlite_path),
                    "SQLITE_LOCK_TIMEOUT": "30"}
        dsn = self.dsn
        env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": dsn.dbname,
               "POSTGRES_HOST": dsn.host, "POSTGRES_PORT": str(dsn.port), "POSTGRES_USER": dsn.user,
               "POSTGRES_PASSWORD": dsn.password, "POSTGRES_ENABLE_DB_FUNCTIONS": "y"}
        if dsn.connect_timeout is not None:
            env["POSTGRES_CONNECT_TIMEOUT"] = str(dsn.connect_timeout)
        pool_size, overflow = event_store_pool(workers)
        env["POSTGRES_POOL_SIZE"] = str(dsn.pool_size if dsn.pool_size is not None else pool_size)
        env["POSTGRES_MAX_OVERFLOW"] = str(overflow)
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


_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def database_from(values: Values, key: str) -> DatabaseConfig | None:
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
    return to_integer(options[key], f"{name} ({key})", minimum=minimum) if key in options else None


# --- blob storage ---

_S3_KEYS = ("endpoint", "bucket", "access_key", "secret_key", "region", "secure")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def storage_from(values: Values) -> StorageConfig:
    location = _storage_from_url(values) if "storage.url" in values else _storage_from_keys(values)
    return replace(location, redirect=values.boolean("storage.redirect", False),
                   upload_max_age_seconds=values.integer("storage.upload_max_age_seconds",
                                                         DEFAULT_UPLOAD_MAX_AGE_SECONDS, minimum=1))


def _storage_from_keys(values: Values) -> StorageConfig:
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


def _storage_from_url(values: Values) -> StorageConfig:
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
    secure = to_boolean(options.get("secure", "true"), f"{name} (secure)")
    return StorageConfig(kind="s3", endpoint=endpoint, bucket=bucket, access_key=unquote(parts.username),
                         secret_key=unquote(parts.password), region=options.get("region") or None, secure=secure)


def _endpoint(text: str, name: str) -> str:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if "/" in text or not host:
        raise ConfigError(name, f"the endpoint is HOST or HOST:PORT without a scheme, not {text!r} "
                                f"(storage.secure chooses https)")
    if port:
        to_integer(port, f"{name} (port)", minimum=1, maximum=65535)
    return text


def _bucket(text: str, name: str) -> str:
    if not text:
        raise ConfigError(name, "missing the bucket: s3://ACCESS:SECRET@HOST:PORT/BUCKET")
    if not _BUCKET.fullmatch(text):
        raise ConfigError(name, f"{text!r} is not a bucket name (3-63 lower-case letters, digits, dots, hyphens)")
    return text
