"""Scheduled work: garbage collection (the instance's schedule), backups (theirs), retention (each project's
policy), replication (each scheduled policy) and scan all (its schedule). Every node runs this worker; each slot of a
cron schedule runs once, on the node that records the run's start first — the run's id is
derived from the slot, so a second start of the same slot is a version conflict. Slots missed
while no node ran are skipped."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from uuid import NAMESPACE_URL, uuid5

from eventsourcing.persistence import IntegrityError

from background.backups import scheduled_destination
from background.scan_jobs import start_scan_all
from domain.backups import Backup, BackupSchedule
from domain.context import SYSTEM
from domain.cron import CronSchedule
from domain.errors import ConflictError, NotFoundError
from domain.gc import GcRun, GcSchedule
from domain.retention_runs import RetentionRun
from domain.scans import ScanAllRun, ScanAllSchedule

log = logging.getLogger("portlog.scheduler")
CHECK_SECONDS = 20.0


def run_schedules(services, stop: threading.Event) -> None:
    checked = datetime.now(timezone.utc)
    while not stop.wait(CHECK_SECONDS):
        now = datetime.now(timezone.utc)
        for start_due in (start_due_gc, start_due_backup, start_due_retention, start_due_replication,
                          start_due_scan_all):
            try:
                start_due(services, checked, now)
            except Exception:
                log.exception("scheduled work could not start")
        checked = now


def due_slot(cron: str | None, checked: datetime, now: datetime) -> datetime | None:
    """The latest slot of the schedule in (checked, now], if any."""
    if not cron:
        return None
    schedule, slot = CronSchedule.parse(cron), None
    upcoming = schedule.next_after(checked)
    while upcoming <= now:
        slot, upcoming = upcoming, schedule.next_after(upcoming)
    return slot


def start_due_scan_all(services, checked: datetime, now: datetime) -> None:
    schedule: ScanAllSchedule | None = services.registry.load(ScanAllSchedule.ID)
    slot = due_slot(schedule.cron if schedule else None, checked, now)
    if slot is None:
        return
    try:
        start_scan_all(services, "schedule", SYSTEM, run_id=ScanAllRun.scheduled_id(slot.isoformat()),
                       background=False)
    except IntegrityError:
        pass  # another node took this slot


def start_due_gc(services, checked: datetime, now: datetime) -> None:
    schedule: GcSchedule | None = services.registry.load(GcSchedule.ID)
    slot = due_slot(schedule.cron if schedule else None, checked, now)
    if slot is None:
        return
    try:
        services.gc_jobs.start(schedule.grace_seconds, schedule.dry_run, "schedule", SYSTEM, background=False,
                               run_id=GcRun.scheduled_id(slot.isoformat()), delete_untagged=schedule.delete_untagged)
    except (IntegrityError, ConflictError):
        pass  # another node took this slot, or a run is going on here


def start_due_backup(services, checked: datetime, now: datetime) -> None:
    schedule: BackupSchedule | None = services.registry.load(BackupSchedule.ID)
    slot = due_slot(schedule.cron if schedule else None, checked, now)
    backup_id = Backup.scheduled_id(slot.isoformat()) if slot else None
    if slot is None or not schedule.destination or services.registry.load(backup_id) is not None:
        return  # no slot due, or another node took it and is writing the destination
    try:
        services.backup_jobs.start(scheduled_destination(services, schedule), schedule.incremental, "schedule",
                                   SYSTEM, backup_id=backup_id)
    except (IntegrityError, ConflictError):
        pass  # another node took this slot just now (and may have begun writing the destination)


def start_due_retention(services, checked: datetime, now: datetime) -> None:
    for policy in services.retention.scheduled_policies():
        slot = due_slot(policy.cron, checked, now)
        if slot is None:
            continue
        try:
            services.retention_runner.run(policy.project, False, "schedule", SYSTEM,
                                          run_id=RetentionRun.scheduled_id(policy.project, slot.isoformat()))
        except (IntegrityError, NotFoundError):
            pass  # another node took this slot, or the policy went meanwhile


def start_due_replication(services, checked: datetime, now: datetime) -> None:
    for policy in services.replication.policies():
        settings = policy.settings
        slot = due_slot(settings.cron, checked, now) if settings.trigger == "scheduled" and settings.enabled else None
        if slot is None:
            continue
        try:
            slot_id = uuid5(NAMESPACE_URL, f"/replication/{policy.name}/{slot.isoformat()}")
            services.replicator.start(policy.name, "scheduled", SYSTEM, execution_id=slot_id)
        except (IntegrityError, NotFoundError, ConflictError):
            pass  # another node took this slot, or the policy changed meanwhile
