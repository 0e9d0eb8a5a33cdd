"""Backups read model: every backup with its outcome, and the schedule, from the Backup and
BackupSchedule events (domain/backups.py). A backup's public id is the log position of its
Started event.

Also what a backup copies (`backup_snapshot`): the position P the read models stand at and every
digest whose bytes they need at P, read in ONE read transaction of the read-model database — all
read models advance together, one transaction per batch, so a snapshot sees a position and a
set of digests that belong together.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator

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
    or_,
    select,
    text,
    update,
)

from domain.backups import MAX_RUNNING_SECONDS, Backup, BackupSchedule
from projections import references, scans, vulndb
from projections.database import Name, ReadModelDatabase, as_utc
from projections.runner import positions

metadata = MetaData()
backups = Table(
    "backups", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("backup", String(36), nullable=False, unique=True),
    Column("trigger", String(20), nullable=False),
    Column("actor", Name(255), nullable=False),
    Column("destination", Text, nullable=False),
    Column("incremental", Boolean, nullable=False),
    Column("status", String(20), nullable=False),  # running | succeeded | failed
    Column("started_position", BigInteger, nullable=False),
    Column("position", BigInteger),
    Column("blob_count", BigInteger),
    Column("bytes", BigInteger),
    Column("copied_blobs", BigInteger),
    Column("copied_bytes", BigInteger),
    Column("log_events", BigInteger),
    Column("log_digest", String(64)),
    Column("reason", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)
schedule = Table(
    "backup_schedule", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("cron", String(200)),
    Column("destination", Text),
    Column("incremental", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", Name(255), nullable=False),
)

_OF_BACKUP = backups.c.backup == bindparam("k_backup")


class BackupsProjection:
    name = "backups"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case Backup.Started():
                conn.execute(backups.insert().values(
                    id=position, backup=event.backup, trigger=event.trigger, actor=event.actor,
                    destination=event.destination, incremental=event.incremental, status="running",
                    started_position=event.position, started_at=event.timestamp))
            case Backup.Completed():
                conn.execute(update(backups).where(_OF_BACKUP).values(
                    status="succeeded", position=event.position, blob_count=event.blob_count, bytes=event.bytes,
                    copied_blobs=event.copied_blobs, copied_bytes=event.copied_bytes, log_events=event.log_events,
                    log_digest=event.log_digest, finished_at=event.timestamp), dict(k_backup=event.backup))
            case Backup.Failed():
                conn.execute(update(backups).where(_OF_BACKUP).values(
                    status="failed", reason=event.reason, finished_at=event.timestamp), dict(k_backup=event.backup))
            case BackupSchedule.Set():
                conn.execute(delete(schedule))
                conn.execute(schedule.insert().values(
                    id=1, cron=event.cron, destination=event.destination, incremental=event.incremental,
                    updated_at=event.timestamp, updated_by=event.actor))


@dataclass(frozen=True)
class BackupRow:
    id: int
    backup: str
    trigger: str
    actor: str
    destination: str
    incremental: bool
    status: str
    started_position: int
    position: int | None
    blob_count: int | None
    bytes: int | None
    copied_blobs: int | None
    copied_bytes: int | None
    log_events: int | None
    log_digest: str | None
    reason: str | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ScheduleRow:
    cron: str | None
    destination: str | None
    incremental: bool
    updated_at: datetime | None


class BackupsView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.db = db
        self.engine = db.reader

    def backups(self, offset: int, limit: int) -> tuple[list[BackupRow], int]:
        """Newest first, and how many there are."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(backups).order_by(backups.c.id.desc()).offset(offset).limit(limit)).all()
            total = conn.execute(select(func.count()).select_from(backups)).scalar_one()
        return [BackupRow(**row._mapping) for row in rows], total

    def backup(self, backup_id: int) -> BackupRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(backups).where(backups.c.id == backup_id)).first()
        return BackupRow(**row._mapping) if row else None

    def backup_by_uuid(self, backup: str) -> BackupRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(backups).where(backups.c.backup == backup)).first()
        return BackupRow(**row._mapping) if row else None

    def schedule(self) -> ScheduleRow:
        with self.engine.connect() as conn:
            row = conn.execute(select(schedule)).first()
        if row is None:
            return ScheduleRow(None, None, False, None)
        return ScheduleRow(row.cron, row.destination, row.incremental, row.updated_at)

    def running_to(self, destination: str) -> bool:
        """Whether a backup (younger than MAX_RUNNING_SECONDS) is writing to that destination."""
        query = select(func.count()).select_from(backups).where(
            backups.c.status == "running", backups.c.destination == destination,
            backups.c.started_at > datetime.now(timezone.utc) - timedelta(seconds=MAX_RUNNING_SECONDS))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one() > 0

    def earliest_running_start(self, now: datetime | None = None) -> datetime | None:
        """When the earliest backup still running started (those running for longer than
        MAX_RUNNING_SECONDS have died and do not count); None when none runs."""
        now = now or datetime.now(timezone.utc)
        query = select(func.min(backups.c.started_at)).where(
            backups.c.status == "running", backups.c.started_at > now - timedelta(seconds=MAX_RUNNING_SECONDS))
        with self.engine.connect() as conn:
            earliest = conn.execute(query).scalar_one()
        return as_utc(earliest) if earliest is not None else None


_READ_MODELS_OF_BYTES = ("references", "scans", "vulndb")
# Linked into a repository, or held as a manifest. A manifest's blobs are linked into its
# repository and an index's children are manifests of it, so "referenced by a manifest" adds
# nothing stored — except the children of an index the proxy cache stored, that no one pulled:
# never stored, not needed.
IN_USE = or_(references.usage.c.blob_links > 0, references.usage.c.manifest_entries > 0)


def backup_snapshot(db: ReadModelDatabase) -> tuple[int, dict[str, int]]:
    """(P, digest → size): the position the read models that reference stored bytes stand at, and
    every digest whose bytes they need at P — linked into a repository, held as a manifest, a
    stored scan report, the vulnerability data file of a source — from one snapshot."""
    with _snapshot(db) as conn:
        position = conn.execute(select(func.min(positions.c.position))
                                .where(positions.c.name.in_(_READ_MODELS_OF_BYTES))).scalar_one() or 0
        needed = dict(conn.execute(select(references.usage.c.digest, references.usage.c.size).where(IN_USE)).all())
        for digest, size in conn.execute(select(scans.reports.c.report_digest, scans.reports.c.report_size)):
            needed.setdefault(digest, size)
        for digest, size in conn.execute(select(vulndb.sources.c.digest, vulndb.sources.c.size)):
            needed.setdefault(digest, size)
    return position, needed


@contextmanager
def _snapshot(db: ReadModelDatabase) -> Iterator[Connection]:
    """A read-only transaction that sees one state throughout: SQLite's WAL snapshot (taken by the
    first read after BEGIN), PostgreSQL's REPEATABLE READ."""
    if db.reader.dialect.name == "sqlite":
        with db.reader.connect() as conn:
            conn.exec_driver_sql("BEGIN")  # the driver runs in autocommit: the transaction is ours to open
            try:
                yield conn
            finally:
                conn.exec_driver_sql("COMMIT")
        return
    with db.writer.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        with conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            yield conn
