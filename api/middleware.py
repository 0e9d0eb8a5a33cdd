"""Pure ASGI middleware (it never buffers a streamed body): a request id for every request,
echoed as X-Request-Id, `nosniff` on every response and the registry API version header on
/v2/ responses; and the limits on request bodies (size outside /v2/, idle time everywhere)."""

from __future__ import annotations

import asyncio
import itertools
import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.request_input import BodyTimeoutError, BodyTooLargeError, as_id

# A random prefix per process and a counter: unique across nodes and restarts, and far
# cheaper than a uuid4 per request (which showed up in the manifest GET profile).
_PREFIX = os.urandom(6).hex()
_COUNTER = itertools.count(1)
# A client's own X-Request-Id is kept only if it is short and plain (it lands in logs and events).
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):010x}"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        # With tracing on (api/tracing.py runs first), the trace id stands for a request id not sent.
        request_id = _incoming_request_id(scope) or state.get("trace_id") or new_request_id()
        state["request_id"] = request_id
        is_v2 = scope["path"].startswith("/v2")

        own = [(b"x-request-id", request_id.encode("latin-1")), *(_V2_HEADERS if is_v2 else ())]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_headers(message.get("headers", ()), own)
            await send(message)

        await self.app(scope, receive, send_with_headers)


_NOSNIFF = (b"x-content-type-options", b"nosniff")
_V2_HEADERS = ((b"docker-distribution-api-version", b"registry/2.0"),)


def _with_headers(headers, own: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers and ours, appended as raw pairs (MutableHeaders scans and
    re-encodes per header set); `nosniff` unless the response has it already (the UI's)."""
    if any(key == _NOSNIFF[0] for key, _ in headers):
        return [*headers, *own]
    return [*headers, *own, _NOSNIFF]


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            text = value.decode("latin-1")
            return text if _CLIENT_REQUEST_ID.fullmatch(text) else None
    return None


class BodyLimitMiddleware:
    """Counts request bodies as they are read, never buffering them: outside /v2/ (where blob
    uploads stream and manifests have their own cap) a body past `max_bytes` fails the read
    with 413, and a declared Content-Length past it fails the first read, before any byte is
    taken, so handlers that authenticate first turn strangers away without reading. On every
    path, a body that sends nothing for `idle_seconds` fails the read with 408."""

    def __init__(self, app: ASGIApp, max_bytes: int, idle_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = None if scope["path"].startswith("/v2/") else self.max_bytes
        await self.app(scope, _CountedBody(receive, limit, self.idle_seconds, _content_length(scope)), send)


class _CountedBody:
    """An ASGI `receive` that enforces the limits until the body has been read."""

    def __init__(self, receive: Receive, limit: int | None, idle_seconds: float, declared: int | None) -> None:
        self.receive, self.limit, self.idle_seconds, self.declared = receive, limit, idle_seconds, declared
        self.received = 0
        self.done = False

    async def __call__(self) -> Message:
        if self.done:  # later reads only wait for a disconnect, however long a response takes
            return await self.receive()
        if self.limit is not None and (self.declared or 0) > self.limit:
            raise self._too_large()
        try:
            async with asyncio.timeout(self.idle_seconds):  # a quarter of wait_for's cost per chunk
                message = await self.receive()
        except TimeoutError:
            raise BodyTimeoutError(f"the request body sent nothing for {self.idle_seconds} seconds") from None
        self.done = message["type"] != "http.request" or not message.get("more_body", False)
        self.received += len(message.get("body", b""))
        if self.limit is not None and self.received > self.limit:
            raise self._too_large()
        return message

    def _too_large(self) -> BodyTooLargeError:
        return BodyTooLargeError(f"the request body is larger than {self.limit} bytes (server.max_body_bytes)")


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return as_id(value.decode("latin-1").strip())
    return None
