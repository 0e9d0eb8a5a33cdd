"""`portlog serve --workers 2`: two processes on one data directory, reading each other's writes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.oci import push_image
from tests.support.server import start_server

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
