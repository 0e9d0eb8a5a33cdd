"""Events as CloudEvents 1.0 (structured JSON mode), the one envelope every subscriber gets:
the NATS relay, webhooks in the CloudEvents format, `GET /api/v1/events` and
`portlog events tail`.

    {"specversion": "1.0", "id": "1234", "source": "portlog", "type": "io.portlog.artifact.pushed",
     "time": "2026-11-22T05:30:00.123456+00:00", "subject": "team/app@sha256:…",
     "datacontenttype": "application/json", "portlogposition": 1234,
     "data": {"actor": …, "operation": …, "project": …, "repository": …, "request_id": …,
              "client": …, <the event's own fields>}}

`id` is the event's position in the log, unique within a `source` (one registry); the
extension attribute `portlogposition` carries it as a number, for resuming.
"""

from __future__ import annotations

from domain.event_catalog import PublicEvent

TYPE_PREFIX = "io.portlog."


def cloudevent(position: int, event: PublicEvent, source: str) -> dict:
    return {
        "specversion": "1.0",
        "id": str(position),
        "source": source,
        "type": TYPE_PREFIX + event.type,
        "time": event.occurred_at.isoformat(),
        "subject": event.resource,
        "datacontenttype": "application/json",
        "portlogposition": position,
        "data": {"actor": event.actor, "operation": event.operation, "project": event.project,
                 "repository": event.repository, "request_id": event.request_id, "client": event.source,
                 **event.data},
    }
