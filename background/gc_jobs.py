"""Garbage collection runs started from the API (on a thread of their own, so the request
answers at once), the command line and the schedule (background/scheduler.py)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from domain.collector import start_run
from domain.context import RequestContext
from domain.cron import CronSchedule
from domain.errors import ConflictError
from domain.gc import GcRun, GcSchedule

if TYPE_CHECKING:
    from adapters.run_locks import HeldLock

log = logging.getLogger("portlog.gc")


GC_LOCK = "gc"  # the run lock (adapters/run_locks.py) every garbage collection holds while it runs


class GcJobs:
    """One run at a time across the processes and nodes that share the data (several running at
    once would be safe, but pointless): each run holds the run lock GC_LOCK."""

    def __init__(self, services) -> None:
        self.services = services

    def start(self, grace_seconds: int, dry_run: bool, trigger: str, ctx: RequestContext,
              background: bool = True, run_id=None, delete_untagged: bool = False) -> tuple[GcRun, int]:
        held = self.services.run_locks.try_acquire(GC_LOCK)
        if held is None:
            raise ConflictError("a garbage collection is already running")
        try:
            run, position = start_run(self.services.registry, grace_seconds, dry_run, trigger, ctx, run_id,
                                      delete_untagged)
        except BaseException:
            held.release()
            raise
        if background:
            threading.Thread(target=self._execute, args=(run, ctx, held), name="portlog-gc-run", daemon=True).start()
        else:
            self._execute(run, ctx, held)
        return run, position

    def _execute(self, run: GcRun, ctx: RequestContext, held: HeldLock) -> None:
        try:
            self.services.collector.execute(run.id, ctx)
        except Exception:
            pass  # recorded as the run's Failed event, and logged by the collector
        finally:
            held.release()


def set_schedule(services, cron: str | None, grace_seconds: int, dry_run: bool, delete_untagged: bool,
                 ctx: RequestContext) -> int | None:
    text = str(CronSchedule.parse(cron)) if cron else None  # refuses a bad expression before recording
    return services.registry.update(
        GcSchedule.ID, lambda s: s.set(text, grace_seconds, dry_run, delete_untagged, ctx),
        create=lambda: GcSchedule.create(ctx))
