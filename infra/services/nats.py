"""NATS with JetStream as a private server for tests and the benchmark: Debian's `nats-server`
(2.9.10) on a free loopback port, its store in a directory of its own. Ready in well under a
second. `restart()` comes back on the same ports with the same store, so streams survive and
clients reconnect to the same URL.

    with nats.running(tmp_dir) as server:
        await nats_py.connect(server.url)
        server.restart()   # an outage: stop, then start again
"""

from __future__ import annotations

import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from infra.services import processes
from infra.services.processes import HOST

DEBIAN_BINARY = Path("/usr/sbin/nats-server")
# Below the kernel's ephemeral range (32768 and up), so that an outgoing connection cannot take
# a port while the server is down for a restart; apart from the other servers' ranges
# (infra/services/processes.py).
PORT_RANGE = range(17_000, 20_000)
START_ATTEMPTS = 3


@dataclass
class NatsServer(processes.ServerProcess):
    program = "nats-server"
    directory: Path
    port: int
    monitor_port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "nats.log"

    def launch(self) -> subprocess.Popen:
        return _launch(self)

    def wait_until_ready(self, timeout: float) -> None:
        _wait_until_ready(self, timeout)


def binary() -> Path:
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    if DEBIAN_BINARY.exists():  # /usr/sbin is not on every PATH
        return DEBIAN_BINARY
    raise FileNotFoundError("nats-server is missing: apt-get install nats-server (scripts/install-system-packages)")


def start(directory: Path, timeout: float = 20.0) -> NatsServer:
    """Starts a server with JetStream in `directory` on free ports; if it exits first (another
    process took a port between our probe and its bind), other ports are tried."""
    directory = Path(directory)
    (directory / "store").mkdir(parents=True, exist_ok=True)
    for _ in range(START_ATTEMPTS):
        port, monitor_port = _free_ports(2)
        server = NatsServer(directory, port, monitor_port)
        try:
            server.start(timeout)
            return server
        except processes.ExitedEarly:
            continue
    raise RuntimeError(f"nats-server exited at start {START_ATTEMPTS} times; see {directory / 'nats.log'}")


@contextmanager
def running(directory: Path) -> Iterator[NatsServer]:
    server = start(directory)
    try:
        yield server
    finally:
        server.stop()


def _launch(server: NatsServer) -> subprocess.Popen:
    command = [str(binary()), "-js", "-a", HOST, "-p", str(server.port), "-m", str(server.monitor_port),
               "-sd", str(server.directory / "store")]
    with open(server.log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _free_ports(count: int) -> list[int]:
    return [processes.free_port(PORT_RANGE) for _ in range(count)]


def _wait_until_ready(server: NatsServer, timeout: float) -> None:
    url = f"http://{HOST}:{server.monitor_port}/healthz?js-enabled-only=true"
    processes.wait_for_health(server.process, url, server.log_path, timeout, interval=0.02)


def version() -> str:
    result = subprocess.run([str(binary()), "--version"], capture_output=True, text=True)
    return result.stdout.strip().rsplit(" ", 1)[-1] if result.returncode == 0 else "unknown"
