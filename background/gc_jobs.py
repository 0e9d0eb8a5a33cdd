"""Garbage collection runs started from the API (on a thread of their own, so the request
answers at once), the command line and the schedule (background/scheduler.py)."""

from __future__ import annotations

import logging
import threading

from domain.collector import start_run
from domain.context import RequestContext
from domain.cron import CronSchedule
from domain.errors import ConflictError
from domain.gc import GcRun, GcSchedule

log = logging.getLogger("portlog.gc")


class GcJobs:
    """One run at a time in this process (several nodes running at once are safe, but pointless)."""

    def __init__(self, services) -> None:
        self.services = services
        self._running = threading.Lock()

    def start(self, grace_seconds: int, dry_run: bool, trigger: str, ctx: RequestContext,
              background: bool = True, run_id=None, delete_untagged: bool = False) -> tuple[GcRun, int]:
        if not self._running.acquire(blocking=False):
            raise ConflictError("a garbage collection run is in progress on this node")
        try:
            run, position = start_run(self.services.registry, grace_seconds, dry_run, trigger, ctx, run_id,
                                      delete_untagged)
        except BaseException:
            self._running.release()
            raise
        if background:
            threading.Thread(target=self._execute, args=(run, ctx), name="portlog-gc-run", daemon=True).start()
        else:
            self._execute(run, ctx)
        return run, position

    def _execute(self, run: GcRun, ctx: RequestContext) -> None:
        try:
            self.services.collector.execute(run.id, ctx)
        except Exception:
            pass  # recorded as the run's Failed event, and logged by the collector
        finally:
            self._running.release()


def set_schedule(services, cron: str | None, grace_seconds: int, dry_run: bool, delete_untagged: bool,
                 ctx: RequestContext) -> int | None:
    text = str(CronSchedule.parse(cron)) if cron else None  # refuses a bad expression before recording
    return services.registry.update(
        GcSchedule.ID, lambda s: s.set(text, grace_seconds, dry_run, delete_untagged, ctx),
        create=lambda: GcSchedule.create(ctx))
