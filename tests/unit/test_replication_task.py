"""The replication task's state machine: claims, leases, retries with exponential backoff until
the attempts run out, stops and manual retries."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.context import SYSTEM
from domain.errors import ConflictError
from domain.replication_runs import MAX_ATTEMPTS, ReplicationExecution, ReplicationTask

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def new_task() -> ReplicationTask:
    execution = ReplicationExecution.start("p", "manual", [{
        "operation": "copy", "source_repository": "team/app", "reference": "v1",
        "destination_repository": "mirror/app"}], SYSTEM)
    return ReplicationTask.plan(execution, 0, SYSTEM)


def test_retryable_failures_back_off_exponentially_until_the_attempts_run_out():
    task, now, delays = new_task(), NOW, []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert task.claim("w", now, 60, SYSTEM) == attempt
        task.fail("connection refused", True, now, SYSTEM)
        if task.status == "failed":
            break
        delays.append((task.retry_at - now).total_seconds())
        assert not task.due(now) and task.due(task.retry_at)
        now = task.retry_at
    assert task.status == "failed" and task.attempts == MAX_ATTEMPTS
    assert delays == [2, 4, 8, 16, 32, 64, 128]


def test_a_retry_after_longer_than_the_backoff_wins_and_other_errors_fail_at_once():
    task = new_task()
    task.claim("w", NOW, 60, SYSTEM)
    task.fail("429", True, NOW, SYSTEM, retry_after=90)
    assert task.retry_at == NOW + timedelta(seconds=90)
    task.claim("w", task.retry_at, 60, SYSTEM)
    task.fail("MANIFEST_INVALID", False, NOW, SYSTEM)
    assert task.status == "failed" and task.retry_at is None


def test_a_claim_is_exclusive_until_its_lease_runs_out():
    task = new_task()
    task.claim("w1", NOW, 60, SYSTEM)
    with pytest.raises(ConflictError):
        task.claim("w2", NOW + timedelta(seconds=30), 60, SYSTEM)
    assert task.claim("w2", NOW + timedelta(seconds=61), 60, SYSTEM) == 2  # w1 died


def test_stopped_and_failed_tasks_can_be_retried_others_not():
    task = new_task()
    with pytest.raises(ConflictError):
        task.retry(SYSTEM)
    task.stop(SYSTEM)
    task.retry(SYSTEM)
    assert task.status == "pending" and task.attempts == 0


def test_an_extended_lease_keeps_other_workers_off():
    task = new_task()
    task.claim("w1", NOW, 60, SYSTEM)
    task.extend_lease(NOW + timedelta(seconds=50), 60, SYSTEM)
    assert not task.due(NOW + timedelta(seconds=100)) and task.due(NOW + timedelta(seconds=111))
