"""The replication job service's commands: start an execution of a policy (plan its tasks),
run one task (claim it, copy, record the outcome), stop an execution, retry a task. The worker
pool that calls `run_task` is background/replication_worker.py; the copy itself is domain/transfer.py.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.context import RequestContext
from domain.errors import ConflictError, NotFoundError
from domain.replication import PolicySettings
from domain.replication_runs import FINAL, ReplicationExecution, ReplicationTask, plan_copies
from domain.transfer import CopyResult, Side, copy_artifact, delete_artifact

LEASE_SECONDS = 60  # the default of replication.lease_seconds


class TaskStopped(Exception):
    """The task's execution was asked to stop while it was copying."""


class TaskInterrupted(Exception):
    """This process is shutting down: the attempt is abandoned unrecorded; its lease runs out
    and a worker (here after a restart, or on another node) takes the task again."""


class Replicator:
    def __init__(self, app, policies, local_side: Callable[[RequestContext], Side],
                 remote_side: Callable[[str], Side], local_repositories: Callable[[], list[str]],
                 local_tags: Callable[[str], list[str]],
                 failed_tasks: Callable[[str], list[UUID]] = lambda policy: [],
                 local_tag_labels: Callable[[str], dict[str, frozenset[str]]] | None = None,
                 lease_seconds: int = LEASE_SECONDS) -> None:
        self.app = app
        self.policies = policies
        self.local_side = local_side
        self.remote_side = remote_side  # endpoint name -> a client of it
        self.local_repositories = local_repositories
        self.local_tags = local_tags
        self.local_tag_labels = local_tag_labels  # a repository's tags -> their artifacts' label names
        self.failed_tasks = failed_tasks  # a policy's failed tasks, retried once its peer answers again
        # A claim outlives a dead worker by this much at most; a long copy extends it at half-life.
        self.lease_seconds = lease_seconds

    def start(self, policy_name: str, trigger: str, ctx: RequestContext,
              execution_id: UUID | None = None) -> tuple[UUID, int]:
        """Plans and records an execution with its tasks; returns (execution id, position)."""
        settings = self.policies.get(policy_name).current
        if not settings.enabled:
            raise ConflictError("the replication policy is disabled", {"policy": policy_name})
        if settings.source is None:
            planned = plan_copies(settings, self.local_repositories(), self.local_tags, self.local_tag_labels)
        else:
            remote = self.remote_side(settings.source)
            planned = plan_copies(settings, remote.catalog(), remote.tags)
        return self.record(policy_name, trigger, planned, ctx, execution_id)

    def record(self, policy_name: str, trigger: str, planned: list[dict], ctx: RequestContext,
               execution_id: UUID | None = None) -> tuple[UUID, int]:
        execution = ReplicationExecution.start(policy_name, trigger, planned, ctx, execution_id)
        tasks = [ReplicationTask.plan(execution, index, ctx) for index in range(len(planned))]
        return execution.id, self.app.save(execution, *tasks)[-1].notification.id

    def run_task(self, task_id: UUID, worker: str, ctx: RequestContext,
                 throttle: Callable[[Iterable[bytes], PolicySettings], Iterable[bytes]] | None = None,
                 interrupted: Callable[[], bool] = lambda: False) -> str:
        """Claims the task and runs one attempt; returns its status after (or "taken" when another
        worker got it first, "interrupted" when this process stopped meanwhile)."""
        task: ReplicationTask = self.app.load(task_id)
        try:
            task.claim(worker, datetime.now(timezone.utc), self.lease_seconds, ctx)
            self.app.save(task)
        except (ConflictError, IntegrityError):
            return "taken"
        execution: ReplicationExecution = self.app.load(UUID(task.execution))
        if execution.stopping:
            task.stop(ctx)
            self.app.save(task)
            return task.status
        started = time.monotonic()
        try:
            result = self._copy(task, execution, throttle, interrupted, lambda: self._extend(task, ctx))
        except TaskInterrupted:
            return "interrupted"
        except TaskStopped:
            task.stop(ctx)
        except Exception as error:  # the peer's answer or the network: recorded, retried if it may help
            task.fail(_describe(error), getattr(error, "retryable", False), datetime.now(timezone.utc), ctx,
                      getattr(error, "retry_after", None))
        else:
            task.succeed(result.bytes, result.blobs, result.manifests, result.skipped,
                         int((time.monotonic() - started) * 1000), ctx)
        self.app.save(task)
        if task.status == "succeeded" and execution.trigger == "event_based":
            self._retry_failed(task.policy, ctx)  # the peer answers again: what failed meanwhile goes again
        return task.status

    def _extend(self, task: ReplicationTask, ctx: RequestContext) -> None:
        """Keeps the lease of a copy under way; another worker that took the task meanwhile (this
        one looked dead) wins: this attempt is abandoned."""
        now = datetime.now(timezone.utc)
        if task.lease_until is not None and task.lease_until - now > timedelta(seconds=self.lease_seconds / 2):
            return
        task.extend_lease(now, self.lease_seconds, ctx)
        try:
            self.app.save(task)
        except IntegrityError:
            raise TaskInterrupted() from None

    def _retry_failed(self, policy: str, ctx: RequestContext) -> None:
        for task_id in self.failed_tasks(policy):
            try:
                self.retry(task_id, ctx)
            except ConflictError:
                pass  # retried by someone else meanwhile

    def stop(self, execution_id: UUID, ctx: RequestContext) -> int | None:
        """Records the stop and stops every task not running; running ones stop at their next
        blob or chunk (their worker reads the stop)."""
        execution: ReplicationExecution | None = self.app.load(execution_id)
        if execution is None:
            raise NotFoundError("replication execution not found", {"execution": str(execution_id)})
        execution.request_stop(ctx)
        position = self.app.save(execution)[-1].notification.id if execution.pending_events else None
        for index in range(len(execution.tasks)):
            position = self._stop_if_idle(ReplicationTask.create_id(execution.id, index), ctx) or position
        return position

    def retry(self, task_id: UUID, ctx: RequestContext) -> int | None:
        return self.app.update(task_id, lambda task: task.retry(ctx))

    def _stop_if_idle(self, task_id: UUID, ctx: RequestContext) -> int | None:
        def change(task: ReplicationTask) -> None:
            if task.status not in FINAL and task.status != "running":
                task.stop(ctx)

        return self.app.update(task_id, change)

    def _copy(self, task: ReplicationTask, execution: ReplicationExecution, throttle, interrupted, extend):
        settings = self.policies.get(execution.policy).current
        local = self.local_side(RequestContext(f"replication:{execution.policy}", task.execution))
        source = local if settings.source is None else self.remote_side(settings.source)
        target = local if settings.destination is None else self.remote_side(settings.destination)
        if task.operation == "delete":
            delete_artifact(target, task.destination_repository, task.reference, task.digest)
            return CopyResult(skipped=True)
        check = _StopCheck(lambda: self._stopping(task.execution), interrupted, extend)
        source = _Watched(source, check, settings, throttle)
        return copy_artifact(source, task.source_repository, task.reference, target, task.destination_repository,
                             override=settings.override)

    def _stopping(self, execution: str) -> bool:
        return self.app.load(UUID(execution)).stopping


class _StopCheck:
    """Raises TaskInterrupted or TaskStopped; reads the execution (and extends the lease when
    half of it is gone) at most twice a second."""

    def __init__(self, stopping: Callable[[], bool], interrupted: Callable[[], bool],
                 extend: Callable[[], None]) -> None:
        self.stopping, self.interrupted, self.extend, self.checked = stopping, interrupted, extend, 0.0

    def __call__(self) -> None:
        if self.interrupted():
            raise TaskInterrupted()
        now = time.monotonic()
        if now - self.checked >= 0.5:
            self.checked = now
            if self.stopping():
                raise TaskStopped()
            self.extend()


class _Watched:
    """A source side whose blob streams check for a stop request (and honour a bandwidth limit)
    as they flow."""

    def __init__(self, side: Side, check: _StopCheck, settings: PolicySettings, throttle) -> None:
        self.side, self.check, self.settings, self.throttle = side, check, settings, throttle

    def __getattr__(self, name: str):
        return getattr(self.side, name)

    def open_blob(self, name: str, digest: str):
        self.check()
        return _WatchedBlob(self.side.open_blob(name, digest), self)


class _WatchedBlob:
    def __init__(self, opened, watched: _Watched) -> None:
        self.opened, self.watched = opened, watched

    def __enter__(self):
        size, chunks = self.opened.__enter__()
        watched = self.watched
        flowing = watched.throttle(chunks, watched.settings) if watched.throttle else chunks
        return size, _checked(flowing, watched.check)

    def __exit__(self, *exc):
        return self.opened.__exit__(*exc)


def _checked(chunks: Iterable[bytes], check: _StopCheck) -> Iterable[bytes]:
    for chunk in chunks:
        check()
        yield chunk


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
