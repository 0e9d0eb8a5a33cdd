"""Replication executions and tasks read model: what the APIs show while they run (state,
attempts, bytes, duration, last error) and what the workers pick up next (due tasks). An
execution's or task's public id is the log position of its creation.

It also knows where executions ended: the event (a task's outcome, or the start of an execution
with nothing to do) after which none of its tasks was pending or running any more, with every
task's outcome then. Derived in log order, it is the same after a rebuild; an execution whose
failed tasks are retried ends again."""

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
    and_,
    func,
    or_,
    select,
    update,
)

from domain.replication_runs import (
    FAILED,
    FINAL,
    PENDING,
    RUNNING,
    STOPPED,
    SUCCEEDED,
    ReplicationExecution,
    ReplicationTask,
)
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
executions = Table(
    "replication_executions", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("execution", String(36), nullable=False, unique=True),
    Column("policy", Name(255), nullable=False, index=True),
    Column("trigger", String(20), nullable=False),
    Column("actor", Name(255), nullable=False),
    Column("total", Integer, nullable=False),
    Column("stopping", Boolean, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
)
tasks = Table(
    "replication_tasks", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("task", String(36), nullable=False, unique=True),
    Column("execution", String(36), nullable=False, index=True),
    Column("policy", Name(255), nullable=False),
    Column("number", Integer, nullable=False),
    Column("operation", String(10), nullable=False),
    Column("source_repository", Name(255), nullable=False),
    Column("reference", Name(200), nullable=False),
    Column("destination_repository", Name(255), nullable=False),
    Column("status", String(12), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("worker", Text),
    Column("lease_until", DateTime(timezone=True)),
    Column("retry_at", DateTime(timezone=True)),
    Column("bytes", BigInteger, nullable=False),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("duration_ms", BigInteger),
)
ends = Table(
    "replication_execution_ends", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),  # the log position of the event that ended it
    Column("execution", String(36), nullable=False, index=True),
    Column("status", String(12), nullable=False),  # succeeded | failed | stopped
    Column("tasks", Text, nullable=False),  # JSON: every task's outcome, in task order
)
UNFINISHED = (PENDING, RUNNING)


class ReplicationRunsProjection:
    name = "replication_runs"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case ReplicationExecution.Started():
                conn.execute(executions.insert().values(
                    id=position, execution=str(event.originator_id), policy=event.policy, trigger=event.trigger,
                    actor=event.actor, total=len(event.tasks), stopping=False, started_at=event.timestamp))
                if not event.tasks:
                    _record_end(conn, str(event.originator_id), position)
            case ReplicationExecution.StopRequested():
                conn.execute(update(executions).where(executions.c.execution == str(event.originator_id))
                             .values(stopping=True))
            case ReplicationTask.Created():
                conn.execute(tasks.insert().values(
                    id=position, task=str(event.originator_id), execution=event.execution, policy=event.policy,
                    number=event.index, operation=event.operation, source_repository=event.source_repository,
                    reference=event.reference, destination_repository=event.destination_repository,
                    status=PENDING, attempts=0, bytes=0))
            case ReplicationTask.Event():
                changes = _changes(event)
                conn.execute(update(tasks).where(tasks.c.task == str(event.originator_id)).values(**changes))
                if changes.get("status") in FINAL and _finished(conn, event.execution):
                    _record_end(conn, event.execution, position)


def _finished(conn: Connection, execution: str) -> bool:
    unfinished = select(tasks.c.id).where(tasks.c.execution == execution, tasks.c.status.in_(UNFINISHED))
    return conn.execute(unfinished.limit(1)).first() is None


def _record_end(conn: Connection, execution: str, position: int) -> None:
    rows = conn.execute(select(tasks).where(tasks.c.execution == execution).order_by(tasks.c.number)).all()
    outcomes = [{"operation": row.operation, "source_repository": row.source_repository,
                 "reference": row.reference, "destination_repository": row.destination_repository,
                 "status": row.status, "error": row.error} for row in rows]
    conn.execute(ends.insert().values(id=position, execution=execution, tasks=orjson.dumps(outcomes).decode(),
                                      status=_end_status({row.status for row in rows})))


def _end_status(statuses: set[str]) -> str:
    """As Harbor judges an execution: failed if a task failed, else stopped if one stopped."""
    return FAILED if FAILED in statuses else STOPPED if STOPPED in statuses else SUCCEEDED


def _changes(event: ReplicationTask.Event) -> dict:
    match event:
        case ReplicationTask.Claimed():
            return dict(status=RUNNING, attempts=event.attempt, worker=event.worker, lease_until=event.lease_until,
                        started_at=event.timestamp, retry_at=None)
        case ReplicationTask.LeaseExtended():
            return dict(lease_until=event.lease_until)
        case ReplicationTask.Succeeded():
            return dict(status=SUCCEEDED, bytes=event.bytes, ended_at=event.timestamp, duration_ms=event.duration_ms,
                        error=None)
        case ReplicationTask.Failed():
            return dict(status=PENDING if event.retry_at else FAILED, error=event.error, retry_at=event.retry_at,
                        ended_at=event.timestamp)
        case ReplicationTask.Stopped():
            return dict(status=STOPPED, ended_at=event.timestamp)
        case ReplicationTask.RetryRequested():
            return dict(status=PENDING, attempts=0, retry_at=None, error=None)
    return {}


@dataclass(frozen=True)
class ExecutionRow:
    id: int
    execution: str
    policy: str
    trigger: str
    actor: str
    total: int
    stopping: bool
    started_at: datetime
    counts: dict  # status -> tasks
    ended_at: datetime | None

    @property
    def status(self) -> str:
        """Harbor's: InProgress while a task is pending or running, then Failed if one failed,
        Stopped if one stopped, else Succeed."""
        if self.counts.get(PENDING) or self.counts.get(RUNNING):
            return "InProgress"
        if self.counts.get(FAILED):
            return "Failed"
        return "Stopped" if self.counts.get(STOPPED) else "Succeed"


@dataclass(frozen=True)
class TaskRow:
    id: int
    task: str
    execution: str
    policy: str
    number: int
    operation: str
    source_repository: str
    reference: str
    destination_repository: str
    status: str
    attempts: int
    worker: str | None
    lease_until: datetime | None
    retry_at: datetime | None
    bytes: int
    error: str | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None


@dataclass(frozen=True)
class EndRow:
    id: int  # the log position of the event that ended the execution
    execution: str
    status: str
    tasks: list[dict]  # {operation, source_repository, reference, destination_repository, status, error}


class ReplicationRunsView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def executions(self, policy: str | None, offset: int, limit: int) -> tuple[list[ExecutionRow], int]:
        where = executions.c.policy == policy if policy else True
        with self.engine.connect() as conn:
            rows = conn.execute(select(executions).where(where).order_by(executions.c.id.desc())
                                .offset(offset).limit(limit)).all()
            total = conn.execute(select(func.count()).select_from(executions).where(where)).scalar_one()
            return [self._execution(conn, row) for row in rows], total

    def execution(self, execution_id: int) -> ExecutionRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(executions).where(executions.c.id == execution_id)).first()
            return self._execution(conn, row) if row else None

    def execution_by_uuid(self, execution: str) -> ExecutionRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(executions).where(executions.c.execution == execution)).first()
            return self._execution(conn, row) if row else None

    def tasks(self, execution: str) -> list[TaskRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tasks).where(tasks.c.execution == execution).order_by(tasks.c.number))
            return [TaskRow(**row._mapping) for row in rows]

    def task(self, task_id: int) -> TaskRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
        return TaskRow(**row._mapping) if row else None

    def due_tasks(self, now: datetime, limit: int, excluding: set[str]) -> list[TaskRow]:
        """Pending tasks whose time has come, and running ones whose worker's lease ran out."""
        due = or_(and_(tasks.c.status == PENDING, or_(tasks.c.retry_at.is_(None), tasks.c.retry_at <= now)),
                  and_(tasks.c.status == RUNNING, tasks.c.lease_until <= now))
        query = select(tasks).where(due).order_by(tasks.c.id).limit(limit + len(excluding))
        with self.engine.connect() as conn:
            rows = [TaskRow(**row._mapping) for row in conn.execute(query)]
        return [row for row in rows if row.task not in excluding][:limit]

    def end(self, position: int) -> EndRow | None:
        """The execution that the event at `position` ended, if it ended one."""
        with self.engine.connect() as conn:
            row = conn.execute(select(ends).where(ends.c.id == position)).first()
        return EndRow(row.id, row.execution, row.status, orjson.loads(row.tasks)) if row else None

    def failed_tasks(self, policy: str) -> list[TaskRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tasks).where(tasks.c.policy == policy, tasks.c.status == FAILED))
            return [TaskRow(**row._mapping) for row in rows]

    def _execution(self, conn: Connection, row) -> ExecutionRow:
        counts = dict(conn.execute(select(tasks.c.status, func.count()).where(
            tasks.c.execution == row.execution).group_by(tasks.c.status)).all())
        ended = conn.execute(select(func.max(tasks.c.ended_at)).where(tasks.c.execution == row.execution)).scalar()
        done = not (counts.get(PENDING) or counts.get(RUNNING))
        return ExecutionRow(row.id, row.execution, row.policy, row.trigger, row.actor, row.total, row.stopping,
                            row.started_at, counts, (ended or row.started_at) if done else None)
