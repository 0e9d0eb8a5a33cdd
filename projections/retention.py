"""Retention read model: each project's policy, and the history of retention runs with what
each deleted (or, dry, would delete). A run's public id is the log position of its start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
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
    delete,
    func,
    select,
    update,
)

from domain.project import Project
from domain.retention_runs import RetentionRun
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
policies = Table(
    "retention_policies", metadata,
    Column("project", Name(255), primary_key=True),
    Column("id", BigInteger, nullable=False),  # log position of the event that set it
    Column("rules", Text, nullable=False),
    Column("cron", String(200)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", Name(255), nullable=False),
)
runs = Table(
    "retention_runs", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("run", String(36), nullable=False, unique=True),
    Column("project", Name(255), nullable=False, index=True),
    Column("dry_run", Boolean, nullable=False),
    Column("as_of", String(40)),
    Column("trigger", String(20), nullable=False),
    Column("actor", Name(255), nullable=False),
    Column("status", String(20), nullable=False),  # running | succeeded | failed
    Column("retained", Integer, nullable=False),
    Column("deleted", Text, nullable=False),  # JSON list of {repository, digest, tags}
    Column("skipped", Text, nullable=False),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)


class RetentionProjection:
    name = "retention"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case Project.RetentionPolicySet():
                conn.execute(delete(policies).where(policies.c.project == event.project))
                conn.execute(policies.insert().values(
                    project=event.project, id=position, rules=orjson.dumps(event.rules).decode(), cron=event.cron,
                    updated_at=event.timestamp, updated_by=event.actor))
            case Project.RetentionPolicyRemoved() | Project.Deleted():
                conn.execute(delete(policies).where(policies.c.project == event.project))
            case Project.Recreated():  # a new project under an old name: the old one's runs are not its own
                conn.execute(delete(runs).where(runs.c.project == event.project))
            case RetentionRun.Started():
                conn.execute(runs.insert().values(
                    id=position, run=str(event.originator_id), project=event.project, dry_run=event.dry_run,
                    as_of=event.as_of, trigger=event.trigger, actor=event.actor, status="running", retained=0,
                    deleted="[]", skipped="[]", started_at=event.timestamp))
            case RetentionRun.Completed():
                conn.execute(update(runs).where(runs.c.run == str(event.originator_id)).values(
                    status="succeeded", retained=event.retained, deleted=orjson.dumps(event.deleted).decode(),
                    skipped=orjson.dumps(event.skipped).decode(), finished_at=event.timestamp))
            case RetentionRun.Failed():
                conn.execute(update(runs).where(runs.c.run == str(event.originator_id)).values(
                    status="failed", error=event.error, finished_at=event.timestamp))


@dataclass(frozen=True)
class PolicyRow:
    project: str
    id: int
    rules: list
    cron: str | None
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class RunRow:
    id: int
    run: str
    project: str
    dry_run: bool
    as_of: str | None
    trigger: str
    actor: str
    status: str
    retained: int
    deleted: list
    skipped: list
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class RetentionView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def policy(self, project: str) -> PolicyRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(policies).where(policies.c.project == project)).first()
        return _policy(row) if row else None

    def scheduled_policies(self) -> list[PolicyRow]:
        with self.engine.connect() as conn:
            return [_policy(row) for row in conn.execute(select(policies).where(policies.c.cron.is_not(None)))]

    def runs(self, project: str, offset: int, limit: int) -> tuple[list[RunRow], int]:
        where = runs.c.project == project
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs).where(where).order_by(runs.c.id.desc()).offset(offset).limit(limit)).all()
            total = conn.execute(select(func.count()).select_from(runs).where(where)).scalar_one()
        return [_run(row) for row in rows], total

    def run(self, run_id: int) -> RunRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        return _run(row) if row else None

    def run_by_uuid(self, run: str) -> RunRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.run == run)).first()
        return _run(row) if row else None


def _policy(row) -> PolicyRow:
    return PolicyRow(row.project, row.id, orjson.loads(row.rules), row.cron, row.updated_at, row.updated_by)


def _run(row) -> RunRow:
    values = dict(row._mapping)
    values["deleted"], values["skipped"] = orjson.loads(values["deleted"]), orjson.loads(values["skipped"])
    return RunRow(**values)
