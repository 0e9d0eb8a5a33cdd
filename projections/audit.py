"""Audit trail read model: one row per event — who did what to which resource, when, from
which address, in which request, with which result. Secrets (password and robot secret
hashes) are left out of the details, and the details are a bounded summary of the event's data
(the event in the log keeps all of it). Positions double as the time index for `as_of` queries.
"""

from __future__ import annotations

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

from domain import event_catalog
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
audit_log = Table(
    "audit_log", metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    # When the event was written: the time index of `position_at`. `occurred_at` is when it
    # happened, earlier for failed logins, recorded once their aggregation window closed.
    Column("recorded_at", DateTime(timezone=True), nullable=False, index=True),
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

# An entry's details: a pushed manifest's 4 MiB annotation must not be copied into the trail.
DETAIL_STRING_CHARS = 512  # of one string
DETAIL_ITEMS = 64  # of one object or array
DETAIL_CHARS = 4096  # of all the values together, roughly; past it the rest is left out


def describe(event) -> dict:
    """The audit row of an event (without its position)."""
    public = event_catalog.describe(event)
    return {
        "occurred_at": getattr(event, "first_attempt_at", None) or public.occurred_at,
        "recorded_at": public.occurred_at, "actor": public.actor, "source": public.source,
        "request_id": public.request_id, "operation": public.operation, "resource_type": public.kind,
        "resource": public.resource, "project": public.project, "repository": public.repository,
        "result": "failure" if public.failed else "success",
        "details": orjson.dumps(bounded_details(public.data), default=str).decode(),
    }


def bounded_details(data: dict) -> dict:
    """`data` with long strings cut (ending in "…"), long objects and arrays shortened, and past
    DETAIL_CHARS the rest left out; `"truncated": true` when anything was."""
    summary = _Summary()
    details = summary.of(data)
    if summary.truncated:
        details["truncated"] = True
    return details


class _Summary:
    def __init__(self) -> None:
        self.left, self.truncated = DETAIL_CHARS, False

    def of(self, value: object) -> object:
        if isinstance(value, dict):
            return {self._text(str(key)): self.of(item) for key, item in self._first(value.items())}
        if isinstance(value, (list, tuple)):
            return [self.of(item) for item in self._first(value)]
        if isinstance(value, str):
            return self._text(value)
        self.left -= len(str(value))
        return value

    def _first(self, items):
        """The items while there is room (evaluated one by one, as the values use it up)."""
        for count, item in enumerate(items):
            if count == DETAIL_ITEMS or self.left <= 0:
                self.truncated = True
                return
            yield item

    def _text(self, text: str) -> str:
        keep = min(len(text), DETAIL_STRING_CHARS, max(self.left, 0))
        self.left -= keep
        if keep == len(text):
            return text
        self.truncated = True
        return text[:keep] + "…"


_INSERT = audit_log.insert()


class AuditProjection:
    name = "audit"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        if event_catalog.is_public(event):
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
    after: int | None = None  # cursor: the last position already seen (oldest first)
    before: int | None = None  # cursor: the last position already seen (newest first)
    newest_first: bool = False


AUDIT_COLUMNS = ("position", "occurred_at", "actor", "source", "request_id", "operation",
                 "resource_type", "resource", "project", "repository", "result", "details")


class AuditView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def entries(self, where: AuditFilter, limit: int) -> list[dict]:
        order = audit_log.c.position.desc() if where.newest_first else audit_log.c.position
        query = select(*(audit_log.c[c] for c in AUDIT_COLUMNS)).order_by(order).limit(limit)
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
        if where.before is not None:
            query = query.where(audit_log.c.position < where.before)
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def position_at(self, moment: datetime) -> int:
        """The log position of the last event at or before `moment` (0: before everything)."""
        query = select(func.max(audit_log.c.position)).where(audit_log.c.recorded_at <= moment)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one() or 0


def _entry(row) -> dict:
    entry = {str(key): value for key, value in row._asdict().items()}  # keys are quoted_name
    entry["details"] = orjson.loads(entry["details"])
    return entry
