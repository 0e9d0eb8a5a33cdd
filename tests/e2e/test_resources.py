"""Resources of a live `portlog serve` stay bounded under bursts of load: the thread pool's
threads come and go, and what a thread opened must go with it."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.oci import push_blob
from tests.support.server import start_server

pytestmark = pytest.mark.e2e

BURST = 40  # concurrent uploads: the thread pool grows to about this many threads
# anyio's worker threads end after idling 10 s (WorkerThread.MAX_IDLE_TIME); a pause longer
# than that lets every thread of the burst end.
PAUSE_SECONDS = 11.5
FD_SLACK = 12  # pooled connections may come and go between two counts, in each worker process
SETTLE_SECONDS = 15


def open_fds(pid: int) -> int:
    """Open files of the process and of its children (the worker processes of --workers N)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum(len(os.listdir(f"/proc/{p}/fd")) for p in [pid, *children])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_open_files_return_to_the_baseline_after_bursts_of_concurrent_uploads(tmp_path, workers):
    server = start_server(tmp_path / "data", tmp_path / "serve.log", projects=("team",),
                          extra_env={"PORTLOG_WORKERS": workers})
    try:
        def upload(i: int, burst: int) -> None:
            with server.client() as client:
                push_blob(client, f"team/burst{i}", os.urandom(1024) + f"{burst}-{i}".encode())

        def burst_then_pause(burst: int, limit: int | None = None) -> int:
            with ThreadPoolExecutor(BURST) as pool:
                list(pool.map(upload, range(BURST), [burst] * BURST))
            time.sleep(PAUSE_SECONDS)
            # On a busy machine (tests in parallel) a thread may end late, or the requests may all reach
            # one worker process: count again for a while. What a leak holds never comes back.
            deadline = time.monotonic() + SETTLE_SECONDS
            while True:
                for _ in range(4):  # anyio ends idle threads when the pool is next used (in each worker)
                    with server.client() as client:
                        assert client.get("/v2/team/burst0/tags/list").status_code in (200, 404)
                time.sleep(1)
                count = open_fds(server.process.pid)
                if limit is None or count <= limit or time.monotonic() > deadline:
                    return count

        # A leak keeps a file per upload (BURST per burst); each worker's pools may come and go.
        slack = FD_SLACK * int(workers)
        baseline = burst_then_pause(0)  # pools warmed up, the burst's threads gone
        after = [burst_then_pause(n, limit=baseline + slack) for n in (1, 2)]
        # On a busy machine the first burst may not grow the pools as far as a later one does: then
        # the second burst must add nothing to the first, which stays under one file per upload.
        assert max(after) <= baseline + slack or (after[0] < baseline + BURST and after[1] <= after[0] + slack), (
            baseline, after)
    finally:
        server.stop()


def worker_environments(pid: int) -> list[dict[str, str]]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [dict(item.split("=", 1) for item in Path(f"/proc/{child}/environ").read_text().split("\0") if "=" in item)
            for child in children]


@pytest.mark.parametrize(("given", "expected"), [(None, "2"), ("4", "4")])
def test_worker_processes_run_with_few_malloc_arenas_unless_the_operator_says_otherwise(tmp_path, given, expected):
    env = {"PORTLOG_WORKERS": "2", **({"MALLOC_ARENA_MAX": given} if given else {})}
    previous = os.environ.pop("MALLOC_ARENA_MAX", None)  # the test's own environment must not decide
    try:
        server = start_server(tmp_path / "data", tmp_path / "serve.log", extra_env=env)
    finally:
        if previous is not None:
            os.environ["MALLOC_ARENA_MAX"] = previous
    try:
        values = [e.get("MALLOC_ARENA_MAX") for e in worker_environments(server.process.pid)]
        assert len(values) >= 2 and set(values) == {expected}, values  # the workers (and multiprocessing's helper)
    finally:
        server.stop()
