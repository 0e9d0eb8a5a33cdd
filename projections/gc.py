"""Garbage collection read model: the history of GC runs (each with its totals as they grow)
and the schedule, from the GcRun and GcSchedule events (domain/gc.py). A run's public id is
the log position of its Started event; its `number` (1, 2, 3… in the order they started) is
what people read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    select,
    update,
)

from domain.gc import GcRun, GcSchedule
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
runs = Table(
    "gc_runs", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("run", String(36), nullable=False, unique=True),
    Column("trigger", String(20), nullable=False),
    Column("actor", Name(255), nullable=False),
    Column("grace_seconds", BigInteger, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("delete_untagged", Boolean, nullable=False),
    Column("status", String(20), nullable=False),  # running | succeeded | failed
    Column("blobs", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("untagged", Integer, nullable=False),
    Column("orphans", Integer, nullable=False),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)
schedule = Table(
    "gc_schedule", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("cron", String(200)),
    Column("grace_seconds", BigInteger, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("delete_untagged", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", Name(255), nullable=False),
)

_OF_RUN = runs.c.run == bindparam("k_run")
_earlier = runs.alias("earlier")
_NUMBER = select(func.count()).select_from(_earlier).where(_earlier.c.id <= runs.c.id) \
    .scalar_subquery().label("number")  # the run's place in the order they started
_RUNS = select(runs, _NUMBER)


class GcProjection:
    name = "gc"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case GcRun.Started():
                conn.execute(runs.insert().values(
                    id=position, run=event.run, trigger=event.trigger, actor=event.actor,
                    grace_seconds=event.grace_seconds, dry_run=event.dry_run,
                    delete_untagged=event.delete_untagged, status="running", blobs=0, bytes=0,
                    untagged=0, orphans=0, started_at=event.timestamp, updated_at=event.timestamp))
            case GcRun.Swept():
                conn.execute(update(runs).where(_OF_RUN).values(
                    blobs=runs.c.blobs + event.blobs, bytes=runs.c.bytes + event.bytes,
                    updated_at=event.timestamp), dict(k_run=event.run))
            case GcRun.Completed():
                conn.execute(update(runs).where(_OF_RUN).values(
                    status="succeeded", blobs=event.blobs, bytes=event.bytes, untagged=event.untagged,
                    orphans=event.orphans, updated_at=event.timestamp, finished_at=event.timestamp),
                    dict(k_run=event.run))
            case GcRun.Failed():
                conn.execute(update(runs).where(_OF_RUN).values(
                    status="failed", error=event.error, updated_at=event.timestamp,
                    finished_at=event.timestamp), dict(k_run=event.run))
            case GcSchedule.Set():
                conn.execute(delete(schedule))
                conn.execute(schedule.insert().values(
                    id=1, cron=event.cron, grace_seconds=event.grace_seconds, dry_run=event.dry_run,
                    delete_untagged=event.delete_untagged, updated_at=event.timestamp,
                    updated_by=event.actor))


@dataclass(frozen=True)
class RunRow:
    id: int
    run: str
    trigger: str
    actor: str
    grace_seconds: int
    dry_run: bool
    delete_untagged: bool
    status: str
    blobs: int
    bytes: int
    untagged: int
    orphans: int
    error: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    number: int


@dataclass(frozen=True)
class ScheduleRow:
    cron: str | None
    grace_seconds: int
    dry_run: bool
    delete_untagged: bool
    updated_at: datetime | None


class GcView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def runs(self, offset: int, limit: int) -> tuple[list[RunRow], int]:
        """Newest first, and how many there are."""
        with self.engine.connect() as conn:
            rows = conn.execute(_RUNS.order_by(runs.c.id.desc()).offset(offset).limit(limit)).all()
            total = conn.execute(select(func.count()).select_from(runs)).scalar_one()
        return [RunRow(**row._mapping) for row in rows], total

    def run(self, run_id: int) -> RunRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(_RUNS.where(runs.c.id == run_id)).first()
        return RunRow(**row._mapping) if row else None

    def run_by_uuid(self, run: str) -> RunRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(_RUNS.where(runs.c.run == run)).first()
        return RunRow(**row._mapping) if row else None

    def schedule(self) -> ScheduleRow:
        with self.engine.connect() as conn:
            row = conn.execute(select(schedule)).first()
        if row is None:
            return ScheduleRow(None, 0, False, False, None)
        return ScheduleRow(row.cron, row.grace_seconds, row.dry_run, row.delete_untagged, row.updated_at)
