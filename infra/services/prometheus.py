"""Prometheus as a private server for tests: Debian's `prometheus` (2.42) on a free loopback port
(never its default 0.0.0.0:9090), its TSDB in a directory of its own, scraping the targets it is
given every second. Ready in well under a second; the first sample of a target arrives about
5.5 s after the start, whatever the interval, so queries poll.

    with prometheus.running(tmp_dir, [Target("portlog", "127.0.0.1:5000", auth=("admin", pw))]) as server:
        server.query_until('portlog_manifest_pushes_total{project="team"}', lambda v: v >= 1)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import httpx

from infra.services import processes
from infra.services.processes import HOST

# Apart from the other private servers' ranges (infra/services/processes.py).
PORT_RANGE = range(9_000, 10_000)
START_ATTEMPTS = 3


@dataclass(frozen=True)
class Target:
    job: str
    address: str  # HOST:PORT
    path: str = "/metrics"
    auth: tuple[str, str] | None = None  # Basic credentials, kept in the 0600 config file


@dataclass
class PrometheusServer(processes.ServerProcess):
    program = "prometheus"
    directory: Path
    port: int
    targets: list[Target] = field(default_factory=list)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "prometheus.log"

    def launch(self) -> subprocess.Popen:
        config = self.directory / "prometheus.json"  # YAML is a superset of JSON
        descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(_config(self.targets), file)
        command = [str(binary()), f"--config.file={config}", f"--storage.tsdb.path={self.directory / 'data'}",
                   f"--web.listen-address={HOST}:{self.port}", "--log.level=warn"]
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_until_ready(self, timeout: float) -> None:
        processes.wait_for_health(self.process, f"{self.url}/-/ready", self.log_path, timeout)

    def query(self, promql: str) -> list[dict]:
        """The instant vector of `promql` now: [{"metric": {labels}, "value": [time, "text"]}]."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5, trust_env=False)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def query_until(self, promql: str, accept: Callable[[float], bool], timeout: float = 30.0) -> float:
        """Polls `promql` (one series) until its value passes `accept`; returns that value."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result:
                seen = float(result[0]["value"][1])
                if accept(seen):
                    return seen
            time.sleep(0.25)
        raise TimeoutError(f"{promql} was {seen} after {timeout} s")


def binary() -> Path:
    found = shutil.which("prometheus")
    if found:
        return Path(found)
    raise FileNotFoundError("prometheus is missing: apt-get install prometheus (scripts/install-system-packages)")


def start(directory: Path, targets: list[Target], timeout: float = 20.0) -> PrometheusServer:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for _ in range(START_ATTEMPTS):
        server = PrometheusServer(directory, processes.free_port(PORT_RANGE), targets)
        try:
            server.start(timeout)
            return server
        except processes.ExitedEarly:
            continue
    raise RuntimeError(f"prometheus exited at start {START_ATTEMPTS} times; see {directory / 'prometheus.log'}")


@contextmanager
def running(directory: Path, targets: list[Target]) -> Iterator[PrometheusServer]:
    server = start(directory, targets)
    try:
        yield server
    finally:
        server.stop()


def _config(targets: list[Target]) -> dict:
    def job(target: Target) -> dict:
        scrape = {"job_name": target.job, "metrics_path": target.path,
                  "static_configs": [{"targets": [target.address]}]}
        if target.auth:
            scrape["basic_auth"] = {"username": target.auth[0], "password": target.auth[1]}
        return scrape

    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [job(target) for target in targets]}
