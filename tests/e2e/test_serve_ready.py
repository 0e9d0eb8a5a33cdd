"""`portlog serve` says "ready on URL" once it accepts connections, and only if it is the one
that does (the README's walkthrough waits for it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.server import ADMIN_PASSWORD, REPO_ROOT, start_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_ready_is_printed_once_listening_and_not_when_the_port_is_taken(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "serve.log")
    try:
        # Printed by a thread that probes the port every 0.1 s: on a busy machine, after our own probe.
        log = wait_until(lambda: "ready on" in (text := server.log_path.read_text()) and text, timeout=10,
                         what="'ready on' in the log")
        assert log.count(f"ready on http://127.0.0.1:{server.port}\n") == 1
        assert log.index("Application startup complete") < log.index("ready on")
        second = subprocess.run([sys.executable, "-m", "cli", "serve", "--port", str(server.port),
                                 "--data-dir", str(tmp_path / "other")], cwd=REPO_ROOT, capture_output=True,
                                text=True, timeout=60, env={**os.environ, "PORTLOG_ADMIN_PASSWORD": ADMIN_PASSWORD})
        assert second.returncode != 0 and "address already in use" in second.stderr.lower()
        assert "ready on" not in second.stdout + second.stderr
    finally:
        server.stop()
