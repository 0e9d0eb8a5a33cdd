"""Reading the event log as subscribers see it: CloudEvents (adapters/cloudevents.py) of the
public events (domain/event_catalog.py) after a position, optionally only some types (globs
such as `artifact.*`) and some projects. Shared by `GET /api/v1/events` and
`portlog events tail`."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from adapters.cloudevents import cloudevent
from domain.application import Registry
from domain.event_catalog import describe, is_public

BATCH = 500


@dataclass(frozen=True)
class EventQuery:
    after: int = 0
    limit: int = 100
    types: tuple[str, ...] = ()  # globs over public types; empty: all
    projects: frozenset[str] | None = None  # None: every event, even those of no project
    scan_limit: int = 20_000  # notifications read at most per call: a filtered page stays cheap


def read_events(registry: Registry, source: str, query: EventQuery) -> tuple[list[dict], int]:
    """Up to `limit` matching CloudEvents, and the position to continue after (the last one
    read, matching or not: a sparse filter still moves forward)."""
    found: list[dict] = []
    position, scanned = query.after, 0
    while len(found) < query.limit and scanned < query.scan_limit:
        batch = registry.recorder.select_notifications(start=position, limit=BATCH, inclusive_of_start=False)
        if not batch:
            break
        for notification in batch:
            position, scanned = notification.id, scanned + 1
            event = registry.mapper.to_domain_event(notification)
            if is_public(event):
                public = describe(event)
                if _wanted(public, query):
                    found.append(cloudevent(notification.id, public, source))
                    if len(found) == query.limit:
                        break
    return found, position


def _wanted(public, query: EventQuery) -> bool:
    if query.types and not any(fnmatchcase(public.type, pattern) for pattern in query.types):
        return False
    return query.projects is None or public.project in query.projects
