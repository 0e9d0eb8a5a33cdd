"""A server's CPU and memory in the benchmark are its whole process tree: a multi-worker Portlog
is a uvicorn supervisor and its workers (infra/bench/cpu.py, servers.py). The first test reads a
made-up process table; the second a real two-worker Portlog."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from infra.bench import cpu, servers
from infra.bench.cpu import KTHREADD, _outsiders_seconds, _Process, _tree, _tree_seconds


def test_the_server_tree_holds_its_descendants_and_outsiders_exclude_the_benchmark():
    me = os.getpid()
    processes = {
        1: _Process(0, 5.0, 0.0), KTHREADD: _Process(0, 1.0, 0.0), 50: _Process(KTHREADD, 3.0, 0.0),
        me: _Process(1, 2.0, 0.0),
        100: _Process(me, 1.0, 0.5),  # the server; 0.5 s of a worker that ended
        101: _Process(100, 4.0, 0.0), 102: _Process(101, 1.0, 0.0),  # a worker, and what it started
        103: _Process(me, 6.0, 0.0),  # another server of the run
        104: _Process(103, 8.0, 0.0),  # its worker
        200: _Process(me, 7.0, 0.0),  # a client process
        300: _Process(1, 9.0, 0.0), 301: _Process(300, 2.0, 0.0),  # something else on the machine
    }
    tree = _tree(100, processes)
    assert tree == {100, 101, 102}
    assert _tree_seconds(tree, processes) == 1.0 + 0.5 + 4.0 + 1.0
    assert _outsiders_seconds(processes) == 5.0 + 9.0 + 2.0  # init and the other program only


def _own_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / cpu.CLOCK_TICKS


@pytest.mark.e2e
def test_a_two_worker_portlog_is_measured_as_its_supervisor_and_workers(tmp_path):
    server = servers.start_portlog(tmp_path / "portlog", backends={"PORTLOG_WORKERS": "2"}, quiet=False)
    try:
        deadline = time.monotonic() + 60
        while len(server.workers()) < 2 and time.monotonic() < deadline:  # ready once one worker answers
            time.sleep(0.1)
        workers = server.workers()
        assert len(workers) == 2 and server.pid not in workers, server.processes()
        assert set(workers) < set(server.processes())
        apart = _own_seconds(server.pid) + sum(_own_seconds(pid) for pid in workers)  # read first: times only grow
        assert server.cpu_seconds() >= apart
        largest = server.largest_worker_peak_rss_bytes()
        assert 0 < largest < server.peak_rss_bytes()
        tree = server.processes()
    finally:
        server.stop()
    left = [pid for pid in tree if servers._start_time(pid) is not None]  # zombies aside
    assert left == [], left
