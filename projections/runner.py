"""Follows the notification log and keeps read models up to date, exactly once.

Each projection records the last notification id it applied in `projection_positions`,
in the same transaction as its rows. Any process may run `catch_up`: the position row is
locked for the batch, so a notification is applied once whichever node gets there first.
Positions have gaps on PostgreSQL, so we always ask for ids greater than the last one seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from typing import Callable, ContextManager, Iterable, Protocol

from eventsourcing.application import Application
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from projections.database import ReadModelDatabase

BATCH_SIZE = 500

metadata = MetaData()
positions = Table(
    "projection_positions",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

schemas = Table(
    "projection_schemas",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
)


_fingerprints: dict[tuple[str, str], str] = {}


def _fingerprint(projection: Projection, dialect: Dialect) -> str:
    """A hash of the DDL that creates the read model's tables and indexes, computed once per
    process and dialect (the tables are declared at import)."""
    key = (projection.name, dialect.name)
    if key not in _fingerprints:
        statements = []
        for table in sorted(projection.metadata.tables.values(), key=lambda t: t.name):
            statements.append(str(CreateTable(table).compile(dialect=dialect)))
            statements += sorted(str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes)
        _fingerprints[key] = hashlib.sha256("\n".join(statements).encode()).hexdigest()
    return _fingerprints[key]


_NAMES = bindparam("k_names", expanding=True)
_LOCK_POSITIONS = select(positions.c.name, positions.c.position).where(positions.c.name.in_(_NAMES)).with_for_update()
_ADVANCE = update(positions).where(and_(positions.c.name.in_(_NAMES), positions.c.position < bindparam("k_last"))) \
    .values(position=bindparam("k_last"))


class Projection(Protocol):
    name: str
    metadata: MetaData

    def apply(self, conn: Connection, event: object, position: int) -> None: ...


class ProjectionRunner:
    def __init__(self, db: ReadModelDatabase, app: Application,
                 projections: Iterable[Projection]) -> None:
        self.db = db
        self.app = app
        self.projections = list(projections)
        self._lock = threading.Lock()
        self._reached = 0
        # Wraps each batch that applies something, given (count, last position): the composition
        # root's span when tracing is on.
        self.around_batch: Callable[[int, int], ContextManager] | None = None

    def create_tables(self) -> None:
        """Creates missing read models. One whose tables changed since they were created (a
        new column, a new index: its schema fingerprint differs, or predates fingerprints) is
        dropped and rebuilt from the log by the next catch-up. One transaction: a process that
        starts often (tests, CLI commands) pays for one commit, not one per read model."""
        with self.db.writer.begin() as conn:
            metadata.create_all(conn)
            known = set(conn.execute(select(positions.c.name)).scalars())
            recorded = dict(conn.execute(select(schemas.c.name, schemas.c.fingerprint)).all())
            for projection in self.projections:
                fingerprint = _fingerprint(projection, conn.dialect)
                changed = recorded.get(projection.name) != fingerprint
                if projection.name not in known:
                    conn.execute(positions.insert().values(name=projection.name, position=0))
                elif changed:
                    projection.metadata.drop_all(conn)
                    conn.execute(update(positions).where(positions.c.name == projection.name).values(position=0))
                    self._reached = 0
                projection.metadata.create_all(conn)
                if changed:
                    conn.execute(delete(schemas).where(schemas.c.name == projection.name))
                    conn.execute(schemas.insert().values(name=projection.name, fingerprint=fingerprint))

    def wait_for(self, position: int | None, timeout: float = 30.0) -> None:
        """Returns once every read model has applied notification `position`."""
        if position is None or self._reached >= position:
            return
        deadline = time.monotonic() + timeout
        while self.catch_up() < position:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read models did not reach position {position}")
            time.sleep(0.005)

    def catch_up(self) -> int:
        """Applies everything new in the log; returns the position all read models reached."""
        with self._lock:
            while True:
                reached, applied = self._apply_batch()
                self._reached = max(self._reached, reached)
                if applied < BATCH_SIZE:
                    return reached

    def positions(self) -> dict[str, int]:
        with self.db.reader.connect() as conn:
            return dict(conn.execute(select(positions.c.name, positions.c.position)).all())

    def rebuild(self) -> None:
        """Drops every read model and replays the whole log into it."""
        with self._lock:
            for projection in self.projections:
                projection.metadata.drop_all(self.db.writer)
            with self.db.writer.begin() as conn:
                conn.execute(positions.delete())
            self._reached = 0
        self.create_tables()
        self.catch_up()

    def _apply_batch(self) -> tuple[int, int]:
        """One transaction: lock the positions, apply the next notifications to every read
        model still behind them, move the positions. Returns (lowest position, count read)."""
        with self.db.writer.begin() as conn:
            names = [p.name for p in self.projections]
            current = dict(conn.execute(_LOCK_POSITIONS, {"k_names": names}).all())
            start = min(current.values())
            notifications = self.app.recorder.select_notifications(
                start=start, limit=BATCH_SIZE, inclusive_of_start=False)
            with self._around_batch(notifications):
                for notification in notifications:
                    event = self.app.mapper.to_domain_event(notification)
                    for projection in self.projections:
                        if notification.id > current[projection.name]:
                            projection.apply(conn, event, notification.id)
            if not notifications:
                return start, 0
            last = notifications[-1].id
            conn.execute(_ADVANCE, {"k_names": names, "k_last": last})
            return last, len(notifications)

    def _around_batch(self, notifications: list) -> ContextManager:
        if self.around_batch is None or not notifications:  # an empty poll is no span
            return contextlib.nullcontext()
        return self.around_batch(len(notifications), notifications[-1].id)
