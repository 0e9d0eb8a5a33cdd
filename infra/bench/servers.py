"""Starts Portlog (embedded, or a scale-out node on PostgreSQL and S3) and CNCF Distribution
(`docker-registry`) on free loopback ports, each with its own directory, and reads their peak
resident memory and CPU time from /proc: of the whole process tree (a multi-worker Portlog is
a uvicorn supervisor and its worker processes). Portlog gets an administrator password and a
`bench` project when it asks for authentication."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
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

ONE_WORKER, NO_ACCESS_LOG = "Portlog 1 worker", "Portlog no access log"
DISTRIBUTION_NO_ACCESS_LOG = "Distribution no access log"
# The comparison's servers choose these; the shell running the benchmark does not.
DECIDED_BY_THE_BENCHMARK = ("PORTLOG_WORKERS", "PORTLOG_ACCESS_LOG")

DISTRIBUTION_CONFIG = """\
version: 0.1
{log}storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {host}:{port}
"""
# Distribution's defaults (as its Debian package ships them): level info, which logs a
# "response completed" line per request, and the access log (combined format) to stdout.
DISTRIBUTION_DEFAULT_LOG = """\
log:
  fields:
    service: registry
"""
# No line per request: errors only, no access log.
DISTRIBUTION_QUIET_LOG = """\
log:
  level: error
  accesslog:
    disabled: true
"""


def _status_field(pid: int, field: str) -> int:
    """A size from /proc/<pid>/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/{pid}/status")


def _end(pid: int, started: str | None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`, to a process of the server's tree that is still
    there (a worker its supervisor could not stop); its start time tells it from a reused pid."""
    if started is None or _start_time(pid) != started:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _start_time(pid) == started and time.monotonic() < deadline:
        time.sleep(0.05)
    if _start_time(pid) == started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _start_time(pid: int) -> str | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def _is_spawned_worker(pid: int) -> bool:
    """A process uvicorn's supervisor started to serve requests (multiprocessing's spawn), not
    a helper such as multiprocessing's resource tracker."""
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


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

    def processes(self) -> list[int]:
        """The server's process tree: the process started, then its descendants (a multi-worker
        Portlog: the uvicorn supervisor, then its worker processes)."""
        return cpu.process_tree(self.pid)

    def _peaks(self) -> dict[int, int]:
        """VmHWM of each process of the tree, in bytes: the largest resident set it has had."""
        peaks = {}
        for pid in self.processes():
            with contextlib.suppress(OSError):  # a process that ended meanwhile
                peaks[pid] = _status_field(pid, "VmHWM")
        if self.pid not in peaks:
            raise RuntimeError(f"no VmHWM for {self.name}")
        return peaks

    def peak_rss_bytes(self) -> int:
        """The sum of the tree's processes' VmHWM: the whole server's peak resident memory (at
        most; the processes may have peaked at different times)."""
        return sum(self._peaks().values())

    def workers(self) -> list[int]:
        """The processes that serve requests: a supervisor's worker processes, or the one
        process that serves them all."""
        return [pid for pid in self.processes() if _is_spawned_worker(pid)] or [self.pid]

    def largest_worker_peak_rss_bytes(self) -> int:
        """The largest VmHWM among the processes that serve requests."""
        peaks = self._peaks()
        return max([peaks[pid] for pid in self.workers() if pid in peaks] or [peaks[self.pid]])

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process tree, all threads included."""
        return cpu.process_seconds(self.pid)

    def stop(self) -> None:
        """SIGTERM (a supervisor stops its workers), SIGKILL after 15 s; then whatever is left
        of the tree, so that no worker outlives the run."""
        descendants = [(pid, _start_time(pid)) for pid in self.processes()[1:]] if self.process.poll() is None else []
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pid, started in descendants:
            _end(pid, started)
        for step in self.cleanup:
            step()


def start_portlog(directory: Path, source: Path = REPO_ROOT, *, name: str = "Portlog",
                  backends: dict[str, str] | None = None, quiet: bool = True) -> Server:
    """The embedded default (SQLite event store and read models, filesystem blobs), or other
    backends given as PORTLOG_* variables. `python -m` puts the working directory first on
    sys.path, so `source` (this checkout, or an exported commit) is the code that runs, with
    this virtual environment's dependencies. `quiet`: with --no-access-log, as the benchmarks
    of one Portlog feature (soak, lags, replication) run; the comparison's servers pass False
    and keep Portlog's default logging unless `backends` says otherwise. The number of worker
    processes is Portlog's default unless `backends` sets PORTLOG_WORKERS."""
    port, password = free_port(), secrets.token_urlsafe(16)
    command = [sys.executable, "-m", "cli", "serve", "--host", HOST, "--port", str(port),
               "--data-dir", str(directory / "data"), *(["--no-access-log"] if quiet else [])]
    inherited = {key: value for key, value in os.environ.items()  # OTEL_* only when asked
                 if not key.startswith("OTEL_") and key not in DECIDED_BY_THE_BENCHMARK}
    env = {**inherited, **(backends or {}), "PORTLOG_ADMIN_PASSWORD": password}
    server = _start(name, command, port, directory, cwd=source, env=env)
    server.source = source
    server.environment = backends or {}
    if _status(f"{server.url}/v2/") == 401:  # Portlog with accounts: an admin and a project
        server.credentials = ("admin", password)
        _create_project(server, PROJECT)
    return server


def start_portlog_default(directory: Path, source: Path = REPO_ROOT) -> Server:
    """What `portlog serve` runs with no option: its default workers (one per CPU) and logging
    (an access line per request, to stdout: the server's log file here)."""
    return start_portlog(directory, source, quiet=False)


def start_portlog_one_worker(directory: Path, source: Path = REPO_ROOT) -> Server:
    """The default with one process (PORTLOG_WORKERS=1), to show what the workers gain."""
    return start_portlog(directory, source, name=ONE_WORKER, backends={"PORTLOG_WORKERS": "1"}, quiet=False)


def start_portlog_without_access_log(directory: Path, source: Path = REPO_ROOT) -> Server:
    """The default with PORTLOG_ACCESS_LOG=false: no line per request."""
    return start_portlog(directory, source, name=NO_ACCESS_LOG, backends={"PORTLOG_ACCESS_LOG": "false"},
                         quiet=False)


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
        server = start_portlog(directory, source, name="Portlog scale-out", backends=backends, quiet=False)
    except BaseException:
        s3.stop()
        pg.drop_database(dsn)
        raise
    server.cleanup += [s3.stop, lambda: pg.drop_database(dsn)]
    return server


def start_portlog_without_metrics(directory: Path, source: Path = REPO_ROOT) -> Server:
    """The embedded default with metrics off (and tracing off, as always unless asked): the
    baseline of the observability overhead."""
    return start_portlog(directory, source, name=NO_METRICS, backends={"PORTLOG_METRICS_ENABLED": "false"},
                         quiet=False)


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
            "OTEL_SERVICE_NAME": "portlog-bench", **(sampling or {})}, quiet=False)
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


def start_distribution(directory: Path, *, name: str = "Distribution", default_logging: bool = False) -> Server:
    """Filesystem storage, delete enabled, the blob descriptor cache in memory; logging its
    defaults' (info, access log on), or errors only and no access log."""
    port = free_port()
    config = directory / "config.yml"
    directory.mkdir(parents=True, exist_ok=True)
    log = DISTRIBUTION_DEFAULT_LOG if default_logging else DISTRIBUTION_QUIET_LOG
    config.write_text(DISTRIBUTION_CONFIG.format(log=log, root=directory / "data", host=HOST, port=port))
    return _start(name, ["docker-registry", "serve", str(config)], port, directory)


def start_distribution_default(directory: Path, source: Path = REPO_ROOT) -> Server:
    """Distribution with its default logging: a "response completed" line and an access line
    per request, to stdout (the server's log file here)."""
    return start_distribution(directory, default_logging=True)


def start_distribution_without_access_log(directory: Path, source: Path = REPO_ROOT) -> Server:
    """Distribution with no line per request: `log: accesslog: disabled: true`, and level error
    (at its default level, info, it logs a "response completed" line per request besides)."""
    return start_distribution(directory, name=DISTRIBUTION_NO_ACCESS_LOG)


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
