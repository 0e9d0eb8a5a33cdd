"""Group commit: the commands that arrive while one batch is being saved are applied and
saved together, in one event-store transaction.

Writers in one process would otherwise queue for the single event-store writer one commit
(and one fsync) each. The first command to arrive becomes the leader: it takes every queued
command, applies each to its aggregate (loaded once per batch), saves all aggregates at once,
and hands each command its outcome. A command that fails (a domain error) fails alone, as long
as it failed before recording anything — every aggregate command validates first — otherwise
the batch is redone one command at a time. A version conflict with another process redoes the
batch against the new state.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.errors import ConcurrentUpdateError

MAX_ATTEMPTS = 20


@dataclass
class Command:
    aggregate_id: UUID
    change: Callable[[Aggregate], None]
    create: Callable[[], Aggregate] | None = None
    missing: Callable[[], Exception] | None = None
    done: bool = False
    position: int | None = None
    error: BaseException | None = None

    def outcome(self) -> int | None:
        if self.error is not None:
            raise self.error
        return self.position


class _PartlyApplied(Exception):
    """A change raised after recording events: its aggregate cannot be shared in a batch."""


class GroupCommitter:
    def __init__(self, app: Application, load: Callable[[UUID], Aggregate | None]) -> None:
        self.app = app
        self.load = load
        self._condition = threading.Condition()
        self._queue: list[Command] = []
        self._committing = False
        self._leader = threading.local()

    def run(self, command: Command) -> int | None:
        if getattr(self._leader, "active", False):
            raise RuntimeError("a change must not issue another command: it would wait for itself")
        with self._condition:
            self._queue.append(command)
            while self._committing and not command.done:
                self._condition.wait()
            if command.done:
                return command.outcome()
            self._committing = True
            batch, self._queue = self._queue, []
        self._leader.active = True
        try:
            self._commit(batch)
        finally:
            self._leader.active = False
            with self._condition:
                self._committing = False
                self._condition.notify_all()
        return command.outcome()

    def _commit(self, batch: list[Command]) -> None:
        try:
            self._save_with_retries(batch)
        except _PartlyApplied:
            for command in batch:
                self._save_with_retries([command])
        except Exception as error:  # the store itself failed: every command learns it
            for command in batch:
                command.error, command.done = error, True

    def _save_with_retries(self, batch: list[Command]) -> None:
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._apply_and_save(batch)
                return
            except IntegrityError:
                time.sleep(0.001 * (attempt + 1))
        for command in batch:
            command.error = ConcurrentUpdateError("too many concurrent writers",
                                                  {"aggregate": str(command.aggregate_id)})
            command.done = True

    def _apply_and_save(self, batch: list[Command]) -> None:
        aggregates: dict[UUID, Aggregate | None] = {}
        for command in batch:
            command.error = None
            if command.aggregate_id not in aggregates:
                aggregates[command.aggregate_id] = self.load(command.aggregate_id)
            self._apply(command, aggregates, alone=len(batch) == 1)
        changed = [a for a in aggregates.values() if a is not None and a.pending_events]
        recordings = self.app.save(*changed) if changed else []
        position = recordings[-1].notification.id if recordings else self.app.recorder.max_notification_id()
        for command in batch:
            command.position, command.done = position, True

    def _apply(self, command: Command, aggregates: dict, alone: bool) -> None:
        aggregate = aggregates[command.aggregate_id]
        created = aggregate is None
        if created:
            if command.create is None:
                command.error = command.missing() if command.missing else AggregateNotFoundError(
                    command.aggregate_id)
                return
            aggregate = command.create()
        recorded = len(aggregate.pending_events)
        try:
            command.change(aggregate)
        except Exception as error:
            if len(aggregate.pending_events) != recorded and not alone:
                raise _PartlyApplied from error
            command.error = error
            if not created:
                aggregates[command.aggregate_id] = self.load(command.aggregate_id) if alone \
                    else aggregate
            return
        aggregates[command.aggregate_id] = aggregate
