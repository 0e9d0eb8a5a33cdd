"""`portlog projections rebuild` drops every read model: under a running server its workers would
fail (`no such table: webhook_deliveries`), so it refuses while one runs (docs/operations.md)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.support.server import REPO_ROOT, start_server

pytestmark = pytest.mark.e2e


def rebuild(data_dir) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "projections", "rebuild", "--data-dir", str(data_dir)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def test_rebuild_refuses_while_a_server_runs_and_works_once_it_stopped(tmp_path):
    data = tmp_path / "data"
    server = start_server(data, tmp_path / "serve.log", projects=("team",))
    try:
        assert f"ready on http://127.0.0.1:{server.port}\n" in server.log_path.read_text()
        refused = rebuild(data)
        assert refused.returncode == 1 and refused.stdout == ""
        assert f"a server is running on this registry: 127.0.0.1:{server.port} (pid {server.process.pid}" \
            in refused.stderr
        time.sleep(2)  # the workers' next rounds run on the read models, still there
        with server.client() as client:
            assert client.get("/api/v1/projects/team").status_code == 200
            assert client.get("/api/v1/webhooks").status_code == 200
        assert "Traceback" not in server.log_path.read_text()
    finally:
        server.stop()
    rebuilt = rebuild(data)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "webhooks: rebuilt to position" in rebuilt.stdout
