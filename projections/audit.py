"""Audit trail read model: one row per event — who did what to which resource, when, from
which address, in which request, with which result. Secrets (password and robot secret
hashes) are left out of the details. Positions double as the time index for `as_of` queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)

from domain.account import User
from domain.project import Project
from domain.repository import Repository
from domain.robot import Robot, robot_project
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
audit_log = Table(
    "audit_log", metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", Name(255), nullable=False, index=True),
    Column("source", Name(255), nullable=False),
    Column("request_id", Name(128), nullable=False),
    Column("operation", String(64), nullable=False, index=True),
    Column("resource_type", String(32), nullable=False),
    Column("resource", Name(512), nullable=False),
    Column("project", Name(255), index=True),
    Column("repository", Name(255), index=True),
    Column("result", String(16), nullable=False),
    Column("details", Text, nullable=False),
    Index("audit_log_by_project_position", "project", "position"),
)
_SECRET_FIELDS = {"password_hash", "secret_hash"}
_BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic", "actor",
                "request_id", "source", "repository", "project", "username", "robot"}
_AGGREGATE_TYPES = {Repository: "repository", Project: "project", User: "user", Robot: "robot"}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def describe(event) -> dict:
    """The audit row of an event (without its position)."""
    aggregate = next(a for a in _AGGREGATE_TYPES if isinstance(event, a.Event))
    kind = _AGGREGATE_TYPES[aggregate]
    name = type(event).__name__
    operation = f"{kind}.{_snake(name)}"
    details = {k: v for k, v in vars(event).items() if k not in _BASE_FIELDS | _SECRET_FIELDS}
    subject = getattr(event, kind if kind != "user" else "username")
    project = robot_project(subject) if kind == "robot" else (
        subject.split("/", 1)[0] if kind == "repository" else subject if kind == "project" else None)
    return {
        "occurred_at": event.timestamp, "actor": event.actor, "source": event.source,
        "request_id": event.request_id, "operation": operation, "resource_type": kind,
        "resource": _resource(subject, event), "project": project,
        "repository": subject if kind == "repository" else None,
        "result": "failure" if isinstance(event, User.LoginsFailed) else "success",
        "details": orjson.dumps(details, default=str).decode(),
    }


def _resource(subject: str, event) -> str:
    if getattr(event, "tag", None):
        return f"{subject}:{event.tag}"
    if getattr(event, "digest", None):
        return f"{subject}@{event.digest}"
    if getattr(event, "principal", None):
        return f"{subject}/members/{event.principal}"
    return subject


_INSERT = audit_log.insert()


class AuditProjection:
    name = "audit"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        if any(isinstance(event, a.Event) for a in _AGGREGATE_TYPES):
            conn.execute(_INSERT, dict(position=position, **describe(event)))


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    project: str | None = None
    repository: str | None = None
    operation: str | None = None
    resource_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int | None = None  # cursor: the last position already seen


AUDIT_COLUMNS = ("position", "occurred_at", "actor", "source", "request_id", "operation",
                 "resource_type", "resource", "project", "repository", "result", "details")


class AuditView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def entries(self, where: AuditFilter, limit: int) -> list[dict]:
        query = select(audit_log).order_by(audit_log.c.position).limit(limit)
        for column in ("actor", "project", "repository", "operation", "resource_type"):
            value = getattr(where, column)
            if value is not None:
                query = query.where(audit_log.c[column] == value)
        if where.since is not None:
            query = query.where(audit_log.c.occurred_at >= where.since)
        if where.until is not None:
            query = query.where(audit_log.c.occurred_at < where.until)
        if where.after is not None:
            query = query.where(audit_log.c.position > where.after)
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def position_at(self, moment: datetime) -> int:
        """The log position of the last event at or before `moment` (0: before everything)."""
        query = select(func.max(audit_log.c.position)).where(audit_log.c.occurred_at <= moment)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one() or 0


def _entry(row) -> dict:
    entry = {str(key): value for key, value in row._asdict().items()}  # keys are quoted_name
    entry["details"] = orjson.loads(entry["details"])
    return entry
