"""The Starlette application: routes, error rendering, and the background workers' lifetime."""

from __future__ import annotations

import contextlib
import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from api import logs, workers
from api.bootstrap import Services, bootstrap
from api.errors import OciError, render_oci_error
from api.harbor.common import PREFIX as HARBOR_PREFIX
from api.harbor.common import render_harbor_error
from api.harbor.routes import harbor_routes
from api.management.problems import Problem, render_problem
from api.management.routes import management_routes
from api.middleware import RequestIdMiddleware
from api.oauth_token import post_token
from api.settings import Settings
from api.token_service import get_token
from api.ui.routes import ui_routes
from api.v2.routes import v2_routes
from domain.errors import RegistryError, StorageUnavailableError

log = logging.getLogger("portlog")


def app_from_environment() -> Starlette:
    """A worker process's application (`portlog serve --workers N`): settings from PORTLOG_*."""
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    return create_app(bootstrap(settings), owns_services=True)


def create_app(services: Services, owns_services: bool = False) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        stop_workers = workers.start(services)
        try:
            yield
        finally:
            stop_workers()
            if owns_services:
                services.close()

    app = Starlette(
        routes=[
            Route("/service/token", get_token, methods=["GET"]),
            Route("/service/token", post_token, methods=["POST"]),
            *v2_routes(),
            *management_routes(),
            *harbor_routes(),
            *ui_routes(),
        ],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={
            OciError: render_oci_error,
            RegistryError: _render_domain_error,
            **{error: _render_unavailable for error in services.unavailable_errors},
            Problem: render_problem,
            ClientDisconnect: _client_gone,
        },
        lifespan=lifespan,
    )
    app.state.services = services
    return app


async def _render_domain_error(request: Request, exc: Exception) -> Response:
    """Domain errors speak the protocol of the API they came through."""
    if request.url.path.startswith(HARBOR_PREFIX + "/"):
        return await render_harbor_error(request, exc)
    if request.url.path.startswith("/api/"):
        return await render_problem(request, exc)
    return await render_oci_error(request, exc)


async def _render_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    error = StorageUnavailableError("the database is unavailable; try again", {"reason": type(exc).__name__})
    return await _render_domain_error(request, error)


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=400)
