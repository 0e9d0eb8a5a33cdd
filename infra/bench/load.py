"""The load generator: a job's lanes spread over several client processes.

A *lane* is one thread with one keep-alive connection doing one operation after another; a
workload's concurrency is its number of lanes. The lanes are spread over up to `processes`
forked client processes, so that one interpreter's lock does not cap the load. Each lane
connects and prepares its payloads first; the clock starts when every lane of every process
has reached a shared barrier, and stops when the last lane is done (or at the deadline).
The parent waits at the barrier too, so that it can read the CPU times (cpu.py) when the clock
starts and again when the last lane reports.

A job is any object with two methods:

    prepare(lane, lanes) -> state   before the clock: which items this lane handles
    step(conn, state) -> int | None one operation; the payload bytes it moved, or None
                                    when this lane has nothing left to do

Payloads are built by the job's constructor in the parent process; `fork` shares them with
the client processes without copying, and the parent knows every digest.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.bench.client import Connection
from infra.bench.cpu import Snapshot, Usage
from infra.bench.servers import Server

DEFAULT_PROCESSES = 4
MAX_ERRORS_PER_LANE = 100
BARRIER_TIMEOUT = 600.0


class Job(Protocol):
    def prepare(self, lane: int, lanes: int) -> Any: ...

    def step(self, conn: Connection, state: Any) -> int | None: ...


@dataclass
class Outcome:
    """What all the lanes of one run did, merged."""
    operations: int = 0
    payload_bytes: int = 0
    errors: int = 0
    first_error: str | None = None
    started: float = float("inf")
    finished: float = 0.0
    client_cpu: float = 0.0  # CPU seconds of the client processes while the clock ran
    usage: Usage | None = None  # where the CPU went while the clock ran
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds, per operation
    processes: int = 0
    lanes: int = 0

    @property
    def wall(self) -> float:
        return max(self.finished - self.started, 1e-9)

    @property
    def per_second(self) -> float:
        return self.operations / self.wall

    @property
    def mib_per_second(self) -> float:
        return self.payload_bytes / self.wall / 2**20

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    @property
    def tool(self) -> str:
        return f"python {self.processes}p×{self.lanes}"

    @property
    def note(self) -> str:
        return f"{self.errors} failed operations, first: {self.first_error}" if self.errors else ""


@dataclass
class _LaneReport:
    started: float
    finished: float
    operations: int
    payload_bytes: int
    errors: int
    first_error: str | None
    latencies: list[float]


def run(job: Job, server: Server, lanes: int, seconds: float | None = None,
        processes: int = DEFAULT_PROCESSES) -> Outcome:
    """Runs `job` against `server` on `lanes` lanes until every lane is done, or for `seconds`."""
    context = multiprocessing.get_context("fork")
    processes = max(1, min(processes, lanes))
    barrier = context.Barrier(lanes + 1)
    reports = context.Queue()
    children, first = [], 0
    for count in (lanes // processes + (i < lanes % processes) for i in range(processes)):
        lane_ids = list(range(first, first + count))
        first += count
        child = context.Process(target=_client_process, daemon=True,
                                args=(job, server, lane_ids, lanes, seconds, barrier, reports))
        child.start()
        children.append(child)
    outcome = Outcome(processes=processes, lanes=lanes)
    try:
        barrier.wait(BARRIER_TIMEOUT)
    except threading.BrokenBarrierError:
        _collect(reports, children)  # raises with the reason when a client process died
        raise
    before = Snapshot.take(server.pid)
    collected = _collect(reports, children)
    after = Snapshot.take(server.pid)
    for lane_reports, cpu in collected:
        outcome.client_cpu += cpu
        for lane in lane_reports:
            _merge(outcome, lane)
    outcome.usage = Usage.between(before, after, outcome.client_cpu, outcome.wall)
    for child in children:
        child.join()
    return outcome


def _collect(reports, children) -> list:
    collected = []
    while len(collected) < len(children):
        try:
            collected.append(reports.get(timeout=1.0))
        except queue.Empty:
            if any(child.exitcode not in (None, 0) for child in children):
                raise RuntimeError("a client process died; see its traceback above")
    return collected


def _merge(outcome: Outcome, lane: _LaneReport) -> None:
    outcome.operations += lane.operations
    outcome.payload_bytes += lane.payload_bytes
    outcome.errors += lane.errors
    outcome.first_error = outcome.first_error or lane.first_error
    outcome.started = min(outcome.started, lane.started)
    outcome.finished = max(outcome.finished, lane.finished)
    outcome.latencies.extend(lane.latencies)


def _client_process(job, server, lane_ids, lanes, seconds, barrier, reports) -> None:
    results: list[_LaneReport | None] = [None] * len(lane_ids)
    cpu_marks: list[float] = []

    def lane_main(slot: int, lane: int) -> None:
        conn = server.connect()
        try:
            state = job.prepare(lane, lanes)
            conn.connect()
        except BaseException:
            barrier.abort()
            raise
        barrier.wait(BARRIER_TIMEOUT)
        cpu_marks.append(time.process_time())
        results[slot] = _drive(job, conn, state, seconds)
        conn.close()

    threads = [threading.Thread(target=lane_main, args=(slot, lane))
               for slot, lane in enumerate(lane_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(result is None for result in results):
        raise SystemExit(1)
    reports.put((results, time.process_time() - min(cpu_marks)))


def _drive(job: Job, conn: Connection, state, seconds: float | None) -> _LaneReport:
    started = time.monotonic()
    deadline = started + seconds if seconds else float("inf")
    report = _LaneReport(started, started, 0, 0, 0, None, [])
    clock = time.perf_counter
    while time.monotonic() < deadline and report.errors < MAX_ERRORS_PER_LANE:
        began = clock()
        try:
            moved = job.step(conn, state)
        except Exception as error:  # counted, and reported with the figure
            report.errors += 1
            report.first_error = report.first_error or f"{type(error).__name__}: {error}"
            conn.close()
            continue
        if moved is None:
            break
        report.latencies.append(clock() - began)
        report.operations += 1
        report.payload_bytes += moved
    report.finished = time.monotonic()
    return report
