"""Where the CPU went during a timed run, in cores (CPU seconds / wall seconds):

  server   the registry's process, all its threads;
  clients  the load generator (its processes, or wrk);
  kernel   the rest of the machine's busy time that no user process was charged for: kernel
           threads and interrupts (loopback TCP, page-cache writeback, a VM's free-page
           reporting), work the benchmark causes;
  others   user-space processes outside the benchmark: anything well above 0 means the
           figure was disturbed by something else running.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KTHREADD = 2


def _stat_fields(pid: int | str) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_seconds(pid: int | str) -> float:
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_seconds() -> float:
    """Busy time of all CPUs: user, nice, system, irq, softirq."""
    user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def outsiders_seconds() -> float:
    """CPU time of the user-space processes that are neither this benchmark nor its children
    (servers, client processes, wrk), nor kernel threads."""
    me, total = os.getpid(), 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (me, KTHREADD):
            continue
        try:
            fields = _stat_fields(entry.name)
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) not in (me, KTHREADD):
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


@dataclass(frozen=True)
class Snapshot:
    server: float
    machine: float
    others: float

    @classmethod
    def take(cls, server_pid: int) -> Snapshot:
        return cls(process_seconds(server_pid), machine_seconds(), outsiders_seconds())


@dataclass(frozen=True)
class Usage:
    server: float
    clients: float
    kernel: float
    others: float

    @classmethod
    def between(cls, before: Snapshot, after: Snapshot, client_seconds: float, wall: float) -> Usage:
        server, others = after.server - before.server, max(0.0, after.others - before.others)
        kernel = max(0.0, after.machine - before.machine - server - client_seconds - others)
        return cls(server / wall, client_seconds / wall, kernel / wall, others / wall)
