"""Runs `wrk` (the Debian package) on one URL and reads its figures.

wrk is a C load generator; it checks that the Python load generator is not the bottleneck.
It only does GET here: wrk 4.1 waits for a body after a HEAD response that carries a
Content-Length, so HEAD is measured by the Python clients alone.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
from dataclasses import dataclass

from infra.bench.cpu import Snapshot, Usage

THREADS = 2
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class WrkResult:
    requests: int
    per_second: float
    p50: float  # seconds
    p99: float
    errors: int  # socket errors and non-2xx/3xx responses
    client_cpu: float
    connections: int
    seconds: int
    usage: Usage | None = None  # where the CPU went during the run

    @property
    def tool(self) -> str:
        return f"wrk {min(THREADS, self.connections)}t×{self.connections}"

    @property
    def note(self) -> str:
        return f"{self.errors} socket errors or non-2xx responses" if self.errors else ""


def available() -> bool:
    return shutil.which("wrk") is not None


def run(url: str, connections: int, seconds: int, headers: dict[str, str] | None = None,
        server_pid: int | None = None) -> WrkResult:
    seconds = max(1, int(seconds))
    command = ["wrk", f"-t{min(THREADS, connections)}", f"-c{connections}", f"-d{seconds}s",
               "--latency", "--timeout", "30s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    before, snapshot = _children_cpu(), Snapshot.take(server_pid) if server_pid else None
    result = subprocess.run(command + [url], capture_output=True, text=True, timeout=seconds + 60)
    cpu = _children_cpu() - before
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed: {result.stderr or result.stdout}")
    parsed = parse(result.stdout, cpu, connections, seconds)
    if snapshot:
        parsed.usage = Usage.between(snapshot, Snapshot.take(server_pid), cpu, seconds)
    return parsed


def parse(output: str, client_cpu: float = 0.0, connections: int = 0, seconds: int = 1) -> WrkResult:
    def number(pattern: str) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if not match:
            raise RuntimeError(f"cannot read {pattern!r} from wrk output:\n{output}")
        return match[1]

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(number(r"^\s*(\d+) requests in")),
        per_second=float(number(r"^Requests/sec:\s*([\d.]+)")),
        p50=_seconds(number(r"^\s*50%\s+(\S+)")),
        p99=_seconds(number(r"^\s*99%\s+(\S+)")),
        errors=errors + (int(non_2xx[1]) if non_2xx else 0),
        client_cpu=client_cpu,
        connections=connections,
        seconds=seconds,
    )


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise RuntimeError(f"unknown wrk duration {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
