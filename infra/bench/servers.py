"""Starts Portlog (embedded, or a scale-out node on PostgreSQL and S3) and CNCF Distribution
(`docker-registry`) on free loopback ports, each with its own directory, and reads their peak
resident memory and CPU time from /proc. Portlog gets an administrator password and a `bench`
project when it asks for authentication."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from infra.bench import cpu
from infra.bench.auth import TokenAuth
from infra.bench.client import Connection

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PROJECT = "bench"  # every benchmark repository is bench/...; Portlog needs the project to exist
# The observability overhead's servers.
NO_METRICS, TRACED, SAMPLED = "Portlog no metrics", "Portlog traced", "Portlog traced 10 %"

DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {host}:{port}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    directory: Path
    credentials: tuple[str, str] | None = None  # when the server asks for authentication
    cleanup: list[Callable[[], None]] = field(default_factory=list)  # backing services to stop
    source: Path = REPO_ROOT  # the code Portlog runs (its CLI too)
    environment: dict[str, str] = field(default_factory=dict)  # Portlog's PORTLOG_* backends (its CLI's too)
    receiver: object | None = None  # the OTLP receiver of a traced Portlog (its spans are counted)

    @property
    def host(self) -> str:
        return HOST

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def connect(self) -> Connection:
        """A new connection, which authenticates the way registry clients do when asked to."""
        return Connection(HOST, self.port, TokenAuth(*self.credentials) if self.credentials else None)

    def authorization(self, target: str) -> dict[str, str]:
        """The header a tool without token support (wrk) needs for `target`; empty when none."""
        if not self.credentials:
            return {}
        conn = self.connect()
        conn.request("GET", target)  # meets the challenge, so the next call knows the realm
        headers = conn.auth.headers(conn, target)
        conn.close()
        return headers

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def _status(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {field} for {self.name}")

    def peak_rss_bytes(self) -> int:
        """VmHWM: the largest resident set the process has had since it started."""
        return self._status("VmHWM")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process, all its threads included."""
        return cpu.process_seconds(self.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for step in self.cleanup:
            step()


def start_portlog(directory: Path, source: Path = REPO_ROOT, *, name: str = "Portlog",
                  backends: dict[str, str] | None = None) -> Server:
    """The embedded default (SQLite event store and read models, filesystem blobs), or other
    backends given as PORTLOG_* variables. `python -m` puts the working directory first on
    sys.path, so `source` (this checkout, or an exported commit) is the code that runs, with
    this virtual environment's dependencies."""
    port, password = free_port(), secrets.token_urlsafe(16)
    command = [sys.executable, "-m", "cli", "serve", "--host", HOST, "--port", str(port),
               "--data-dir", str(directory / "data"), "--no-access-log"]
    untraced = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}  # unless asked
    env = {**untraced, **(backends or {}), "PORTLOG_ADMIN_PASSWORD": password}
    server = _start(name, command, port, directory, cwd=source, env=env)
    server.source = source
    server.environment = backends or {}
    if _status(f"{server.url}/v2/") == 401:  # Portlog with accounts: an admin and a project
        server.credentials = ("admin", password)
        _create_project(server, PROJECT)
    return server


def start_portlog_scale_out(directory: Path, source: Path = REPO_ROOT) -> Server:
    """One scale-out node: a new database on the machine's PostgreSQL (or a private cluster,
    infra/services/postgres.py) and a private SeaweedFS S3 server (MinIO in production)."""
    from infra.services import postgres, seaweedfs

    pg = postgres.server()
    dsn = pg.create_database("portlog_bench")
    s3 = seaweedfs.start(directory / "seaweedfs")
    backends = {"PORTLOG_DATABASE_URL": dsn,
                "PORTLOG_STORAGE_URL": f"s3://{s3.access_key}:{s3.secret_key}@{s3.endpoint}/bench"
                                       f"?secure=false&region={s3.region}"}
    try:
        server = start_portlog(directory, source, name="Portlog scale-out", backends=backends)
    except BaseException:
        s3.stop()
        pg.drop_database(dsn)
        raise
    server.cleanup += [s3.stop, lambda: pg.drop_database(dsn)]
    return server


def start_portlog_without_metrics(directory: Path, source: Path = REPO_ROOT) -> Server:
    """The embedded default with metrics off (and tracing off, as always unless asked): the
    baseline of the observability overhead."""
    return start_portlog(directory, source, name=NO_METRICS, backends={"PORTLOG_METRICS_ENABLED": "false"})


def start_portlog_traced(directory: Path, source: Path = REPO_ROOT, *, name: str = TRACED,
                         sampling: dict[str, str] | None = None) -> Server:
    """The embedded default with metrics on and tracing on, every span exported over OTLP/HTTP
    to a receiver in this process (infra/services/otlp_receiver.py), which decodes them."""
    from infra.services import otlp_receiver

    stack = contextlib.ExitStack()
    receiver = stack.enter_context(otlp_receiver.running())
    try:
        server = start_portlog(directory, source, name=name, backends={
            "PORTLOG_METRICS_ENABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_SERVICE_NAME": "portlog-bench", **(sampling or {})})
    except BaseException:
        stack.close()
        raise
    server.receiver = receiver
    server.cleanup.append(stack.close)
    return server


def start_portlog_sampled(directory: Path, source: Path = REPO_ROOT) -> Server:
    """Traced as above, a tenth of the requests sampled (what a busy registry would run)."""
    return start_portlog_traced(directory, source, name=SAMPLED, sampling={
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"})


def _create_project(server: Server, name: str) -> None:
    basic = base64.b64encode(":".join(server.credentials).encode()).decode()
    request = urllib.request.Request(
        f"{server.url}/api/v1/projects", data=json.dumps({"name": name, "public": False}).encode(),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 201:
            raise RuntimeError(f"creating project {name} on {server.name}: HTTP {response.status}")


def export_commit(ref: str, directory: Path) -> Path:
    """The tree of a commit (`git archive`), to benchmark it whatever the working tree holds."""
    directory.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True)
    return directory


def start_distribution(directory: Path) -> Server:
    """Filesystem storage, delete enabled, errors-only logging, no access log."""
    port = free_port()
    config = directory / "config.yml"
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(DISTRIBUTION_CONFIG.format(root=directory / "data", host=HOST, port=port))
    return _start("Distribution", ["docker-registry", "serve", str(config)], port, directory)


def distribution_version() -> str:
    result = subprocess.run(["docker-registry", "--version"], capture_output=True, text=True)
    return result.stdout.strip().split()[-1] if result.returncode == 0 else "unknown"


def _start(name: str, command: list[str], port: int, directory: Path, cwd: Path | None = None,
           env: dict[str, str] | None = None) -> Server:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "server.log", "wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = Server(name, process, port, directory)
    _wait_ready(server)
    return server


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def _wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log_path.read_text()}")
        if _status(f"{server.url}/v2/") in (200, 401):
            return
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.name} did not become ready:\n{server.log_path.read_text()}")
