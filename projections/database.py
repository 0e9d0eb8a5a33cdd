"""The read-model database: SQLite (embedded) or PostgreSQL, through SQLAlchemy.

SQLite gets two engines: writers take the write lock at BEGIN (BEGIN IMMEDIATE), so
two log followers never interleave; readers run each query in autocommit (its own
snapshot, WAL) and never wait for writers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, event


@dataclass
class ReadModelDatabase:
    reader: Engine
    writer: Engine

    @classmethod
    def from_url(cls, url: str) -> ReadModelDatabase:
        if url.startswith("sqlite"):
            return cls(reader=_sqlite_engine(url, immediate=False),
                       writer=_sqlite_engine(url, immediate=True))
        engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        return cls(reader=engine, writer=engine)

    def dispose(self) -> None:
        self.reader.dispose()
        self.writer.dispose()


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
