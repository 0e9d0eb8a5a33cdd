"""Prometheus metrics over HTTP: the middleware that counts every request (by route template,
never the raw path) and the blob bytes, pushes and pulls of /v2/ by project, and `GET /metrics`.

Who may read /metrics: its labels name every project, private ones included. On the main port it
takes a system administrator's credentials (Basic or Bearer, as the management API) unless
`metrics.require_auth = false`; the separate `metrics.port` (off by default, on loopback unless
`metrics.host` says otherwise) answers without credentials, as Harbor's exporter does, for a
Prometheus that should hold no password. docs/operations.md, Monitoring.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.metrics import CONTENT_TYPE, Metrics
from api.management.common import authenticate
from api.management.problems import Problem
from domain.permissions import project_of

log = logging.getLogger("portlog.metrics")
UNMATCHED = "unmatched"  # the route label of a request no route took (404s): raw paths are unbounded


BODY_METHODS = frozenset({"PUT", "POST", "PATCH"})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # (method, route, status) -> its counter and histogram: a dict lookup per request instead
        # of prometheus_client's labels() (validation and a lock: half of the cost, measured)
        self._series: dict[tuple[str, str, int], tuple] = {}
        self._by_project: dict[tuple[int, str], object] = {}  # (id of a counter, project) -> its child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        seen = _Transfer()

        async def counted_receive() -> Message:
            message = await receive()
            seen.received += len(message.get("body", b""))
            return message

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
            elif message["type"] == "http.response.body":
                seen.sent += len(message.get("body", b""))
            await send(message)

        # Only uploads have bodies worth counting: a GET's receive() is the disconnect listener's.
        counting_receive = counted_receive if scope["method"] in BODY_METHODS else receive
        try:
            await self.app(scope, counting_receive, counted_send)
        except BaseException:
            seen.status = seen.status or 500
            raise
        finally:
            self._record(scope, root_path, seen, time.perf_counter() - started)

    def _record(self, scope: Scope, root_path: str, seen: _Transfer, seconds: float) -> None:
        method, route = scope["method"], route_template(scope, root_path)
        key = (method, route, seen.status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (self.metrics.http_requests.labels(method, route, str(seen.status)),
                                          self.metrics.http_duration.labels(method, route))
        series[0].inc()
        series[1].observe(seconds)
        if not route.startswith("/v2/") or not 200 <= seen.status < 300:
            return  # only answered requests name a project that exists: the label stays bounded
        name = scope.get("path_params", {}).get("name")
        if not name:
            return
        project, metrics = project_of(name), self.metrics
        if "/blobs/" in route:
            if seen.received:
                self._of_project(metrics.blob_bytes_received, project).inc(seen.received)
            if method == "GET" and seen.sent:
                self._of_project(metrics.blob_bytes_sent, project).inc(seen.sent)
        elif "/manifests/" in route:
            if method == "PUT":
                self._of_project(metrics.manifest_pushes, project).inc()
            elif method == "GET":
                self._of_project(metrics.manifest_pulls, project).inc()

    def _of_project(self, counter, project: str):
        key = (id(counter), project)
        child = self._by_project.get(key)
        if child is None:
            child = self._by_project[key] = counter.labels(project)
        return child


class _Transfer:
    __slots__ = ("status", "received", "sent")

    def __init__(self) -> None:
        self.status = 0
        self.received = 0
        self.sent = 0


def route_template(scope: Scope, root_path: str = "") -> str:
    """The path template of the route that took the request (`/v2/{name:path}/blobs/{digest}`),
    with the prefix of the mounts it went through (`/scanner/api/v1/metadata`; a mounted app
    without routes of its own, as the UI's static files: `/ui/static/{path}`); UNMATCHED when
    none took it."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    mounted = scope.get("root_path", "")[len(root_path):]  # the mounts' paths, the last one included
    if isinstance(route, Mount):
        return f"{mounted}/{{path}}"
    return mounted + route.path


async def get_metrics(request: Request) -> Response:
    """GET /metrics on the main port."""
    services = request.app.state.services
    if services.settings.metrics.require_auth:
        principal = await run_in_threadpool(authenticate, request)
        if principal.is_anonymous:
            raise Problem(401, "unauthenticated", "authentication required", {},
                          {"WWW-Authenticate": 'Basic realm="portlog"'})
        if not principal.system_admin:
            raise Problem(403, "forbidden", "metrics are for system administrators "
                                            "(or set metrics.port for an unauthenticated scrape)")
    return await exposition(services.metrics)


async def exposition(metrics: Metrics) -> Response:
    body = await run_in_threadpool(metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE)


class MetricsPort:
    """The separate `metrics.port`: GET /metrics without credentials, on its own small HTTP server
    (a thread), so that Prometheus needs no password and the port can stay on a private address.
    With several worker processes one of them binds it (the others retry every few seconds, so
    another takes over when that one is replaced); in multiprocess mode any one of them sees all."""

    RETRY_SECONDS = 5.0

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics, self.address = metrics, (host, port)
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread = threading.Thread(target=self._run, name="portlog-metrics-port", daemon=True)

    @classmethod
    def started(cls, services) -> MetricsPort | None:
        """The port of the settings, serving; None when metrics are off or no port is set."""
        settings = services.settings.metrics
        if services.metrics is None or not settings.port:
            return None
        port = cls(services.metrics, settings.host, settings.port)
        port._thread.start()
        return port

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._server = ThreadingHTTPServer(self.address, _handler(self.metrics))
            except OSError as error:
                log.debug("metrics port %s:%d not bound (%s); retrying", *self.address, error)
                self._stop.wait(self.RETRY_SECONDS)
                continue
            log.info("metrics on http://%s:%d/metrics", *self.address)
            self._server.serve_forever(poll_interval=0.5)
            return


def _handler(metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            try:
                body = metrics.exposition()
            except Exception as error:  # the read models unreachable (a restart, a failover): try again
                log.warning("metrics scrape failed: %s: %s", type(error).__name__, error)
                self.send_error(503)
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # scrapes every few seconds: not worth a line each
            pass

    return Handler
