"""Garbage collection runs started from the API (on a thread of their own, so the request
answers at once) and from the schedule (a worker on every node; each slot runs once, on the
node that records its start first: the run's id comes from the slot)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from eventsourcing.persistence import IntegrityError

from domain.collector import start_run
from domain.context import SYSTEM, RequestContext
from domain.cron import CronSchedule
from domain.errors import ConflictError
from domain.gc import GcRun, GcSchedule

log = logging.getLogger("portlog.gc")
SCHEDULE_CHECK_SECONDS = 20.0


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


def run_scheduled_gc(services, stop: threading.Event) -> None:
    """Starts a run at every slot of the schedule (slots missed while no node ran are skipped)."""
    checked = datetime.now(timezone.utc)
    while not stop.wait(SCHEDULE_CHECK_SECONDS):
        try:
            checked = _run_due_slot(services, checked)
        except Exception:
            log.exception("scheduled garbage collection could not start")


def _run_due_slot(services, checked: datetime) -> datetime:
    now = datetime.now(timezone.utc)
    schedule: GcSchedule | None = services.registry.load(GcSchedule.ID)
    if schedule is None or not schedule.cron:
        return now
    slot = CronSchedule.parse(schedule.cron).next_after(checked)
    if slot > now:
        return checked
    try:
        services.gc_jobs.start(schedule.grace_seconds, schedule.dry_run, "schedule", SYSTEM,
                               background=False, run_id=GcRun.scheduled_id(slot.isoformat()),
                               delete_untagged=schedule.delete_untagged)
    except (IntegrityError, ConflictError):
        pass  # another node took this slot, or a run is going on here
    return now
