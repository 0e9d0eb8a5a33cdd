"""Follows the notification log and keeps read models up to date, exactly once.

Each projection records the last notification id it applied in `projection_positions`,
in the same transaction as its rows. Any process may run `catch_up`: the position row is
locked for the batch, so a notification is applied once whichever node gets there first.
Positions have gaps on PostgreSQL, so we always ask for ids greater than the last one seen.
"""

from __future__ import annotations

import threading
import time
from typing import Iterable, Protocol

from eventsourcing.application import Application
from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, select, update

from projections.database import ReadModelDatabase

BATCH_SIZE = 500

metadata = MetaData()
positions = Table(
    "projection_positions",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)


class Projection(Protocol):
    name: str
    metadata: MetaData

    def apply(self, conn: Connection, event: object) -> None: ...


class ProjectionRunner:
    def __init__(self, db: ReadModelDatabase, app: Application,
                 projections: Iterable[Projection]) -> None:
        self.db = db
        self.app = app
        self.projections = list(projections)
        self._lock = threading.Lock()
        self._reached = 0

    def create_tables(self) -> None:
        metadata.create_all(self.db.writer)
        for projection in self.projections:
            projection.metadata.create_all(self.db.writer)
        with self.db.writer.begin() as conn:
            known = set(conn.execute(select(positions.c.name)).scalars())
            for projection in self.projections:
                if projection.name not in known:
                    conn.execute(positions.insert().values(name=projection.name, position=0))

    def wait_for(self, position: int | None, timeout: float = 30.0) -> None:
        """Returns once every read model has applied notification `position`."""
        if position is None or self._reached >= position:
            return
        deadline = time.monotonic() + timeout
        while self.catch_up() < position:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read models did not reach position {position}")
            time.sleep(0.005)

    def catch_up(self) -> int:
        """Applies everything new in the log; returns the position all read models reached."""
        with self._lock:
            reached = min(self._catch_up_one(p) for p in self.projections)
            self._reached = max(self._reached, reached)
            return reached

    def positions(self) -> dict[str, int]:
        with self.db.reader.connect() as conn:
            return dict(conn.execute(select(positions.c.name, positions.c.position)).all())

    def rebuild(self) -> None:
        """Drops every read model and replays the whole log into it."""
        with self._lock:
            for projection in self.projections:
                projection.metadata.drop_all(self.db.writer)
            with self.db.writer.begin() as conn:
                conn.execute(positions.delete())
            self._reached = 0
        self.create_tables()
        self.catch_up()

    def _catch_up_one(self, projection: Projection) -> int:
        while True:
            position, applied = self._apply_batch(projection)
            if not applied:
                return position

    def _apply_batch(self, projection: Projection) -> tuple[int, int]:
        with self.db.writer.begin() as conn:
            current = conn.execute(
                select(positions.c.position)
                .where(positions.c.name == projection.name)
                .with_for_update()
            ).scalar_one()
            notifications = self.app.recorder.select_notifications(
                start=current, limit=BATCH_SIZE, inclusive_of_start=False
            )
            for notification in notifications:
                projection.apply(conn, self.app.mapper.to_domain_event(notification))
            if not notifications:
                return current, 0
            last = notifications[-1].id
            conn.execute(
                update(positions)
                .where(positions.c.name == projection.name)
                .values(position=last)
            )
            return last, len(notifications)
