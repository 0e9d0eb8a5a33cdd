"""The leader's side of followers (docs/time-travel.md): the log as stored and the bytes it needs.

GET /api/v1/log/events?after=N[&projects=a,b][&wait=false] — NDJSON, oldest first: one line per event,
`LoggedEvent.to_json()` plus `"blobs"` (the digests whose bytes the event needs stored, to fetch
before applying it), and heartbeat lines `{"heartbeat": true, "head": H, "position": P}` (the
leader's head, and the last position the stream has passed: with a project filter, events it
leaves out move it too). The stream ends after STREAM_SECONDS; a follower reconnects from its
position, so a stream is resumable by construction. `wait=false` ends it at the head instead
(a copy of the log as it stands).
GET /api/v1/log/blobs/{digest} — the stored bytes.

System administrators, or a robot holding {project: "*", resource: "event-log", action: "read"}.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from eventsourcing.persistence import StoredEvent
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from api.management.common import Call, json_response
from api.management.problems import Problem
from api.request_input import parse_flag, parse_int
from domain.administration import check_project_name
from domain.follower import digests_to_store, kept_by
from domain.names import check_digest

BATCH = 500
# How soon a new event is streamed: often while events come (as the NATS relay polls), less when idle.
BUSY_POLL_SECONDS, IDLE_POLL_SECONDS = 0.01, 0.05
HEARTBEAT_SECONDS = 1.0
STREAM_SECONDS = 60.0
NDJSON = "application/x-ndjson"


def stream_events(call: Call) -> Response:
    """The event log as stored, after a position, as a stream of NDJSON lines (followers)."""
    call.require_system("event-log", "read")
    params = call.request.query_params
    after = parse_int(params.get("after", "0"), "after")
    projects = _projects(params.get("projects"))
    wait = parse_flag(params.get("wait", "true"), "wait")
    services = call.services
    return StreamingResponse(_lines(services, after, projects, wait), media_type=NDJSON,
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _projects(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    names = frozenset(filter(None, (name.strip() for name in value.split(","))))
    for name in names:
        check_project_name(name)
    return names or None


async def _lines(services, after: int, projects: frozenset[str] | None, wait: bool):
    deadline = time.monotonic() + (STREAM_SECONDS if wait else 0)
    beat_at = last_event_at = 0.0
    while True:
        lines, after, head = await run_in_threadpool(_batch, services, after, projects)
        if lines:
            yield b"".join(lines)
        now = time.monotonic()
        if lines:
            beat_at = last_event_at = now
            if after < head:
                continue
        if now - beat_at >= HEARTBEAT_SECONDS or now >= deadline:
            yield _heartbeat(head, after)
            beat_at = now
        if now >= deadline:
            return
        await asyncio.sleep(BUSY_POLL_SECONDS if now - last_event_at < HEARTBEAT_SECONDS else IDLE_POLL_SECONDS)


def _batch(services, after: int, projects: frozenset[str] | None) -> tuple[list[bytes], int, int]:
    """The lines of the next events after `after`, the position passed, and the head."""
    head = services.log_store.head()
    if head <= after:
        return [], after, head
    lines = []
    events = services.log_store.read(after, BATCH)
    for logged in events:
        event = services.registry.mapper.to_domain_event(StoredEvent(
            logged.originator_id, logged.originator_version, logged.topic, logged.state))
        if kept_by(projects, event):
            lines.append(orjson.dumps({**logged.to_json(), "blobs": digests_to_store(event)}) + b"\n")
    if events:
        # After each batch: the follower applies what it has, and learns how far the stream has
        # passed (a project filter may have left the last events out).
        after = events[-1].position
        lines.append(_heartbeat(max(head, after), after))
    return lines, after, max(head, after)


def _heartbeat(head: int, position: int) -> bytes:
    return orjson.dumps({"heartbeat": True, "head": head, "position": position}) + b"\n"


def get_blob(call: Call) -> Response:
    """The stored bytes of a digest a logged event needs (followers)."""
    call.require_system("event-log", "read")
    digest = check_digest(call.param("digest"))
    size = call.services.blobs.stat(digest)
    if size is None:
        raise Problem(404, "not-found", f"no stored bytes for {digest}", {"digest": digest})
    return StreamingResponse(call.services.blobs.read(digest), media_type="application/octet-stream",
                             headers={"Content-Length": str(size), "Docker-Content-Digest": digest})


def follow_status(call: Call) -> Response:
    """This registry as a follower: its leader, state, position and lag."""
    status = call.services.follow_state.status()
    if status is None:
        raise Problem(404, "not-found", "this registry follows no leader")
    return json_response(status.to_json())
