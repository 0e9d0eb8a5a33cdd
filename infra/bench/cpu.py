"""Where the CPU went during a timed run, in cores (CPU seconds / wall seconds):

  server   the registry's whole process tree: the process started, all its threads, and its
           descendants (Portlog's uvicorn supervisor and its worker processes when there are
           several), with the descendants that already ended;
  clients  the load generator (its processes, or wrk);
  kernel   the rest of the machine's busy time that no user process was charged for: kernel
           threads and interrupts (loopback TCP, page-cache writeback, a VM's free-page
           reporting), work the benchmark causes;
  others   user-space processes outside the benchmark (not descended from it): anything well
           above 0 means the figure was disturbed by something else running. The benchmark's
           other processes (the servers not measured, idle; a profiler) count in kernel.
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


@dataclass(frozen=True)
class _Process:
    parent: int
    seconds: float  # its own CPU time (user + system), all threads
    ended_children: float  # the CPU time of its children that ended and were waited for


def _processes() -> dict[int, _Process]:
    """Every process of the machine now, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(entry.name)
        except OSError:  # gone meanwhile
            continue
        found[int(entry.name)] = _Process(int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
                                          (int(fields[13]) + int(fields[14])) / CLOCK_TICKS)
    return found


def _tree(root: int, processes: dict[int, _Process]) -> set[int]:
    """`root` and its descendants among `processes`."""
    children: dict[int, list[int]] = {}
    for pid, process in processes.items():
        children.setdefault(process.parent, []).append(pid)
    tree, pending = set(), [root]
    while pending:
        pid = pending.pop()
        if pid in processes and pid not in tree:
            tree.add(pid)
            pending += children.get(pid, [])
    return tree


def process_tree(root: int) -> list[int]:
    """`root` and its descendants (a multi-worker Portlog: the supervisor and its workers), root first."""
    return sorted(_tree(root, _processes()), key=lambda pid: pid != root)


def _tree_seconds(tree: set[int], processes: dict[int, _Process]) -> float:
    """CPU time of the tree's processes, counting their ended children too (a worker that ended
    and was waited for still counts), so the total never goes back."""
    return sum(processes[pid].seconds + processes[pid].ended_children for pid in tree)


def process_seconds(pid: int | str) -> float:
    """User plus system CPU time of the process and its descendants, all threads included."""
    processes = _processes()
    return _tree_seconds(_tree(int(pid), processes), processes)


def machine_seconds() -> float:
    """Busy time of all CPUs: user, nice, system, irq, softirq."""
    user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def _outsiders_seconds(processes: dict[int, _Process]) -> float:
    benchmark = _tree(os.getpid(), processes)
    return sum(process.seconds for pid, process in processes.items()
               if pid not in benchmark and KTHREADD not in (pid, process.parent))


def outsiders_seconds() -> float:
    """CPU time of the user-space processes that are neither this benchmark nor its descendants
    (client processes, wrk, the servers and their worker processes), nor kernel threads."""
    return _outsiders_seconds(_processes())


@dataclass(frozen=True)
class Snapshot:
    server: float
    machine: float
    others: float

    @classmethod
    def take(cls, server_pid: int) -> Snapshot:
        """The server's tree and the outsiders from one reading of /proc."""
        processes = _processes()
        return cls(_tree_seconds(_tree(server_pid, processes), processes), machine_seconds(),
                   _outsiders_seconds(processes))


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
