"""Web UI sessions, on Harbor's paths: `POST /c/login` (form fields `principal`, `password`)
sets an HttpOnly `sid` cookie; `GET /c/log_out` clears it (`GET /c/session`, which says who is
signed in, is in api/ui/routes.py); `GET /c/login/options` tells the login page how people log in.

The cookie is a signed token for the UI audience only (api/tokens.py), so it is never a
bearer token for /v2/ or the APIs. A cookie-authenticated request that changes something
must echo the session's CSRF value (the readable `__csrf` cookie) in `X-Harbor-CSRF-Token`,
as Harbor's UI does; with SameSite=Strict on both cookies, another site can neither send the
session nor read the value. A session names a digest of the user's password hash: changing the
password ends every session opened with the old one, and logging out revokes the session for every
worker and node (adapters/revoked_tokens.py): a cookie copied before is refused after."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.authn import client_address, credential_of
from api.management.problems import Problem
from api.tokens import InvalidTokenError, is_anonymous
from domain.configuration import OIDC_AUTH
from domain.errors import AuthenticationError, TooManyAttemptsError
from domain.permissions import Principal
from projections.access import AccessView

SESSION_COOKIE = "sid"
CSRF_COOKIE = "__csrf"
CSRF_HEADER = "X-Harbor-CSRF-Token"
SESSION_SECONDS = 8 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 16 * 1024


def session_principal(request: Request) -> Principal:
    """The principal of a request that carries a session cookie and no Authorization header."""
    services = request.app.state.services
    try:
        claims = services.tokens.verify_session(request.cookies[SESSION_COOKIE])
    except InvalidTokenError:
        raise Problem(401, "unauthenticated", "the session has ended; log in again") from None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), str(claims.get("csrf", "")).encode()):
            raise Problem(403, "forbidden", f"a change through a session needs the {CSRF_HEADER} header")
    principal = session_user(services.access, claims)
    if principal is None:
        raise Problem(401, "unauthenticated", "the session has ended (the user or the password changed)")
    return principal


def session_user(access: AccessView, claims: dict) -> Principal | None:
    """The session's user, unless deleted or their password changed since it was opened."""
    row = None if is_anonymous(claims) else access.user(claims["sub"])
    if row is None or not hmac.compare_digest(str(claims.get("credential", "")), credential_of(row.password_hash)):
        return None
    return access.user_principal(row)


async def login(request: Request) -> Response:
    """An HTML form's fields (application/x-www-form-urlencoded), as Harbor's UI sends them."""
    form = parse_qs((await small_body(request)).decode("utf-8", "replace"))
    username, password = form.get("principal", [""])[0], form.get("password", [""])[0]
    if not username or not password:
        raise Problem(400, "bad-request", "principal and password are required")
    services = request.app.state.services
    try:
        principal = await run_in_threadpool(services.authenticator.login, username, password,
                                            client_address(request))
    except (AuthenticationError, TooManyAttemptsError) as error:
        raise Problem.from_domain(error) from None
    if principal.kind != "user":
        raise Problem(403, "forbidden", "robot accounts cannot sign in to the web interface")
    response = JSONResponse({"username": principal.name, "sysadmin_flag": principal.system_admin})
    start_session(request, response, principal.name)
    return response


def start_session(request: Request, response: Response, username: str) -> None:
    """Sets the session and CSRF cookies of a user who has just proved who they are (here, or
    through an OpenID Connect provider: api/oidc.py)."""
    services = request.app.state.services
    csrf = secrets.token_urlsafe(18)
    token = services.tokens.issue_session(username, SESSION_SECONDS, csrf,
                                          credential_of(services.access.user(username).password_hash))
    secure = is_secure(request)
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_SECONDS, path="/", httponly=True,
                        samesite="strict", secure=secure)
    response.set_cookie(CSRF_COOKIE, csrf, max_age=SESSION_SECONDS, path="/", samesite="strict",
                        secure=secure)


def is_secure(request: Request) -> bool:
    """Whether cookies set now should be sent over HTTPS only."""
    external_url = request.app.state.services.settings.external_url or ""
    return request.url.scheme == "https" or external_url.startswith("https:")


async def small_body(request: Request, limit: int = MAX_FORM_BYTES) -> bytes:
    """A login step's body, refused (413) as soon as it passes `limit` bytes."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, "payload-too-large", f"this body is at most {limit} bytes")
    return body


async def log_out(request: Request) -> Response:
    await run_in_threadpool(_revoke, request)
    response = Response(status_code=200)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict")
    return response


def _revoke(request: Request) -> None:
    tokens = request.app.state.services.tokens
    try:
        tokens.revoke(tokens.verify_session(request.cookies.get(SESSION_COOKIE, "")))
    except InvalidTokenError:
        pass  # no session, or one that has ended already


async def login_options(request: Request) -> Response:
    """What the anonymous login page needs to know: the authentication mode and the OpenID Connect
    provider's display name (its "Log in via …" button). Nothing else of the configuration."""
    cfg = await run_in_threadpool(request.app.state.services.configuration)
    return JSONResponse({"auth_mode": cfg.auth_mode, "oidc_name": cfg.oidc_name if cfg.auth_mode == OIDC_AUTH else ""},
                        headers={"Cache-Control": "no-store"})
