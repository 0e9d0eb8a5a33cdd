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
from projections.fast_writes import FastWrites, Plans

BATCH_SIZE = 500
# A backlog is applied this many per transaction: a rebuild, the first start after an upgrade
# that changed a read model, a node far behind. Each batch's commit, position updates and log read
# cost the same whatever its size. A catch-up starts with BATCH_SIZE and moves to this only when a
# full batch shows a backlog, so the write lock of everyday catch-ups stays short.
BACKLOG_BATCH_SIZE = 5000

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
_POSITIONS = select(positions.c.name, positions.c.position).where(positions.c.name.in_(_NAMES))
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
        self._plans = Plans(db.writer.dialect)
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

    def catch_up(self, batch_size: int = BATCH_SIZE) -> int:
        """Applies everything new in the log; returns the position all read models reached."""
        with self._lock:
            idle = self._nothing_new()
            if idle is not None:
                return idle
            while True:
                reached, applied = self._apply_batch(batch_size)
                self._reached = max(self._reached, reached)
                if applied < batch_size:
                    return reached
                batch_size = max(batch_size, BACKLOG_BATCH_SIZE)

    def _nothing_new(self) -> int | None:
        """The position every read model reached when the log holds nothing past it, else None.
        Two reads, no write transaction: an idle catch-up (several a second per serving process)
        does not take SQLite's write lock (BEGIN IMMEDIATE) nor PostgreSQL's row locks. Only a
        shortcut: whatever it misses (an event appended just after the head was read) the next
        catch-up applies, in the locked transaction of `_apply_batch` as always."""
        head = self.app.recorder.max_notification_id() or 0
        if head <= self._reached:
            return self._reached
        names = [p.name for p in self.projections]
        with self.db.reader.connect() as conn:
            current = dict(conn.execute(_POSITIONS, {"k_names": names}).all())
        if len(current) < len(names):  # a read model without a position row: the locked path decides
            return None
        lowest = min(current.values())
        if lowest < head:
            return None
        self._reached = max(self._reached, lowest)
        return lowest

    def positions(self) -> dict[str, int]:
        with self.db.reader.connect() as conn:
            return dict(conn.execute(select(positions.c.name, positions.c.position)).all())

    def rebuild(self) -> None:
        """Drops every read model and replays the whole log into it."""
        with self._lock:
            for projection in self.projections:
                projection.metadata.drop_all(self.db.writer)
            with self.db.writer.begin() as conn:  # only this runner's: another's read models stay
                conn.execute(positions.delete().where(positions.c.name.in_([p.name for p in self.projections])))
            self._reached = 0
        self.create_tables()
        self.catch_up(BACKLOG_BATCH_SIZE)

    def _apply_batch(self, batch_size: int) -> tuple[int, int]:
        """One transaction: lock the positions, apply the next notifications to every read
        model still behind them, move the positions. Returns (lowest position, count read)."""
        with self.db.writer.begin() as conn:
            names = [p.name for p in self.projections]
            current = dict(conn.execute(_LOCK_POSITIONS, {"k_names": names}).all())
            start = min(current.values())
            notifications = self.app.recorder.select_notifications(
                start=start, limit=batch_size, inclusive_of_start=False)
            writes = FastWrites(conn, self._plans)
            try:
                with self._around_batch(notifications):
                    for notification in notifications:
                        event = self.app.mapper.to_domain_event(notification)
                        for projection in self.projections:
                            if notification.id > current[projection.name]:
                                projection.apply(writes, event, notification.id)
            finally:
                writes.close()
            if not notifications:
                return start, 0
            last = notifications[-1].id
            conn.execute(_ADVANCE, {"k_names": names, "k_last": last})
            return last, len(notifications)

    def _around_batch(self, notifications: list) -> ContextManager:
        if self.around_batch is None or not notifications:  # an empty poll is no span
            return contextlib.nullcontext()
        return self.around_batch(len(notifications), notifications[-1].id)
