"""Replication executions and their tasks, as events (topic
`domain.replication_runs:<Aggregate>.<Event>`; a public schema: fields only added, with defaults).

An execution is one trigger of a policy: it plans its tasks when it starts — one per artifact to
copy (or delete) — and records a stop request. Each task is an aggregate of its own, so that a
pool of workers on any node moves tasks along without contending on one aggregate:
pending → running (claimed by a worker, with a lease) → succeeded | failed | stopped, or back to
pending with a next attempt time (retrying, with exponential backoff) when the error is
retryable. A claim is recorded at the version the worker loaded: two workers never run one
attempt. A task whose worker died is claimed again once its lease has run out, so after a
restart nothing stays running or pending for ever.
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from datetime import datetime, timedelta
from typing import Callable
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import ConflictError, InvalidInputError

PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED = "pending", "running", "succeeded", "failed", "stopped"
FINAL = (SUCCEEDED, FAILED, STOPPED)
MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS = 2, 300


class ReplicationExecution(Aggregate):
    class Event(Aggregate.Event):
        policy: str
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: ReplicationExecution) -> None:
            pass

    class Started(Event, Aggregate.Created):
        """`tasks`: what it will do, each {operation: copy|delete, source_repository,
        reference, destination_repository}."""

        trigger: str
        tasks: list

    class StopRequested(Event):
        def apply(self, execution: ReplicationExecution) -> None:
            execution.stopping = True

    def __init__(self, policy: str, trigger: str, tasks: list) -> None:
        self.policy, self.trigger, self.tasks = policy, trigger, tasks
        self.stopping = False

    @classmethod
    def start(cls, policy: str, trigger: str, tasks: list[dict], ctx: RequestContext,
              execution_id: UUID | None = None) -> ReplicationExecution:
        return cls._create(cls.Started, id=execution_id or uuid4(), policy=policy, trigger=trigger, tasks=tasks,
                           **ctx.event_fields())

    def request_stop(self, ctx: RequestContext) -> None:
        if not self.stopping:
            self.trigger_event(self.StopRequested, policy=self.policy, **ctx.event_fields())


class ReplicationTask(Aggregate):
    class Event(Aggregate.Event):
        execution: str
        policy: str
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: ReplicationTask) -> None:
            pass

    class Created(Event, Aggregate.Created):
        index: int
        operation: str  # copy | delete
        source_repository: str
        reference: str
        destination_repository: str
        digest: str | None = None  # a delete: what the deleted tag or manifest was

    class Claimed(Event):
        attempt: int
        worker: str
        lease_until: datetime

        def apply(self, task: ReplicationTask) -> None:
            task.status, task.attempts, task.lease_until = RUNNING, self.attempt, self.lease_until

    class LeaseExtended(Event):
        """A long copy still under way: its worker keeps the task."""

        lease_until: datetime

        def apply(self, task: ReplicationTask) -> None:
            task.lease_until = self.lease_until

    class Succeeded(Event):
        """`skipped`: the target had it already; `bytes`, `blobs`, `manifests` copied."""

        bytes: int
        blobs: int
        manifests: int
        skipped: bool
        duration_ms: int

        def apply(self, task: ReplicationTask) -> None:
            task.status = SUCCEEDED

    class Failed(Event):
        """`retry_at` set: retrying (pending again then); None: failed for good."""

        error: str
        retryable: bool
        retry_at: datetime | None

        def apply(self, task: ReplicationTask) -> None:
            task.status = PENDING if self.retry_at else FAILED
            task.retry_at = self.retry_at

    class Stopped(Event):
        def apply(self, task: ReplicationTask) -> None:
            task.status = STOPPED

    class RetryRequested(Event):
        """A failed (or stopped) task asked to run again, by someone or by the policy once its
        peer is back."""

        def apply(self, task: ReplicationTask) -> None:
            task.status, task.attempts, task.retry_at = PENDING, 0, None

    def __init__(self, execution: str, policy: str, index: int, operation: str, source_repository: str,
                 reference: str, destination_repository: str, digest: str | None = None) -> None:
        self.execution, self.policy, self.index, self.digest = execution, policy, index, digest
        self.operation, self.reference = operation, reference
        self.source_repository, self.destination_repository = source_repository, destination_repository
        self.status, self.attempts = PENDING, 0
        self.lease_until: datetime | None = None
        self.retry_at: datetime | None = None

    @staticmethod
    def create_id(execution: UUID, index: int) -> UUID:
        return uuid5(NAMESPACE_URL, f"/replication/executions/{execution}/tasks/{index}")

    @classmethod
    def plan(cls, execution: ReplicationExecution, index: int, ctx: RequestContext) -> ReplicationTask:
        spec = execution.tasks[index]
        return cls._create(cls.Created, id=cls.create_id(execution.id, index), execution=str(execution.id),
                           policy=execution.policy, index=index, operation=spec["operation"],
                           source_repository=spec["source_repository"], reference=spec["reference"],
                           destination_repository=spec["destination_repository"], digest=spec.get("digest"),
                           **ctx.event_fields())

    def claim(self, worker: str, now: datetime, lease_seconds: int, ctx: RequestContext) -> int:
        """Takes the task for one attempt; ConflictError when it is not due."""
        if not self.due(now):
            raise ConflictError("the replication task is not due", {"status": self.status})
        attempt = self.attempts + 1
        self._trigger(self.Claimed, attempt=attempt, worker=worker,
                      lease_until=now + timedelta(seconds=lease_seconds), ctx=ctx)
        return attempt

    def extend_lease(self, now: datetime, lease_seconds: int, ctx: RequestContext) -> None:
        self._trigger(self.LeaseExtended, lease_until=now + timedelta(seconds=lease_seconds), ctx=ctx)

    def due(self, now: datetime) -> bool:
        if self.status == PENDING:
            return self.retry_at is None or self.retry_at <= now
        return self.status == RUNNING and self.lease_until is not None and self.lease_until <= now

    def succeed(self, bytes_copied: int, blobs: int, manifests: int, skipped: bool, duration_ms: int,
                ctx: RequestContext) -> None:
        self._trigger(self.Succeeded, bytes=bytes_copied, blobs=blobs, manifests=manifests, skipped=skipped,
                      duration_ms=duration_ms, ctx=ctx)

    def fail(self, error: str, retryable: bool, now: datetime, ctx: RequestContext,
             retry_after: float | None = None) -> None:
        retry_at = None
        if retryable and self.attempts < MAX_ATTEMPTS:
            backoff = min(FIRST_RETRY_SECONDS * 2 ** (self.attempts - 1), MAX_RETRY_SECONDS)
            retry_at = now + timedelta(seconds=max(backoff, retry_after or 0))
        self._trigger(self.Failed, error=error[:2000], retryable=retryable, retry_at=retry_at, ctx=ctx)

    def stop(self, ctx: RequestContext) -> None:
        if self.status not in FINAL:
            self._trigger(self.Stopped, ctx=ctx)

    def retry(self, ctx: RequestContext) -> None:
        if self.status not in (FAILED, STOPPED):
            raise ConflictError("only a failed or stopped task can be retried", {"status": self.status})
        self._trigger(self.RetryRequested, ctx=ctx)

    def _trigger(self, event_class, ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, execution=self.execution, policy=self.policy, **ctx.event_fields(),
                           **fields)


def plan_copies(policy_settings, repositories: list[str], tags_of,
                labels_of: Callable[[str], dict[str, frozenset[str]]] | None = None) -> list[dict]:
    """The copy tasks of a manual or scheduled run: every tag the filters select in every
    repository they select, in name order. `tags_of(name)` lists a source repository's tags;
    `labels_of(name)` maps them to their artifacts' label names, which label filters need (only
    this registry's artifacts have labels)."""
    labels_of = _label_lookup(policy_settings, labels_of)
    tasks = []
    for name in sorted(repositories):
        if not policy_settings.selects_repository(name):
            continue
        labels = labels_of(name)
        for tag in sorted(tags_of(name)):
            if policy_settings.selects_tag(tag) and policy_settings.selects_labels(labels.get(tag, ())):
                tasks.append({"operation": "copy", "source_repository": name, "reference": tag,
                              "destination_repository": policy_settings.destination_name(name)})
    return tasks


def _label_lookup(policy_settings, labels_of) -> Callable[[str], dict[str, frozenset[str]]]:
    if not policy_settings.filters_on_labels:
        return lambda name: {}
    if labels_of is None:
        raise InvalidInputError("label filters select this registry's artifacts: push-based policies only")
    return labels_of
