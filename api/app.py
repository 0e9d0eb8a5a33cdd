"""The Starlette application: routes, error rendering, and the background workers' lifetime."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from api import health, logs
from api.access_log import AccessLogMiddleware
from api.errors import ErrorCode, OciError, error_response, render_oci_error
from api.harbor.common import PREFIX as HARBOR_PREFIX
from api.harbor.common import harbor_error, render_harbor_error
from api.harbor.routes import harbor_routes
from api.management.problems import Problem, problem_response, render_problem
from api.management.routes import management_routes
from api.metrics import MetricsMiddleware, MetricsPort, get_metrics
from api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from api.oauth_token import post_token
from api.read_only import FollowerWriteGuard
from api.request_input import InputError
from api.token_service import get_token
from api.ui.routes import ui_routes
from api.v2.routes import v2_routes
from background import runner
from config.bootstrap import Services, bootstrap, register_built_in_scanner
from config.settings import Settings
from domain.errors import RegistryError, StorageUnavailableError

log = logging.getLogger("portlog")
SUPERVISOR_CHECK_SECONDS = 0.5
# After asking itself to stop, a worker whose graceful shutdown hangs (a request that never ends)
# exits anyway: nothing is left to restart or stop it.
ORPHAN_EXIT_SECONDS = 30


def app_from_environment() -> Starlette:
    """A worker process's application (`portlog serve --workers N`): settings from PORTLOG_*."""
    # uvicorn's supervisor, as multiprocessing recorded it when spawning this worker: right even if
    # it was killed before this factory runs (os.getppid() would name the new parent then).
    supervisor = multiprocessing.parent_process()
    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.log_format, settings.log_levels)
    if supervisor is not None:
        threading.Thread(target=_stop_when_orphaned, args=(supervisor.pid,), name="supervisor-watch",
                         daemon=True).start()
    return create_app(bootstrap(settings), owns_services=True)


def _stop_when_orphaned(supervisor: int) -> None:
    """Stops this worker once the `portlog serve` process that started it is gone. uvicorn's
    supervisor stops its workers when it is stopped, but a SIGKILLed one cannot: its workers would
    serve on, holding the port and the data directory. SIGTERM runs uvicorn's graceful shutdown,
    and with it the lifespan's end (background workers stopped, connections closed)."""
    while os.getppid() == supervisor:
        time.sleep(SUPERVISOR_CHECK_SECONDS)
    log.warning("the serve process %d is gone: worker %d stops", supervisor, os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(ORPHAN_EXIT_SECONDS)
    os._exit(1)


def create_app(services: Services, owns_services: bool = False) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if services.scanners is not None and not services.follow.following():
            register_built_in_scanner(services, serving=True)
        stop_workers = runner.start(services)
        metrics_port = MetricsPort.started(services)
        try:
            yield
        finally:
            if metrics_port is not None:
                metrics_port.stop()
            stop_workers()
            if owns_services:
                services.close()
            if services.metrics and services.metrics.multiprocess_dir:
                _forget_process_gauges()

    app = Starlette(
        routes=[
            Route("/livez", health.livez, methods=["GET"]),
            Route("/readyz", health.readyz, methods=["GET"]),
            Route("/service/token", get_token, methods=["GET"]),
            Route("/service/token", post_token, methods=["POST"]),
            *([Route("/metrics", get_metrics, methods=["GET"])] if services.metrics else []),
            *v2_routes(),
            *management_routes(),
            *harbor_routes(),
            *ui_routes(),
            *([Mount("/scanner", app=services.scanner_adapter.app)] if services.scanner_adapter else []),
        ],
        middleware=[*_tracing_middleware(services),
                    *([Middleware(AccessLogMiddleware)] if services.settings.access_log else []),
                    *([Middleware(MetricsMiddleware, metrics=services.metrics)] if services.metrics else []),
                    Middleware(RequestIdMiddleware),
                    Middleware(BodyLimitMiddleware, max_bytes=services.settings.max_body_bytes,
                               idle_seconds=services.settings.body_timeout_seconds),
                    Middleware(FollowerWriteGuard)],
        exception_handlers={
            OciError: render_oci_error,
            RegistryError: _render_domain_error,
            **{error: _render_unavailable for error in services.unavailable_errors},
            Problem: render_problem,
            InputError: _render_input_error,
            ClientDisconnect: _client_gone,
        },
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.readiness = health.Readiness()
    return app


def _forget_process_gauges() -> None:
    """A worker that ends takes its live gauges out of the multiprocess files (prometheus_client
    otherwise keeps reporting them)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid())


def _tracing_middleware(services: Services) -> list[Middleware]:
    """The request spans, only when tracing is on: otherwise nothing of it is even imported."""
    if services.tracing is None:
        return []
    from api.tracing import TracingMiddleware

    return [Middleware(TracingMiddleware, tracing=services.tracing)]


async def _render_domain_error(request: Request, exc: Exception) -> Response:
    """Domain errors speak the protocol of the API they came through."""
    if request.url.path.startswith(HARBOR_PREFIX + "/"):
        return await render_harbor_error(request, exc)
    if request.url.path.startswith("/api/"):
        return await render_problem(request, exc)
    return await render_oci_error(request, exc)


async def _render_input_error(request: Request, exc: InputError) -> Response:
    """Malformed, oversized or stalled input, in the format of the API it came through; after a
    body was cut short the connection cannot be reused."""
    headers = {"Connection": "close"} if exc.status in (408, 413) else None
    if request.url.path.startswith(HARBOR_PREFIX + "/"):
        return harbor_error(exc.status, exc.message, headers)
    if request.url.path.startswith(("/api/", "/c/")):
        # The management API has always answered well-formed JSON with invalid values with 422.
        status, kind = (422, "invalid-input") if exc.status == 400 else (exc.status, exc.kind)
        return problem_response(request, Problem(status, kind, exc.message, headers=headers))
    return error_response(OciError(ErrorCode(exc.oci_code, exc.message, exc.status), headers=headers),
                          request.method)


async def _render_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    error = StorageUnavailableError("the database is unavailable; try again", {"reason": type(exc).__name__})
    return await _render_domain_error(request, error)


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=400)
