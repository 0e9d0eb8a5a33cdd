"""Event-based replication: follows the log from a durable position of its own and, for each
push, tag or delete that an enabled event-based policy selects, records an execution with the
task that replicates it. The execution's id comes from (policy, log position), so several
processes following the log at once record each one once.

Label filters judge an artifact by the labels it carried when the event happened (its
repository as it stood just before, loaded from the log: a deleted artifact's labels are gone
from the read models by the time the follower reads its deletion), and a label put on an artifact
(or taken off, for `excludes`) that makes the policy select it copies its tags."""

from __future__ import annotations

import logging
import threading
from typing import Callable
from uuid import NAMESPACE_URL, uuid5

from eventsourcing.persistence import IntegrityError

from background.webhook_dispatcher import DispatchPosition, events_after, follow_from
from domain.context import SYSTEM
from domain.repository import Repository
from projections.replication import PolicyRow

log = logging.getLogger("portlog.replication")
BATCH = 500
FOLLOW_SECONDS = 1.0


class ReplicationPosition(DispatchPosition):
    NAME = "replication"


def follow_for_replication(services, stop: threading.Event) -> None:
    follow_from(ReplicationPosition, lambda position: record_event_executions(services, position),
                services, stop, FOLLOW_SECONDS, "event-based replication", log)


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
    events, reached = events_after(services.registry, start, readable, BATCH)
    for at, event in events:
        if isinstance(event, Repository.Event):
            before = _repository_before(services.registry, event)
            for policy in policies:
                if at > policy.id:
                    _record(services, policy, at, event, before)
    position.advance(reached)


Before = Callable[[], Repository | None]


def tasks_for(policy: PolicyRow, event, before: Before = lambda: None) -> list[dict]:
    """What one event asks of one policy: a copy of a tag pointed (or of a referrer pushed by
    digest), a delete of a tag or manifest deleted when the policy syncs deletes, copies of an
    artifact's tags when a label change makes the policy select it. `before()` is the event's
    repository as it stood just before the event (read only for label filters)."""
    settings = policy.settings
    name = getattr(event, "repository", "")
    if not settings.selects_repository(name):
        return []
    destination = settings.destination_name(name)

    def labelled(digest: str) -> bool:
        return not settings.filters_on_labels or settings.selects_labels(_labels(before(), digest))

    match event:
        case Repository.TagPointed(tag=tag, digest=digest) if settings.selects_tag(tag) and labelled(digest):
            return [_task("copy", name, tag, destination)]
        case Repository.ManifestPushed(subject=subject, digest=digest) if subject and labelled(subject):
            return [_task("copy", name, digest, destination)]
        case Repository.TagDeleted(tag=tag, digest=digest) if settings.deletion and settings.selects_tag(tag) \
                and labelled(digest):
            return [_task("delete", name, tag, destination, digest)]
        case Repository.ManifestDeleted(digest=digest) if settings.deletion and labelled(digest):
            return [_task("delete", name, digest, destination, digest)]
        case Repository.ArtifactLabelAdded() | Repository.ArtifactLabelRemoved() if settings.filters_on_labels:
            return [_task("copy", name, tag, destination) for tag in _newly_selected_tags(settings, event, before())]
    return []


def _newly_selected_tags(settings, event, repository) -> list[str]:
    """The artifact's tags the policy selects, when the label change is what makes it select the
    artifact (one it selected already was copied then)."""
    if repository is None:
        return []
    carried = _labels(repository, event.digest)
    now = carried | {event.label} if isinstance(event, Repository.ArtifactLabelAdded) else carried - {event.label}
    if settings.selects_labels(carried) or not settings.selects_labels(now):
        return []
    tags = [tag for tag, digest in repository.tags.items() if digest == event.digest]
    return sorted(tag for tag in tags if settings.selects_tag(tag))


def _labels(repository, digest: str) -> frozenset[str]:
    return repository.label_names(digest) if repository is not None else frozenset()


def _repository_before(registry, event) -> Before:
    """Loads, once and only when asked, the event's repository at the version before the event."""
    loaded: list = []

    def load():
        if not loaded:
            version = event.originator_version - 1
            loaded.append(registry.repository.get(event.originator_id, version=version) if version >= 1 else None)
        return loaded[0]

    return load


def _record(services, policy: PolicyRow, position: int, event, before: Before) -> None:
    planned = tasks_for(policy, event, before)
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
