"""Garbage collection runs and their schedule, as aggregates. Topics `domain.gc:GcRun.<Event>`
and `domain.gc:GcSchedule.<Event>`.

A run records that it started (with its parameters), each batch it swept, and how it ended;
its history is a read model (projections/gc.py). The collector itself is domain/collector.py.
Events are a public schema: add fields only with defaults, never rename or repurpose one.
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import InvalidInputError

TRIGGERS = ("manual", "schedule", "cli")


class GcRun(Aggregate):
    class Event(Aggregate.Event):
        run: str  # the run's aggregate id, as text
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: GcRun) -> None:
            pass

    class Started(Event, Aggregate.Created):
        grace_seconds: int
        dry_run: bool
        trigger: str
        delete_untagged: bool

    class Swept(Event):
        """One batch: the digests whose bytes are gone (or would be, in a dry run)."""

        blobs: int
        bytes: int
        digests: list[str]

        def apply(self, run: GcRun) -> None:
            run.blobs += self.blobs
            run.bytes += self.bytes

    class Completed(Event):
        """Totals: `blobs` and `bytes` freed (or freeable, in a dry run); `untagged` manifests
        deleted; `orphans` stored bytes no event had recorded, removed."""

        blobs: int
        bytes: int
        untagged: int
        orphans: int

        def apply(self, run: GcRun) -> None:
            run.finished = True

    class Failed(Event):
        error: str

        def apply(self, run: GcRun) -> None:
            run.finished = True

    def __init__(self, run: str, grace_seconds: int, dry_run: bool, trigger: str,
                 delete_untagged: bool) -> None:
        self.grace_seconds = grace_seconds
        self.dry_run = dry_run
        self.trigger = trigger
        self.delete_untagged = delete_untagged
        self.blobs = 0
        self.bytes = 0
        self.finished = False

    @staticmethod
    def scheduled_id(slot: str) -> UUID:
        """One run per schedule slot, whichever node starts it first."""
        return uuid5(NAMESPACE_URL, f"/gc/runs/scheduled/{slot}")

    @classmethod
    def start(cls, grace_seconds: int, dry_run: bool, trigger: str, ctx: RequestContext,
              delete_untagged: bool = False, run_id: UUID | None = None) -> GcRun:
        if trigger not in TRIGGERS:
            raise InvalidInputError("unknown GC trigger", {"trigger": trigger})
        if not isinstance(grace_seconds, int) or isinstance(grace_seconds, bool) or grace_seconds < 0:
            raise InvalidInputError("grace period must be a whole number of seconds, 0 or more",
                                    {"grace_period_seconds": grace_seconds})
        run_id = run_id or uuid4()
        return cls._create(cls.Started, id=run_id, run=str(run_id), grace_seconds=grace_seconds,
                           dry_run=dry_run, trigger=trigger, delete_untagged=delete_untagged,
                           **ctx.event_fields())

    def swept(self, digests: dict[str, int], ctx: RequestContext) -> None:
        if digests:
            self._trigger(self.Swept, blobs=len(digests), bytes=sum(digests.values()),
                          digests=sorted(digests), ctx=ctx)

    def complete(self, untagged: int, orphans: int, ctx: RequestContext) -> None:
        self._trigger(self.Completed, blobs=self.blobs, bytes=self.bytes, untagged=untagged,
                      orphans=orphans, ctx=ctx)

    def fail(self, error: str, ctx: RequestContext) -> None:
        self._trigger(self.Failed, error=error[:2000], ctx=ctx)

    def _trigger(self, event_class: type[GcRun.Event], ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, run=str(self.id), **ctx.event_fields(), **fields)


class GcSchedule(Aggregate):
    """The one schedule of the instance: a cron expression (None: manual only) and the
    parameters scheduled runs use."""

    class Event(Aggregate.Event):
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: GcSchedule) -> None:
            pass

    class Created(Event, Aggregate.Created):
        pass

    class Set(Event):
        cron: str | None
        grace_seconds: int
        dry_run: bool
        delete_untagged: bool

        def apply(self, schedule: GcSchedule) -> None:
            schedule.cron, schedule.grace_seconds = self.cron, self.grace_seconds
            schedule.dry_run, schedule.delete_untagged = self.dry_run, self.delete_untagged

    ID = uuid5(NAMESPACE_URL, "/gc/schedule")

    def __init__(self) -> None:
        self.cron: str | None = None
        self.grace_seconds = 0
        self.dry_run = False
        self.delete_untagged = False

    @classmethod
    def create(cls, ctx: RequestContext) -> GcSchedule:
        return cls._create(cls.Created, id=cls.ID, **ctx.event_fields())

    def set(self, cron: str | None, grace_seconds: int, dry_run: bool, delete_untagged: bool,
            ctx: RequestContext) -> None:
        fields = dict(cron=cron, grace_seconds=grace_seconds, dry_run=dry_run, delete_untagged=delete_untagged)
        if fields != dict(cron=self.cron, grace_seconds=self.grace_seconds, dry_run=self.dry_run,
                          delete_untagged=self.delete_untagged):
            self.trigger_event(self.Set, **fields, **ctx.event_fields())
