"""Event-based replication: follows the log from a durable position of its own and, for each
push, tag or delete that an enabled event-based policy selects, records an execution with the
task that replicates it. The execution's id comes from (policy, log position), so several
processes following the log at once record each one once."""

from __future__ import annotations

import logging
import threading
from uuid import NAMESPACE_URL, uuid5

from eventsourcing.persistence import IntegrityError

from api.webhook_dispatcher import DispatchPosition
from domain.context import SYSTEM
from domain.repository import Repository
from projections.replication import PolicyRow

log = logging.getLogger("portlog.replication")
BATCH = 500
FOLLOW_SECONDS = 1.0


class ReplicationPosition(DispatchPosition):
    NAME = "replication"


def follow_for_replication(services, stop: threading.Event) -> None:
    position = ReplicationPosition(services)
    while not stop.wait(FOLLOW_SECONDS):
        try:
            record_event_executions(services, position)
        except Exception:
            log.exception("event-based replication could not follow the log")


def record_event_executions(services, position: DispatchPosition) -> None:
    start = position.get()
    readable = services.projections.positions().get("replication", 0)
    policies = [p for p in services.replication.policies()
                if p.settings.trigger == "event_based" and p.settings.enabled and p.settings.source is None]
    if policies:
        start = max(start, min(p.id for p in policies))  # nothing older can be theirs
    if readable <= start or not policies:
        position.advance(readable)
        return
    registry = services.registry
    notifications = registry.recorder.select_notifications(start=start, limit=BATCH, stop=readable,
                                                           inclusive_of_start=False)
    for notification in notifications:
        event = registry.mapper.to_domain_event(notification)
        if isinstance(event, Repository.Event):
            for policy in policies:
                if notification.id > policy.id:
                    _record(services, policy, notification.id, event)
    position.advance(notifications[-1].id if len(notifications) == BATCH else readable)


def tasks_for(policy: PolicyRow, event) -> list[dict]:
    """What one event asks of one policy: a copy of a tag pointed (or of a referrer pushed by
    digest), a delete of a tag or manifest deleted when the policy syncs deletes."""
    settings = policy.settings
    name = getattr(event, "repository", "")
    if not settings.selects_repository(name):
        return []
    destination = settings.destination_name(name)
    match event:
        case Repository.TagPointed(tag=tag) if settings.selects_tag(tag):
            return [_task("copy", name, tag, destination)]
        case Repository.ManifestPushed(subject=subject, digest=digest) if subject:
            return [_task("copy", name, digest, destination)]
        case Repository.TagDeleted(tag=tag, digest=digest) if settings.deletion and settings.selects_tag(tag):
            return [_task("delete", name, tag, destination, digest)]
        case Repository.ManifestDeleted(digest=digest) if settings.deletion:
            return [_task("delete", name, digest, destination, digest)]
    return []


def _record(services, policy: PolicyRow, position: int, event) -> None:
    planned = tasks_for(policy, event)
    if not planned:
        return
    execution_id = uuid5(NAMESPACE_URL, f"/replication/policies/{policy.name}/events/{position}")
    try:
        services.replicator.record(policy.name, "event_based", planned, SYSTEM, execution_id)
    except IntegrityError:
        pass  # another process recorded it


def _task(operation: str, source: str, reference: str, destination: str, digest: str | None = None) -> dict:
    return {"operation": operation, "source_repository": source, "reference": reference,
            "destination_repository": destination, **({"digest": digest} if digest else {})}
