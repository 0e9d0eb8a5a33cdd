"""One access line per request on the `portlog.access` logger (server.access_log): method, route
template, path, status, response bytes, duration, user, repository, request id and client.
Never the query string nor any header: tokens and passwords travel there. Pure ASGI: the
response streams through untouched, only counted."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("portlog.access")
# Orchestrators' probes, every few seconds on every node: their lines at debug level, not info.
PROBES = frozenset({"/livez", "/readyz"})


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        response = {"status": 500, "bytes": 0}  # 500 if the application fails before it answers

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
            elif message["type"] == "http.response.body":
                response["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            level = logging.DEBUG if scope["path"] in PROBES else logging.INFO
            if log.isEnabledFor(level):
                _log_request(scope, level, response["status"], response["bytes"], time.perf_counter() - started)


def _log_request(scope: Scope, level: int, status: int, size: int, seconds: float) -> None:
    route = scope.get("route")
    state = scope.get("state", {})
    context = state.get("context")  # the registry API's RequestContext (api/v2/routes.py)
    fields = {"method": scope["method"], "route": getattr(route, "path", None), "path": scope["path"],
              "status": status, "bytes": size, "duration_ms": round(seconds * 1000, 3),
              "user": context.actor if context is not None else state.get("user"),
              "repository": _repository(scope.get("path_params", {})), "request_id": state.get("request_id"),
              "client": scope["client"][0] if scope.get("client") else None}
    # The record made and handled directly: log.log() would walk the stack for the caller's
    # file and line, which no format shows (a tenth of the access line's cost).
    log.handle(log.makeRecord(
        log.name, level, "", 0, "%s %s %d %dB %.1fms user=%s repository=%s request_id=%s",
        (fields["method"], fields["path"], status, size, fields["duration_ms"], fields["user"] or "-",
         fields["repository"] or "-", fields["request_id"]), None, extra=fields))


def _repository(params: dict) -> str | None:
    """The repository a request names: `/v2/<name>/…`, or Harbor's project + repository."""
    if "name" in params:
        return params["name"]
    if "project" in params and "repository" in params:
        return f"{params['project']}/{params['repository']}"
    return None
