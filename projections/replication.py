"""Replication read model: policies as the APIs list them (their public id is the log position
of their creation), and which endpoints they use (an endpoint in use cannot be deleted)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import BigInteger, Column, Connection, DateTime, MetaData, Table, Text, delete, or_, select, update

from domain.replication import PolicySettings, ReplicationPolicy
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
policies = Table(
    "replication_policies", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", Name(255), nullable=False, unique=True),
    Column("source", Name(255)),
    Column("destination", Name(255)),
    Column("settings", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class ReplicationProjection:
    name = "replication"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case ReplicationPolicy.Created() | ReplicationPolicy.Recreated():
                conn.execute(delete(policies).where(policies.c.name == event.policy))
                conn.execute(policies.insert().values(id=position, name=event.policy, created_at=event.timestamp,
                                                      **_columns(event)))
            case ReplicationPolicy.Updated():
                conn.execute(update(policies).where(policies.c.name == event.policy).values(**_columns(event)))
            case ReplicationPolicy.Deleted():
                conn.execute(delete(policies).where(policies.c.name == event.policy))


def _columns(event) -> dict:
    settings = event.settings
    return dict(source=settings["source"], destination=settings["destination"],
                settings=orjson.dumps(settings).decode(), updated_at=event.timestamp)


@dataclass(frozen=True)
class PolicyRow:
    id: int
    name: str
    settings: PolicySettings
    created_at: datetime
    updated_at: datetime


class ReplicationView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def policies(self) -> list[PolicyRow]:
        with self.engine.connect() as conn:
            return [_row(row) for row in conn.execute(select(policies).order_by(policies.c.id))]

    def policy(self, policy_id: int) -> PolicyRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(policies).where(policies.c.id == policy_id)).first()
        return _row(row) if row else None

    def by_name(self, name: str) -> PolicyRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(policies).where(policies.c.name == name)).first()
        return _row(row) if row else None

    def using_endpoint(self, endpoint: str) -> list[str]:
        query = select(policies.c.name).where(or_(policies.c.source == endpoint, policies.c.destination == endpoint))
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(policies.c.name)).scalars())


def _row(row) -> PolicyRow:
    return PolicyRow(row.id, row.name, PolicySettings.from_fields(orjson.loads(row.settings)), row.created_at,
                     row.updated_at)
