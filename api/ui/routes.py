"""The web UI: a small single-page application shipped as static files (api/ui/static, no
build step), talking to the same Harbor and management APIs as every other client, so the
UI can never allow what the API refuses. Every path under /ui/ serves the page shell; the
browser-side router (static/js/app.js) draws the page the path names."""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from api.harbor.users import user_json
from api.management.common import json_response
from api.oidc import oidc_routes
from api.sessions import SESSION_COOKIE, log_out, login, login_options, session_user
from api.tokens import InvalidTokenError

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


async def shell(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)


async def home(request: Request) -> Response:
    return RedirectResponse("/ui/projects", status_code=302)


async def session(request: Request) -> Response:
    """Who the session belongs to (as Harbor's /users/current shows them), or null: no session,
    or one that has ended. The page asks here, where an anonymous visitor is no error; Harbor's
    /api/v2.0/users/current keeps answering them 401."""
    services = request.app.state.services
    row = await run_in_threadpool(_session_row, services, request.cookies.get(SESSION_COOKIE, ""))
    # `follows`: the leader of a follower (the page then shows its position, GET /api/v1/follow)
    answer = {**user_json(row), "follows": await run_in_threadpool(lambda: services.follow.leader)} if row else None
    return json_response(answer, headers={"Cache-Control": "no-store"})


def _session_row(services, cookie: str):
    try:
        principal = session_user(services.access, services.tokens.verify_session(cookie))
    except InvalidTokenError:
        return None
    return services.access.user(principal.name) if principal else None


def ui_routes() -> list:
    return [
        Route("/", home, methods=["GET"]),
        Route("/c/login", login, methods=["POST"]),
        Route("/c/login/options", login_options, methods=["GET"]),
        Route("/c/log_out", log_out, methods=["GET", "POST"]),
        Route("/c/session", session, methods=["GET"]),
        *oidc_routes(),
        # Compressed here only: a global middleware would also gzip blob downloads.
        Mount("/ui/static", GZipMiddleware(StaticFiles(directory=STATIC), minimum_size=1024), name="ui-static"),
        Route("/ui", home, methods=["GET"]),
        Route("/ui/{path:path}", shell, methods=["GET"]),
    ]
