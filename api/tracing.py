"""The span of every request when tracing is on (adapters/tracing.py; the app adds this
middleware only then). Named after the route template, never the raw path; a caller's W3C
`traceparent` is continued; the trace id is left in the request state, where RequestIdMiddleware
takes it as the request id when the client sent none."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.tracing import Tracing

TRACE_HEADERS = (b"traceparent", b"tracestate")


class TracingMiddleware:
    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method = scope["method"]
        carrier = {key.decode("latin-1"): value.decode("latin-1")
                   for key, value in scope["headers"] if key in TRACE_HEADERS}
        with self.tracing.server_span(method, carrier, **{"http.request.method": method}) as span:
            scope.setdefault("state", {})["trace_id"] = format(span.get_span_context().trace_id, "032x")

            async def send_with_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        span.set_attribute("error.type", str(message["status"]))
                await send(message)

            try:
                await self.app(scope, receive, send_with_status)
            finally:
                route = scope.get("route")
                if route is not None and hasattr(route, "path"):
                    span.update_name(f"{method} {route.path}")
                    span.set_attribute("http.route", route.path)
