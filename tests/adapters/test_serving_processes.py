"""The `portlog serve` processes a registry knows of (what `projections rebuild` checks), on the
read-model database every node shares: SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess

import pytest

from adapters.serving_processes import STALE_AFTER_SECONDS, ServingProcesses, serving

pytestmark = pytest.mark.both_databases


def test_a_serving_process_is_seen_until_it_leaves(services):
    table = ServingProcesses(services.db)
    with serving(table, "127.0.0.1:5000"):
        [seen] = table.running()
        assert seen.address == "127.0.0.1:5000" and seen.pid > 0
    assert table.running() == []


def test_a_process_that_died_is_not_seen(services):
    clock = [1000.0]
    table = ServingProcesses(services.db, clock=lambda: clock[0])
    table.announce("silent", "10.0.0.1:5000")
    assert [p.address for p in table.running()] == ["10.0.0.1:5000"]
    clock[0] += STALE_AFTER_SECONDS + 1  # no heartbeat since: a node that died
    assert table.running() == []
    gone = subprocess.Popen(["true"])
    gone.wait()
    table.announce("killed", "127.0.0.1:5001")
    with services.db.writer.begin() as conn:  # its row says the pid of a process of this machine that ended
        conn.exec_driver_sql(f"UPDATE serving_processes SET pid = {gone.pid} WHERE id = 'killed'")
    assert table.running() == []
