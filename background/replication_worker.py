"""The replication worker pool: a bounded number of tasks at a time (`replication.workers`),
taken from the read model's due tasks — pending, retrying whose time has come, or running with a
lease that ran out (a worker that died, a node restarted) — and claimed on the task aggregate, so
several processes and nodes can run pools side by side. Event-based policies are fed by
background/replication_events.py; this only runs what is recorded."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Iterable
from uuid import UUID

from domain.context import RequestContext
from domain.replication import PolicySettings

log = logging.getLogger("portlog.replication")
POLL_SECONDS = 1.0


def run_replication(services, stop: threading.Event) -> None:
    """A worker that finishes wakes the pool at once (it does not wait for the next tick), and
    the read models are brought up to the log before due tasks are read: the claims and
    outcomes just recorded are in them, so a finished task is never handed out again."""
    size = services.settings.replication_workers
    worker = f"{socket.gethostname()}:{os.getpid()}"
    running: set[str] = set()
    lock = threading.Lock()
    wake = threading.Event()
    # A stop wakes the pool too: shutting down (a server, a test's app) does not wait out a tick.
    threading.Thread(target=lambda: (stop.wait(), wake.set()), name="portlog-replication-stop",
                     daemon=True).start()
    with ThreadPoolExecutor(size, thread_name_prefix="portlog-replication") as pool:
        while not stop.is_set():
            wake.wait(POLL_SECONDS)
            wake.clear()
            if stop.is_set():
                break
            try:
                with lock:
                    free, busy = size - len(running), set(running)
                if not free:
                    continue
                services.projections.catch_up()
                for task in services.replication_runs.due_tasks(datetime.now(timezone.utc), free, busy):
                    with lock:
                        running.add(task.task)
                    pool.submit(_run, services, task.task, worker, running, lock, stop, wake)
            except Exception:
                log.exception("replication tasks could not be picked up")


def _run(services, task: str, worker: str, running: set[str], lock: threading.Lock,
         stop: threading.Event, wake: threading.Event) -> None:
    try:
        status = services.replicator.run_task(UUID(task), worker, RequestContext("replication", task),
                                              throttle=throttled, interrupted=stop.is_set)
        log.info("replication task %s: %s", task, status)
    except Exception:
        log.exception("replication task %s could not run", task)
    finally:
        with lock:
            running.discard(task)
        wake.set()


def throttled(chunks: Iterable[bytes], settings: PolicySettings) -> Iterable[bytes]:
    """The policy's bandwidth limit (`speed`, KiB/s, per task): sleeps to keep the average under it."""
    if settings.bandwidth_kib <= 0:
        yield from chunks
        return
    rate, sent, started = settings.bandwidth_kib * 1024, 0, time.monotonic()
    piece = max(rate // 4, 16 * 1024)  # small pieces: a stop is noticed within a quarter second
    for chunk in chunks:
        for start in range(0, len(chunk), piece):
            yield chunk[start:start + piece]
            sent += min(piece, len(chunk) - start)
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
