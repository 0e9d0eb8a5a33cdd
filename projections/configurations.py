"""Configuration read model: the values set through `/api/v2.0/configurations` (secrets as
sealed there), one row per key, with who set it and when. What is in force also depends on the
operator's pinned values and the defaults: domain/configuration.py `effective` combines them.
Every login of a directory user reads it: `stored()` is one small query."""

from __future__ import annotations

import orjson
from sqlalchemy import Column, Connection, DateTime, MetaData, String, Table, Text, delete, insert, select

from domain.configuration import SystemConfiguration
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
values_table = Table(
    "config_values", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("changed_by", Name(255), nullable=False),
)


class ConfigurationProjection:
    name = "configurations"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        if isinstance(event, SystemConfiguration.Changed):
            for key, value in event.values.items():
                conn.execute(delete(values_table).where(values_table.c.key == key))
                conn.execute(insert(values_table).values(key=key, value=orjson.dumps(value).decode(),
                                                         changed_at=event.timestamp, changed_by=event.actor))


class ConfigurationView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def stored(self) -> dict:
        with self.engine.connect() as conn:
            return {key: orjson.loads(value) for key, value in
                    conn.execute(select(values_table.c.key, values_table.c.value))}
