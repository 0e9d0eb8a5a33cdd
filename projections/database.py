"""The read-model database: SQLite (embedded) or PostgreSQL, through SQLAlchemy.

SQLite gets two engines: writers take the write lock at BEGIN (BEGIN IMMEDIATE), so
two log followers never interleave; readers run each query in autocommit (its own
snapshot, WAL) and never wait for writers.

The few queries on the pull path (a tag, a manifest, a blob size) skip SQLAlchemy's statement
building and pool: `fetch` runs fixed SQL on a per-thread DB-API connection. Measured on one
indexed join: 480 µs through Core, 12 µs this way. The thread pool's threads end after idling
and new ones start: a thread's connection is closed when the thread ends (its thread-local
value dies with it), so open files stay bounded by the live threads.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator

import orjson
from sqlalchemy import Engine, String, create_engine, event, text
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeEngine

READ_CONNECTIONS, WRITE_CONNECTIONS = 16, 4  # per node (all its worker processes), on PostgreSQL
_SCHEMA_LOCK_KEY = 0x706F72746C6F67  # "portlog"


def read_model_pools(workers: int) -> tuple[int, int]:
    """(reading, writing) PostgreSQL connections of each of `workers` processes on a node: the
    node's shares, at least two of each (a slow query or a long write transaction must not stall
    every other)."""
    return max(2, READ_CONNECTIONS // workers), max(2, WRITE_CONNECTIONS // workers)


def Name(length: int) -> TypeEngine:  # noqa: N802 (used like a column type)
    """Names, tags and digests compare and sort byte by byte on PostgreSQL too, as on SQLite,
    whatever the database's collation: pages by `> last` must match ORDER BY."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def as_utc(value) -> datetime:
    """A stored time as an aware UTC datetime: SQLite gives timestamps back naive (or as text),
    PostgreSQL aware."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass
class ReadModelDatabase:
    reader: Engine
    writer: Engine
    # PostgreSQL: schema_lock's connections, outside the pools. Taken from the writers, threads
    # waiting for the lock would hold the writer its holder needs to create the tables.
    locker: Engine | None = None
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _opened: weakref.WeakSet = field(default_factory=weakref.WeakSet, repr=False)  # of _ThreadConnection
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_url(cls, url: str, workers: int = 1) -> ReadModelDatabase:
        """`workers`: the processes serving on this node, which share its PostgreSQL connections."""
        if url.startswith("sqlite"):
            return cls(reader=_sqlite_engine(url, immediate=False),
                       writer=_sqlite_engine(url, immediate=True))
        # Reads in autocommit, on connections of their own: no BEGIN and COMMIT round trips
        # around every lookup. No overflow: under load a request waits for a pooled connection
        # rather than opening one per request (profiled: connecting dominated manifest GETs),
        # and a node's connection count stays bounded (PostgreSQL's default limit is 100).
        readers, writers = read_model_pools(workers)
        reader = create_engine(url, pool_size=readers, max_overflow=0, pool_pre_ping=True,
                               isolation_level="AUTOCOMMIT")
        writer = create_engine(url, pool_size=writers, max_overflow=0, pool_pre_ping=True)
        return cls(reader=reader, writer=writer, locker=create_engine(url, poolclass=NullPool))

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Held while creating tables. Several nodes starting at once on one PostgreSQL would
        otherwise race in CREATE TABLE / CREATE FUNCTION ("tuple concurrently updated");
        SQLite serialises schema changes itself."""
        if self.writer.dialect.name != "postgresql":
            yield
            return
        with (self.locker or self.writer).connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK_KEY})
                conn.commit()

    def fetch(self, sql: str, params: tuple) -> list[tuple]:
        """Runs read-only SQL written with `?` placeholders; returns every row."""
        if self.reader.dialect.name == "sqlite":
            return self._sqlite_connection().execute(sql, params).fetchall()
        connection = self.reader.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall()
        finally:
            connection.close()

    def fetch_column(self, sql: str, params: tuple) -> list:
        """The column `value` of every row. On SQLite the rows come back as one JSON array:
        sqlite3 releases the GIL for every row it steps, and with many threads each release
        can cost a whole switch interval (1,000 tags: 94% of the time in the fetch)."""
        if self.reader.dialect.name != "sqlite":
            return [row[0] for row in self.fetch(sql, params)]
        rows = self.fetch(f"SELECT json_group_array(value) FROM ({sql})", params)
        return orjson.loads(rows[0][0])

    def dispose(self) -> None:
        with self._lock:
            for opened in list(self._opened):
                opened.connection.close()
            self._opened.clear()
            self._local = threading.local()
        self.reader.dispose()
        self.writer.dispose()

    def _sqlite_connection(self) -> sqlite3.Connection:
        opened = getattr(self._local, "opened", None)
        if opened is None:
            opened = _ThreadConnection(sqlite3.connect(self.reader.url.database, check_same_thread=False,
                                                       isolation_level=None, timeout=30))
            self._local.opened = opened
            with self._lock:
                self._opened.add(opened)
        return opened.connection


class _ThreadConnection:
    """One thread's connection, held only by that thread's local storage (and weakly by the
    database, for dispose): when the thread ends, this goes and closes the connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __del__(self) -> None:
        self.connection.close()


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=20, max_overflow=20)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if immediate:
        @event.listens_for(engine, "begin")
        def _begin(connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
