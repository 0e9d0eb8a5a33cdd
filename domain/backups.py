"""Consistent online backups and their schedule, as aggregates. Topics `domain.backups:Backup.<Event>`
and `domain.backups:BackupSchedule.<Event>` (docs/operations.md, Backups; docs/time-travel.md).

A backup records that it started (where to, and what triggered it), then how it ended: the log
position P it copied up to with what it copied, or why it failed. Destinations are recorded
without their credentials; a scheduled destination's credentials are sealed with the secret box
(`sealed_secret`, hidden from subscribers and the audit trail like every sealed secret). While a
backup runs, garbage collection spares what the backup may still need (domain/collector.py).
Events are a public schema: add fields only with defaults, never rename or repurpose one.
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import InvalidInputError

TRIGGERS = ("manual", "schedule", "cli")
# A backup still running after this long failed without saying so (its process died): it fails
# itself when it notices, and garbage collection stops sparing what it needed.
MAX_RUNNING_SECONDS = 24 * 3600
# Garbage collection spares everything touched since a running backup started, minus this much
# (clocks of nodes differ, and read models lag the log by a second or so).
FENCE_MARGIN_SECONDS = 60


class Backup(Aggregate):
    class Event(Aggregate.Event):
        backup: str  # the backup's aggregate id, as text
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: Backup) -> None:
            pass

    class Started(Event, Aggregate.Created):
        """`destination` without credentials; `position`: the log's head when it started (the
        position the backup copies up to is in Completed)."""

        trigger: str
        destination: str
        incremental: bool
        position: int

    class Completed(Event):
        """The log up to `position` (`log_events` events, `log_digest` the head of their hash
        chain) and `blob_count` blobs of `bytes` in all are at the destination; `copied_blobs`
        and `copied_bytes` of them were copied by this backup (the others were there already)."""

        position: int
        blob_count: int
        bytes: int
        copied_blobs: int
        copied_bytes: int
        log_events: int
        log_digest: str

        def apply(self, backup: Backup) -> None:
            backup.finished = True

    class Failed(Event):
        reason: str

        def apply(self, backup: Backup) -> None:
            backup.finished = True

    def __init__(self, backup: str, trigger: str, destination: str, incremental: bool, position: int) -> None:
        self.trigger = trigger
        self.destination = destination
        self.incremental = incremental
        self.finished = False

    @staticmethod
    def scheduled_id(slot: str) -> UUID:
        """One backup per schedule slot, whichever node starts it first."""
        return uuid5(NAMESPACE_URL, f"/backups/scheduled/{slot}")

    @classmethod
    def start(cls, trigger: str, destination: str, incremental: bool, position: int, ctx: RequestContext,
              backup_id: UUID | None = None) -> Backup:
        if trigger not in TRIGGERS:
            raise InvalidInputError("unknown backup trigger", {"trigger": trigger})
        backup_id = backup_id or uuid4()
        return cls._create(cls.Started, id=backup_id, backup=str(backup_id), trigger=trigger,
                           destination=destination, incremental=incremental, position=position,
                           **ctx.event_fields())

    def complete(self, position: int, blob_count: int, size: int, copied_blobs: int, copied_bytes: int,
                 log_events: int, log_digest: str, ctx: RequestContext) -> None:
        self._trigger(self.Completed, ctx, position=position, blob_count=blob_count, bytes=size,
                      copied_blobs=copied_blobs, copied_bytes=copied_bytes, log_events=log_events,
                      log_digest=log_digest)

    def fail(self, reason: str, ctx: RequestContext) -> None:
        self._trigger(self.Failed, ctx, reason=reason[:2000])

    def _trigger(self, event_class: type[Backup.Event], ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, backup=str(self.id), **ctx.event_fields(), **fields)


class BackupSchedule(Aggregate):
    """The one backup schedule of the instance: a cron expression (None: no scheduled backups),
    where to and whether incrementally."""

    class Event(Aggregate.Event):
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: BackupSchedule) -> None:
            pass

    class Created(Event, Aggregate.Created):
        pass

    class Set(Event):
        """`destination` without credentials; `sealed_secret` the whole destination, sealed
        (None when it has no credentials)."""

        cron: str | None
        destination: str | None
        incremental: bool
        sealed_secret: str | None

        def apply(self, schedule: BackupSchedule) -> None:
            schedule.cron, schedule.destination = self.cron, self.destination
            schedule.incremental, schedule.sealed_secret = self.incremental, self.sealed_secret

    ID = uuid5(NAMESPACE_URL, "/backups/schedule")

    def __init__(self) -> None:
        self.cron: str | None = None
        self.destination: str | None = None
        self.incremental = False
        self.sealed_secret: str | None = None

    @classmethod
    def create(cls, ctx: RequestContext) -> BackupSchedule:
        return cls._create(cls.Created, id=cls.ID, **ctx.event_fields())

    def set(self, cron: str | None, destination: str | None, incremental: bool, sealed_secret: str | None,
            ctx: RequestContext) -> None:
        if cron and not destination:
            raise InvalidInputError("a backup schedule needs a destination", {"field": "destination"})
        self.trigger_event(self.Set, cron=cron, destination=destination, incremental=incremental,
                           sealed_secret=sealed_secret, **ctx.event_fields())
