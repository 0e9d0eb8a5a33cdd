"""The replay path of the projection runner: idle catch-ups, the driver-level writes, rebuilds."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, bindparam, select, update

from domain.context import RequestContext
from projections.fast_writes import FastWrites, Plans
from projections.runner import ProjectionRunner, positions

pytestmark = pytest.mark.both_databases

HANG_GUARD_SECONDS = 60  # not a timing assertion: only so that a regression fails instead of hanging


def _in_thread(call):
    """Runs `call` in a thread; (finished, result or exception)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except Exception as error:  # reported to the test
            outcome["value"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_SECONDS)
    return not thread.is_alive(), outcome.get("value")


def test_an_idle_catch_up_opens_no_write_transaction(services):
    reached = services.projections.catch_up()
    with services.db.writer.connect() as other:  # another process's batch: holds the write lock
        other.begin()
        other.execute(select(positions).with_for_update()).all()
        finished, value = _in_thread(services.projections.catch_up)
        other.rollback()
    assert finished and value == reached == services.log_store.head()


def test_a_catch_up_after_an_idle_one_applies_what_is_new(services):
    services.projections.catch_up()
    position = services.admin.create_project("later", False, RequestContext("admin", "t"))
    assert services.projections.catch_up() >= position
    assert services.access.project("later") is not None
    assert min(services.projections.positions().values()) >= position


def test_rebuilding_some_read_models_keeps_the_others_positions(services):
    before = services.projections.positions()
    catalog = [p for p in services.projections.projections if p.name == "catalog"]
    ProjectionRunner(services.db, services.registry, catalog).rebuild()
    assert services.projections.positions() == before


scratch = MetaData()
rows = Table(
    "test_fast_writes", scratch,
    Column("name", String(50), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("state", String(20)),
    Column("at", DateTime(timezone=True), nullable=False),
)
_INSERT = rows.insert()
_BUMP = update(rows).where(rows.c.name == bindparam("k_name")).values(
    count=rows.c.count + bindparam("k_delta"), state="bumped", at=bindparam("k_at"))


def _write(conn, moment: datetime) -> list[int]:
    """The same writes through whatever `conn` is; the rowcounts of the updates."""
    counts = []
    for number in range(3):
        conn.execute(_INSERT, dict(name=f"row{number}", count=number, state=None, at=moment))
        counts.append(conn.execute(_BUMP, dict(k_name=f"row{number}", k_delta=10, k_at=moment)).rowcount)
    counts.append(conn.execute(_BUMP, dict(k_name="missing", k_delta=1, k_at=moment)).rowcount)
    conn.execute(rows.delete().where(rows.c.name == "row0"))  # built per call: SQLAlchemy runs it
    return counts


def test_fast_writes_store_what_sqlalchemy_stores(services):
    moment = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=timezone.utc)
    scratch.create_all(services.db.writer)
    try:
        stored = []
        for through_driver in (False, True):
            with services.db.writer.begin() as conn:
                conn.execute(rows.delete())
                writes = FastWrites(conn, Plans(conn.dialect)) if through_driver else conn
                counts = _write(writes, moment)
                if through_driver:
                    writes.close()
            with services.db.reader.connect() as conn:
                stored.append((counts, sorted(tuple(row) for row in conn.execute(select(rows)))))
        assert stored[0] == stored[1]
        assert stored[1][0] == [1, 1, 1, 0]
        assert stored[1][1][0][:3] == ("row1", 11, "bumped")
    finally:
        scratch.drop_all(services.db.writer)
