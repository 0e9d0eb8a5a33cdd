"""What the run was measured on: the machine, the tools' versions, and which Portlog."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from infra.bench.servers import REPO_ROOT, distribution_version

SERVER_CODE = ["domain", "adapters", "projections", "api"]


def _cpuinfo(field: str) -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(field):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def _filesystem(directory: Path) -> str:
    result = subprocess.run(["df", "--output=source,fstype", str(directory)], capture_output=True, text=True)
    lines = result.stdout.split("\n")
    return " ".join(lines[1].split()) if result.returncode == 0 and len(lines) > 1 else "unknown"


def _os_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def _wrk_version() -> str:
    try:
        result = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    except FileNotFoundError:
        return "not installed"
    words = (result.stdout + result.stderr).split()
    return words[1] if len(words) > 1 else "unknown"


def portlog_revision(source: Path, ref: str | None) -> str:
    """The commit benchmarked, and whether the server code had uncommitted changes."""
    if ref:
        commit = _git("rev-parse", "--short", ref)
        return f"{ref} ({commit}), exported with git archive"
    commit = _git("rev-parse", "--short", "HEAD")
    if source.resolve() != REPO_ROOT:
        return f"source tree {source}"
    dirty = _git("status", "--porcelain", "--", *SERVER_CODE)
    return f"working tree at {commit}" + (" with uncommitted changes to the server code" if dirty else "")


def _git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def describe(work_dir: Path, source: Path, ref: str | None) -> list[tuple[str, str]]:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        ("CPU", f"{_cpuinfo('model name')}, {os.cpu_count()} cores ({platform.machine()})"),
        ("memory", f"{_memory_gib():.1f} GiB"),
        ("system", f"{_os_name()}, Linux {platform.release()}"),
        ("work directory", f"{work_dir} on {_filesystem(work_dir)}"),
        ("Python", platform.python_version()),
        ("Portlog", portlog_revision(source, ref)),
        ("Distribution", f"docker-registry {distribution_version()}"),
        ("wrk", _wrk_version()),
        ("load average at start", load),
    ]
