"""Pure ASGI middleware (it never buffers a streamed body): a request id for every request,
echoed as X-Request-Id, and the registry API version header on /v2/ responses."""

from __future__ import annotations

import itertools
import os

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A random prefix per process and a counter: unique across nodes and restarts, and far
# cheaper than a uuid4 per request (which showed up in the manifest GET profile).
_PREFIX = os.urandom(6).hex()
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):010x}"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = _incoming_request_id(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        is_v2 = scope["path"].startswith("/v2")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                if is_v2:
                    headers["Docker-Distribution-API-Version"] = "registry/2.0"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _incoming_request_id(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            text = value.decode("latin-1")
            if 0 < len(text) <= 128 and text.isprintable():
                return text
    return None
