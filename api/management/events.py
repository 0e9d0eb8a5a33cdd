"""GET /api/v1/events?after=POSITION&limit=N[&type=artifact.*,tag.created] — the event log
for subscribers that cannot use NATS: CloudEvents, oldest first, `Link: rel="next"` to go on.
Administrators see every event; other callers the events of the projects they belong to."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from adapters.event_log import EventQuery, read_events
from api.management.common import Call, json_response
from api.request_input import parse_int

MAX_LIMIT = 1000


def list_events(call: Call) -> Response:
    """Public events after a log position, as CloudEvents (`after`, `limit`, `type` globs)."""
    params = call.request.query_params
    query = EventQuery(after=parse_int(params.get("after", "0"), "after"),
                       limit=min(parse_int(params.get("limit", "100"), "limit", minimum=1), MAX_LIMIT),
                       types=tuple(t for t in params.get("type", "").split(",") if t),
                       projects=None if call.principal.system_admin else frozenset(call.principal.grants))
    events, position = read_events(call.services.registry, call.services.settings.events.source, query)
    link = f'<{call.request.url.path}?{_next(params, position)}>; rel="next"'
    return json_response(events, headers={"Link": link, "X-Next-After": str(position)})


def _next(params, position: int) -> str:
    return urlencode([("after", position), *((k, v) for k, v in params.items() if k != "after")])
