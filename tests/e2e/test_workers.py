"""`portlog serve --workers N`: several processes on one data directory, reading each other's
writes; the default, one per CPU; the workers of a killed `serve` stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support.images import build_image_layout
from tests.support.oci import push_image
from tests.support.server import start_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_two_workers_share_one_log(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "serve.log", extra_env={"PORTLOG_WORKERS": "2"},
                          projects=("team",))
    try:
        def push_and_read(i: int) -> str:
            with server.client() as client:  # a new connection: either worker may answer
                digest, _ = push_image(client, "team/app", f"t{i}", seed=str(i))
                read = client.get(f"/v2/team/app/manifests/t{i}")
                assert read.status_code == 200 and read.headers["Docker-Content-Digest"] == digest
                return digest

        with ThreadPoolExecutor(8) as pool:
            digests = list(pool.map(push_and_read, range(16)))
        tags = httpx.get(f"{server.url}/v2/team/app/tags/list", auth=server.admin_auth).json()["tags"]
        assert sorted(tags) == sorted(f"t{i}" for i in range(16)) and len(set(digests)) == 16
        log = server.log_path.read_text()
        assert log.count("Started server process") == 2, log
        # /metrics sums both workers' counts (prometheus_client's multiprocess mode), whichever answers
        for _ in range(3):
            metrics = httpx.get(f"{server.url}/metrics", auth=server.admin_auth).text
            assert 'portlog_manifest_pushes_total{project="team"} 16.0' in metrics
            assert 'portlog_manifest_pulls_total{project="team"} 16.0' in metrics
        assert list((tmp_path / "data" / "metrics").glob("*.db"))  # the workers' files, under the data dir
    finally:
        server.stop()


def test_two_workers_on_postgresql_stay_within_the_node_s_connections(tmp_path, postgres_server):
    dsn = postgres_server.create_database(durable=False)
    server = start_server(tmp_path / "data", tmp_path / "serve.log", projects=("team",),
                          extra_env={"PORTLOG_WORKERS": "2", "PORTLOG_DATABASE_URL": dsn})
    try:
        def push_and_read(i: int) -> None:
            with server.client() as client:  # a new connection: either worker may answer
                digest, _ = push_image(client, "team/app", f"t{i}", seed=str(i))
                assert client.get(f"/v2/team/app/manifests/t{i}").headers["Docker-Content-Digest"] == digest

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(push_and_read, range(32)))
        with httpx.Client(base_url=server.url, auth=server.admin_auth) as client:
            assert len(client.get("/v2/team/app/tags/list").json()["tags"]) == 32
        with psycopg.connect(dsn) as connection:
            (opened,) = connection.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND pid <> pg_backend_pid()").fetchone()
        # each worker: 8 readers, 2 writers, the event store's 2 kept open and 5 more (docs/operations.md)
        assert 2 <= opened <= 2 * (8 + 2 + 2 + 5), opened
    finally:
        server.stop()
        postgres_server.drop_database(dsn)


def test_workers_stop_when_the_serve_process_is_killed(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "serve.log", extra_env={"PORTLOG_WORKERS": "2"})
    workers = server.worker_pids()
    assert len(workers) == 2, workers
    expected = {f"gauge_livemax_{pid}.db" for pid in workers}
    wait_until(lambda: live_gauge_files(server) == expected, timeout=30, what="both workers started")
    server.process.kill()  # SIGKILL: uvicorn's supervisor cannot stop its workers
    server.process.wait()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)], server.log_path.read_text()
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass  # nobody listens on the port any more
        assert server.log_path.read_text().count("is gone: worker") == 2
        assert live_gauge_files(server) == set()  # each worker's shutdown took its live gauges out
    finally:
        for pid in filter(_alive, workers):  # the test failed: leave no server behind
            os.kill(pid, signal.SIGKILL)


def test_the_default_serves_with_a_worker_per_cpu_through_skopeo(tmp_path):
    cpus = len(os.sched_getaffinity(0))
    server = start_server(tmp_path / "data", tmp_path / "serve.log", projects=("team",), default_workers=True)
    try:
        workers = server.worker_pids()
        assert len(workers) == (cpus if cpus > 1 else 0), (cpus, workers)
        image = build_image_layout(tmp_path / "layout", "1.0")
        registry = f"docker://{server.host}/team/app:1.0"
        _skopeo("copy", "--dest-tls-verify=false", "--dest-creds", server.admin_creds,
                f"oci:{image.layout}:1.0", registry)
        pulled = tmp_path / "pulled"
        _skopeo("copy", "--src-tls-verify=false", "--src-creds", server.admin_creds, registry, f"oci:{pulled}:1.0")
        index = json.loads((pulled / "index.json").read_bytes())
        assert [m["digest"] for m in index["manifests"]] == [image.manifest_digest]
        if cpus > 1:
            assert len(_workers_that_answered(server, workers)) > 1
    finally:
        server.stop()


def _workers_that_answered(server, workers: list[int]) -> set[int]:
    """The workers that counted a request: each writes its counters to a file of its own
    (prometheus_client's multiprocess mode) on the first one. The kernel hands connections to
    whichever worker accepts first, so a few fresh connections more are made until two did."""
    def answered() -> set[int]:
        files = (server.data_dir / "metrics").glob("counter_*.db")
        return {int(path.stem.removeprefix("counter_")) for path in files} & set(workers)

    for _ in range(200):
        if len(answered()) > 1:
            break
        with server.client() as client:  # a new connection
            assert client.get("/v2/team/app/tags/list").status_code == 200
    return answered()


def live_gauge_files(server) -> set[str]:
    """prometheus_client's files of gauges that count only while their process lives."""
    return {path.name for path in (server.data_dir / "metrics").glob("gauge_live*.db")}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited (its new parent reaps it)


def _skopeo(*args: str) -> None:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"skopeo {' '.join(args)}: {result.stderr}"
