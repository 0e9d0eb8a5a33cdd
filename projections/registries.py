"""Registry endpoints read model: what the APIs list (never a secret, sealed or not: only
whether one is stored). An endpoint's public id is the log position of its creation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)

from domain.registries import RegistryEndpoint
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
endpoints = Table(
    "registry_endpoints", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", Name(255), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("type", String(40), nullable=False),
    Column("insecure", Boolean, nullable=False),
    Column("description", Text, nullable=False),
    Column("access_key", Text),
    Column("has_secret", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class RegistriesProjection:
    name = "registries"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case RegistryEndpoint.Created() | RegistryEndpoint.Recreated():
                conn.execute(delete(endpoints).where(endpoints.c.name == event.registry))
                conn.execute(endpoints.insert().values(
                    id=position, name=event.registry, created_at=event.timestamp, **_columns(event)))
            case RegistryEndpoint.Updated():
                conn.execute(update(endpoints).where(endpoints.c.name == event.registry).values(**_columns(event)))
            case RegistryEndpoint.Deleted():
                conn.execute(delete(endpoints).where(endpoints.c.name == event.registry))


def _columns(event) -> dict:
    return dict(url=event.url, type=event.type, insecure=event.insecure, description=event.description,
                access_key=event.access_key, has_secret=event.access_secret is not None, updated_at=event.timestamp)


@dataclass(frozen=True)
class EndpointRow:
    id: int
    name: str
    url: str
    type: str
    insecure: bool
    description: str
    access_key: str | None
    has_secret: bool
    created_at: datetime
    updated_at: datetime


class RegistriesView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def all(self) -> list[EndpointRow]:
        with self.engine.connect() as conn:
            return [EndpointRow(**row._mapping) for row in conn.execute(select(endpoints).order_by(endpoints.c.id))]

    def by_id(self, endpoint_id: int) -> EndpointRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(endpoints).where(endpoints.c.id == endpoint_id)).first()
        return EndpointRow(**row._mapping) if row else None

    def by_name(self, name: str) -> EndpointRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(endpoints).where(endpoints.c.name == name)).first()
        return EndpointRow(**row._mapping) if row else None
