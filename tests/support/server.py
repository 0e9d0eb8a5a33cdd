"""Runs `portlog serve` as a real process on a free loopback port."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from infra.services import processes
from tests.support.outbound import LOOPBACK

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "Portlog-Test-1"


def free_port() -> int:
    """A free loopback port of this pytest-xdist worker's own share (infra/services/processes.py):
    no other worker picks it between this probe and the server's bind."""
    return processes.free_port()


@dataclass
class LiveServer:
    process: subprocess.Popen
    port: int
    data_dir: Path
    log_path: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def admin_auth(self) -> tuple[str, str]:
        return ("admin", ADMIN_PASSWORD)

    @property
    def admin_creds(self) -> str:
        """For skopeo's --creds / --src-creds / --dest-creds."""
        return f"admin:{ADMIN_PASSWORD}"

    @property
    def basic_authorization(self) -> str:
        return "Basic " + base64.b64encode(self.admin_creds.encode()).decode()

    def client(self, **kwargs) -> httpx.Client:
        """An HTTP client authenticated as the administrator (Basic)."""
        return httpx.Client(base_url=self.url, auth=self.admin_auth, timeout=60, **kwargs)

    def child_pids(self) -> list[int]:
        """The processes `serve` started: with `--workers N`, the workers and multiprocessing's
        resource tracker; none with one worker."""
        pid = self.process.pid
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def worker_pids(self) -> list[int]:
        """uvicorn's worker processes (multiprocessing spawns them; the tracker is no worker)."""
        return [pid for pid in self.child_pids() if b"spawn_main" in _cmdline(pid)]

    def rss_bytes(self) -> int:
        """Current resident set size of the whole server: `serve` and its children, from /proc."""
        return _status_bytes(self.process.pid, "VmRSS") + sum(_status_bytes(pid, "VmRSS", gone=0)
                                                              for pid in self.child_pids())

    def peak_rss_bytes(self) -> int:
        """The sum of each process's peak resident set size (at least the server's peak)."""
        return _status_bytes(self.process.pid, "VmHWM") + sum(_status_bytes(pid, "VmHWM", gone=0)
                                                              for pid in self.child_pids())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:  # ended since it was listed
        return b""


def _status_bytes(pid: int, field: str, gone: int | None = None) -> int:
    """A size from /proc/PID/status; `gone` for a process that ended meanwhile (None: raise)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        if gone is None:
            raise
        return gone
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for process {pid}")


def start_server(data_dir: Path, log_path: Path, extra_env: dict[str, str] | None = None,
                 projects: tuple[str, ...] = (), port: int | None = None, access_log: bool = False,
                 default_workers: bool = False) -> LiveServer:
    """`port`: the one a server that was stopped listened on (a restart). One worker process
    unless `extra_env` names PORTLOG_WORKERS, or `default_workers` asks for the real default (one
    per CPU): a kill -9 then hits the one process that serves, memory figures do not depend on
    the machine's cores, and parallel test workers on a 2-core machine do not each start a
    process per core."""
    port = port or free_port()
    inherited = {key: value for key, value in os.environ.items() if key != "PORTLOG_WORKERS"}
    env = {**inherited, **({} if default_workers else {"PORTLOG_WORKERS": "1"}),
           "PORTLOG_ADMIN_PASSWORD": ADMIN_PASSWORD, "PORTLOG_OUTBOUND_ALLOW": ",".join(LOOPBACK),
           **(extra_env or {})}
    command = [sys.executable, "-m", "cli", "serve", "--port", str(port),
               "--data-dir", str(data_dir), *([] if access_log else ["--no-access-log"])]
    log = open(log_path, "wb")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(process, port, data_dir, log_path)
    _wait_ready(server)
    with server.client() as client:
        for project in projects:
            response = client.post("/api/v1/projects", json={"name": project})
            assert response.status_code == 201, response.text
    return server


def _wait_ready(server: LiveServer, timeout: float = 60.0) -> None:
    # Generous: with every test worker busy, a server's worker processes may take 20 s to start.
    try:
        processes.wait_for_health(server.process, f"{server.url}/api/v1/projects", server.log_path, timeout)
    except (processes.ExitedEarly, TimeoutError) as error:
        server.stop()
        raise RuntimeError(f"portlog serve did not become ready ({error}):\n{server.log_path.read_text()}") from None


def collect_garbage(client: httpx.Client, grace_seconds: int = 0, timeout: float = 60.0) -> dict:
    """Starts a GC run through the API and waits for it: the finished run, which succeeded."""
    response = client.post("/api/v1/gc/runs", json={"grace_period_seconds": grace_seconds})
    assert response.status_code == 202, response.text
    run, deadline = response.json(), time.monotonic() + timeout
    while run["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        run = client.get(f"/api/v1/gc/runs/{run['id']}").json()
    assert run["status"] == "succeeded", run
    return run
