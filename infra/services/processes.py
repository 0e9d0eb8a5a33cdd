"""What the private servers of infra/services have in common: free loopback ports, waiting for
a health URL, stopping a process."""

from __future__ import annotations

import itertools
import os
import random
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
# Where free_port() looks when a caller names no range: below the kernel's ephemeral range
# (32768 and up), so that no outgoing connection takes a port between its probe and its bind,
# and apart from the ranges of the private servers (SeaweedFS 10000-15999 with its gRPC ports
# 20000-25999, Distribution 16000-16999, NATS 17000-19999, slapd 6000-7999,
# glewlwyd 8000-8999, Prometheus 9000-9999).
PORT_RANGE = range(26_000, 32_000)
_handed_out: dict[range, itertools.cycle] = {}


class ExitedEarly(Exception):
    """The server exited before it was ready (often: another process took its port meanwhile)."""


def is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def worker_ports(ports: range) -> range:
    """This process's share of `ports`: under pytest-xdist each worker (gw0, gw1, …) probes a
    slice of its own, so that two workers never pick the same port; outside it, all of them."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2:
        return ports
    size = len(ports) // count
    index = int(worker[2:]) % count
    return ports[index * size:(index + 1) * size]


def free_port(ports: range = PORT_RANGE) -> int:
    """A loopback port of this process's share of `ports` that is free now. Successive calls go
    round the share (from a random start), so that a port handed out a moment ago and not yet
    bound is not handed out again."""
    if ports not in _handed_out:
        share = worker_ports(ports)
        start = random.randrange(len(share))
        _handed_out[ports] = itertools.cycle([*share[start:], *share[:start]])
    candidates = _handed_out[ports]
    for _ in range(len(ports)):
        port = next(candidates)
        if is_free(port):
            return port
    raise RuntimeError(f"no free port in {ports}")


def wait_for_health(process: subprocess.Popen, url: str, log_path: Path, timeout: float,
                    interval: float = 0.05) -> None:
    """Returns once `url` answers 200; ExitedEarly if the process exits first."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never an http_proxy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ExitedEarly(f"exited at start; see {log_path}")
        try:
            with direct.open(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(interval)
    raise TimeoutError(f"{url} not ready after {timeout} s; see {log_path}")


def stop(process: subprocess.Popen, timeout: float, *, kill: bool = False) -> None:
    """SIGTERM (SIGKILL with `kill`, a crash), then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ServerProcess:
    """Starting, stopping and restarting one private server process. A subclass (a dataclass with
    a `process` field) names its `program` and gives `launch()` (the new process) and
    `wait_until_ready(timeout)`; a start that does not become ready stops what it started."""

    program = "the server"
    process: subprocess.Popen | None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        if self.running:
            raise RuntimeError(f"{self.program} is already running")
        self.process = self.launch()
        try:
            self.wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """SIGTERM (a clean shutdown), or SIGKILL with `kill=True` (a crash)."""
        if self.process is not None:
            stop(self.process, timeout, kill=kill)

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def launch(self) -> subprocess.Popen:
        raise NotImplementedError

    def wait_until_ready(self, timeout: float) -> None:
        raise NotImplementedError
