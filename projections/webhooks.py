"""Webhooks read model: policies (with their targets' auth headers, which the dispatcher sends
and the API never shows), deliveries with their state — what is pending and when next, so a
restarted dispatcher picks up where the last one stopped — and every attempt.

A project's policies leave the read model with the project (Harbor deletes them with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)

from domain.project import Project
from domain.webhooks import DELIVERED, FAILED, PENDING, RETRYING, SENDING, Target, WebhookDelivery, WebhookPolicy
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
# Numeric ids are the log position of the creating event, as everywhere else.
policies = Table(
    "webhook_policies", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("policy_id", String(36), nullable=False, unique=True),
    Column("project", Name(255), index=True),  # NULL: instance-wide
    Column("name", Name(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("event_types", Text, nullable=False),
    Column("targets", Text, nullable=False),  # JSON, auth headers included
    Column("creator", Name(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("delivery_id", String(36), nullable=False, unique=True),
    Column("policy", BigInteger, nullable=False),
    Column("project", Name(255)),
    Column("event_position", BigInteger, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("target", Integer, nullable=False),
    Column("address", Text, nullable=False),
    Column("payload_format", String(16), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Integer),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("lease_until", DateTime(timezone=True)),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),  # the aggregate's: a claim names the version it saw
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("webhook_deliveries_due", "status", "next_attempt_at"),
    Index("webhook_deliveries_by_policy", "policy", "id"),
)
attempts = Table(
    "webhook_attempts", metadata,
    Column("delivery_id", String(36), primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("dispatcher", Name(255), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("succeeded", Boolean),
    Column("status_code", Integer),
    Column("latency_ms", Integer),
    Column("error", Text),
)

_DELIVERY = deliveries.c.delivery_id == bindparam("k_delivery")
_UPDATE_DELIVERY = update(deliveries).where(_DELIVERY)
_FINISH_ATTEMPT = update(attempts).where(and_(attempts.c.delivery_id == bindparam("k_delivery"),
                                              attempts.c.attempt == bindparam("k_attempt")))


class WebhooksProjection:
    name = "webhooks"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case WebhookPolicy.Event():
                self._policy_event(conn, event, position)
            case WebhookDelivery.Event():
                self._delivery_event(conn, event, position)
            case Project.Deleted():
                conn.execute(delete(policies).where(policies.c.project == event.project))

    def _policy_event(self, conn: Connection, event: WebhookPolicy.Event, position: int) -> None:
        where = policies.c.policy_id == str(event.originator_id)
        match event:
            case WebhookPolicy.Created():
                conn.execute(policies.insert().values(
                    id=position, policy_id=str(event.originator_id), project=event.project,
                    creator=event.actor, created_at=event.timestamp, **_policy_values(event)))
            case WebhookPolicy.Updated():
                conn.execute(update(policies).where(where).values(**_policy_values(event)))
            case WebhookPolicy.Deleted():
                conn.execute(delete(policies).where(where))

    def _delivery_event(self, conn: Connection, event: WebhookDelivery.Event, position: int) -> None:
        key, ts = str(event.originator_id), event.timestamp
        common = {"k_delivery": key, "version": event.originator_version, "updated_at": ts}
        match event:
            case WebhookDelivery.Created():
                conn.execute(deliveries.insert().values(
                    id=position, delivery_id=key, policy=event.policy, project=event.project,
                    event_position=event.event_position, event_type=event.event_type, target=event.target,
                    address=event.address, payload_format=event.payload_format,
                    payload=orjson.dumps(event.payload).decode(), status=PENDING, attempts=0,
                    next_attempt_at=ts, version=event.originator_version, created_at=ts, updated_at=ts))
            case WebhookDelivery.AttemptStarted():
                conn.execute(attempts.insert().values(delivery_id=key, attempt=event.attempt,
                                                      dispatcher=event.dispatcher, started_at=ts))
                conn.execute(_UPDATE_DELIVERY.values(
                    status=SENDING, attempts=event.attempt, lease_until=event.lease_until,
                    last_attempt_at=ts, first_attempt_at=func.coalesce(deliveries.c.first_attempt_at, ts)),
                    common)
            case WebhookDelivery.AttemptRecorded():
                self._attempt_recorded(conn, event, common)
            case WebhookDelivery.Delivered() | WebhookDelivery.GaveUp():
                status = DELIVERED if isinstance(event, WebhookDelivery.Delivered) else FAILED
                values = {"status": status, "next_attempt_at": None, "lease_until": None}
                if isinstance(event, WebhookDelivery.GaveUp):
                    values["last_error"] = func.coalesce(deliveries.c.last_error, event.reason)
                conn.execute(_UPDATE_DELIVERY.values(**values), common)
            case WebhookDelivery.RedeliveryRequested():
                conn.execute(_UPDATE_DELIVERY.values(status=PENDING, next_attempt_at=ts, lease_until=None,
                                                     first_attempt_at=None), common)
            case _:
                conn.execute(_UPDATE_DELIVERY.values(), common)

    def _attempt_recorded(self, conn: Connection, event: WebhookDelivery.AttemptRecorded, common: dict) -> None:
        outcome = {"status_code": event.status_code, "latency_ms": event.latency_ms}
        conn.execute(_FINISH_ATTEMPT.values(finished_at=event.timestamp, succeeded=event.succeeded,
                                            error=event.error, **outcome),
                     {"k_delivery": common["k_delivery"], "k_attempt": event.attempt})
        current = deliveries.c.attempts == event.attempt
        values = {**outcome, "last_error": event.error}
        if not event.succeeded and event.next_attempt_at is not None:
            values |= {"status": RETRYING, "next_attempt_at": event.next_attempt_at, "lease_until": None}
        conn.execute(_UPDATE_DELIVERY.where(current).values(**values), common)
        conn.execute(_UPDATE_DELIVERY.where(~current).values(), common)


def _policy_values(event) -> dict:
    targets = [dict(target, auth_header=header) for target, header in zip(event.targets, event.auth_header)]
    return {"name": event.name, "description": event.description, "enabled": event.enabled,
            "event_types": orjson.dumps(event.event_types).decode(), "targets": orjson.dumps(targets).decode(),
            "updated_at": event.timestamp}


@dataclass(frozen=True)
class PolicyRow:
    id: int
    policy_id: str
    project: str | None
    name: str
    description: str
    enabled: bool
    event_types: list[str]
    targets: list[Target]
    creator: str
    created_at: datetime
    updated_at: datetime

    def wants(self, event_type: str, project: str | None, position: int) -> bool:
        """Whether an event at `position` of `project` with this webhook type goes to this
        policy: only events recorded after the policy was created (its id is that position)."""
        return (self.enabled and event_type in self.event_types and position > self.id
                and (self.project is None or self.project == project))


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    delivery_id: str
    policy: int
    project: str | None
    event_position: int
    event_type: str
    target: int
    address: str
    payload_format: str
    payload: str
    status: str
    attempts: int
    status_code: int | None
    latency_ms: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    lease_until: datetime | None
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AttemptRow:
    delivery_id: str
    attempt: int
    dispatcher: str
    started_at: datetime
    finished_at: datetime | None
    succeeded: bool | None
    status_code: int | None
    latency_ms: int | None
    error: str | None


@dataclass(frozen=True)
class DeliveryFilter:
    policy: int
    statuses: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()


class WebhooksView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def policy(self, policy_id: int) -> PolicyRow | None:
        rows = self._policies(select(policies).where(policies.c.id == policy_id))
        return rows[0] if rows else None

    def policy_by_uuid(self, policy_id: UUID) -> PolicyRow | None:
        rows = self._policies(select(policies).where(policies.c.policy_id == str(policy_id)))
        return rows[0] if rows else None

    def policies(self, project: str | None) -> list[PolicyRow]:
        """A project's policies, or (None) the instance-wide ones."""
        scope = policies.c.project.is_(None) if project is None else policies.c.project == project
        return self._policies(select(policies).where(scope).order_by(policies.c.id))

    def enabled_policies(self) -> list[PolicyRow]:
        return self._policies(select(policies).where(policies.c.enabled).order_by(policies.c.id))

    def name_taken(self, project: str | None, name: str, other_than: int | None = None) -> bool:
        return any(row.name == name and row.id != other_than for row in self.policies(project))

    def delivery(self, delivery: int) -> DeliveryRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.id == delivery)).first()
        return None if row is None else DeliveryRow(*row)

    def deliveries(self, query: DeliveryFilter, offset: int, limit: int) -> tuple[list[DeliveryRow], int]:
        """Newest first."""
        selected = select(deliveries).where(deliveries.c.policy == query.policy)
        if query.statuses:
            selected = selected.where(deliveries.c.status.in_(query.statuses))
        if query.event_types:
            selected = selected.where(deliveries.c.event_type.in_(query.event_types))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(selected.subquery())).scalar_one()
            rows = conn.execute(selected.order_by(deliveries.c.id.desc()).offset(offset).limit(limit))
            return [DeliveryRow(*row) for row in rows], total

    def attempts(self, delivery_id: str) -> list[AttemptRow]:
        query = select(attempts).where(attempts.c.delivery_id == delivery_id).order_by(attempts.c.attempt)
        with self.engine.connect() as conn:
            return [AttemptRow(*row) for row in conn.execute(query)]

    def due(self, now: datetime, limit: int, excluding: set[str] = frozenset()) -> list[DeliveryRow]:
        """Deliveries to attempt now, soonest first: pending or retrying ones whose time has come,
        and attempts whose sender's lease ran out. Deliveries of disabled policies wait; those
        whose policy is gone are included (to be given up)."""
        waiting = and_(deliveries.c.status.in_((PENDING, RETRYING)), deliveries.c.next_attempt_at <= now)
        abandoned = and_(deliveries.c.status == SENDING, deliveries.c.lease_until <= now)
        query = (select(deliveries).select_from(deliveries.outerjoin(policies, policies.c.id == deliveries.c.policy))
                 .where(or_(waiting, abandoned), or_(policies.c.id.is_(None), policies.c.enabled))
                 .order_by(deliveries.c.next_attempt_at, deliveries.c.id).limit(limit + len(excluding)))
        with self.engine.connect() as conn:
            rows = [DeliveryRow(*row) for row in conn.execute(query)]
        return [row for row in rows if row.delivery_id not in excluding][:limit]

    def last_triggers(self, policy_ids: list[int]) -> dict[tuple[int, str], datetime]:
        """(policy, event type) → when its latest delivery was created."""
        query = (select(deliveries.c.policy, deliveries.c.event_type, func.max(deliveries.c.created_at))
                 .where(deliveries.c.policy.in_(policy_ids))
                 .group_by(deliveries.c.policy, deliveries.c.event_type))
        with self.engine.connect() as conn:
            return {(policy, event_type): at for policy, event_type, at in conn.execute(query)}

    def _policies(self, query) -> list[PolicyRow]:
        with self.engine.connect() as conn:
            return [_policy_row(row) for row in conn.execute(query)]


def _policy_row(row) -> PolicyRow:
    values = row._asdict()
    values["event_types"] = orjson.loads(values["event_types"])
    values["targets"] = [Target(**target) for target in orjson.loads(values["targets"])]
    return PolicyRow(**values)
