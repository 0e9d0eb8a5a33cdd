"""Web UI login through an OpenID Connect provider, on Harbor's paths:

- `GET /c/oidc/login` sends the browser to the provider (adapters/oidc_provider.py makes the
  authorization URL, with state, nonce and a PKCE verifier). Those three travel in a short signed
  cookie of their own (api/tokens.py, a flow audience), HttpOnly and SameSite=Lax: the provider
  sends the browser back with a top-level GET, which a Strict cookie would miss.
- `GET /c/oidc/callback` revokes that cookie's id before anything else (adapters/revoked_tokens.py:
  a callback cannot be replayed, even one that failed), checks the state, exchanges the code and
  checks the ID token. A user already onboarded (found by `<issuer>|<sub>`) gets a UI session as
  /c/login gives one; a new one is onboarded with the `oidc_user_claim` claim as username when
  `oidc_auto_onboard` is on, else the browser is sent to choose a username.
- `POST /c/oidc/onboard` (`{"username": ...}`) takes that choice, with the onboarding cookie the
  callback set (single use too).

Groups come from the `oidc_groups_claim` claim and are recorded at every login (User.GroupsObserved
when they changed). A CLI secret is made at onboarding: the password for docker/skopeo.
"""

from __future__ import annotations

import hmac
import logging
import threading
from urllib.parse import quote

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from adapters.oidc_provider import (
    AuthorizationRequest,
    OidcConfig,
    OidcProvider,
    OidcProviderError,
    OidcProviderUnavailable,
)
from adapters.outbound import OutboundGuard
from api.authn import client_address
from api.management.problems import Problem
from api.sessions import is_secure, small_body, start_session
from api.tokens import OIDC_ONBOARD_AUDIENCE, OIDC_STATE_AUDIENCE, InvalidTokenError
from domain.configuration import OIDC_AUTH
from domain.context import RequestContext
from domain.errors import RegistryError
from domain.identity import OIDC, ExternalIdentity

log = logging.getLogger("portlog.oidc")

LOGIN_PATH = "/c/oidc/login"
CALLBACK_PATH = "/c/oidc/callback"
ONBOARD_PATH = "/c/oidc/onboard"
STATE_COOKIE = "portlog_oidc_state"   # never the provider's own cookie name: cookies ignore ports
ONBOARD_COOKIE = "portlog_oidc_onboard"
FLOW_SECONDS = 600
AFTER_LOGIN = "/ui/projects"  # where /ui leads (api/ui/routes.py home)
ONBOARD_PAGE = "/ui/oidc-onboard"
DEFAULT_USER_CLAIM = "name"  # Harbor's, when oidc_user_claim is empty
MAX_ONBOARD_BODY = 4096
MAX_GROUPS = 500


# --- the provider, one per configuration (its discovery and keys stay cached) ---

_providers: dict[tuple[OidcConfig, OutboundGuard], OidcProvider] = {}
_providers_lock = threading.Lock()


def provider_for(services) -> OidcProvider:
    cfg = services.configuration()
    if cfg.auth_mode != OIDC_AUTH or not cfg.oidc_endpoint or not cfg.oidc_client_id:
        raise Problem(404, "not-found", "OpenID Connect login is not configured (auth_mode oidc_auth)")
    config = OidcConfig(cfg.oidc_endpoint, cfg.oidc_client_id, cfg.oidc_client_secret or "",
                        OidcConfig.scopes(cfg.oidc_scope or ""), bool(cfg.oidc_verify_cert))
    key = (config, services.outbound)
    with _providers_lock:
        provider = _providers.get(key)
        if provider is None:
            for old in _providers.values():
                old.close()
            _providers.clear()
            provider = _providers[key] = OidcProvider(config, services.outbound)
    return provider


def callback_url(request: Request) -> str:
    """What the provider sends the browser back to (registered there as the client's redirect URI)."""
    base = request.app.state.services.settings.external_url or str(request.base_url)
    return base.rstrip("/") + CALLBACK_PATH


# --- GET /c/oidc/login ---

async def oidc_login(request: Request) -> Response:
    services = request.app.state.services
    redirect_uri = callback_url(request)
    authorization = await run_in_threadpool(_authorization_request, services, redirect_uri)
    cookie = services.tokens.issue_flow(OIDC_STATE_AUDIENCE, "oidc-login", {
        "state": authorization.state, "nonce": authorization.nonce, "verifier": authorization.verifier,
        "redirect_uri": redirect_uri}, FLOW_SECONDS)
    response = RedirectResponse(authorization.url, status_code=302, headers={"Cache-Control": "no-store"})
    _set_flow_cookie(request, response, STATE_COOKIE, cookie)
    return response


def _authorization_request(services, redirect_uri: str) -> AuthorizationRequest:
    try:
        return provider_for(services).authorization_request(redirect_uri)
    except OidcProviderUnavailable as error:
        raise _unavailable(error) from None
    except OidcProviderError as error:
        raise _provider_refusal(error) from None


# --- GET /c/oidc/callback ---

async def oidc_callback(request: Request) -> Response:
    services = request.app.state.services
    flow = await run_in_threadpool(_consume, services, request.cookies.get(STATE_COOKIE, ""), OIDC_STATE_AUDIENCE)
    params = request.query_params
    if not hmac.compare_digest(params.get("state", "").encode(), str(flow.get("state", "")).encode()):
        raise Problem(400, "bad-request", "the state does not match this browser's login; start again")
    if "error" in params:
        raise Problem(401, "unauthenticated", f"the provider refused the login: {_code(params['error'])}")
    code = params.get("code", "")
    if not code:
        raise Problem(400, "bad-request", "the provider sent no authorization code")
    ctx = _context(request)
    outcome = await run_in_threadpool(_complete, services, code, flow, ctx)
    response = RedirectResponse(AFTER_LOGIN, status_code=302, headers={"Cache-Control": "no-store"})
    _clear_flow_cookie(request, response, STATE_COOKIE)
    if isinstance(outcome, str):
        start_session(request, response, outcome)
        return response
    cookie = services.tokens.issue_flow(OIDC_ONBOARD_AUDIENCE, "oidc-onboard", outcome, FLOW_SECONDS)
    response.headers["Location"] = f"{ONBOARD_PAGE}?username={quote(outcome['suggested'], safe='')}"
    _set_flow_cookie(request, response, ONBOARD_COOKIE, cookie)
    return response


def _consume(services, cookie: str, audience: str) -> dict:
    """The flow cookie's values, its id revoked at once: each is good for one callback."""
    try:
        claims = services.tokens.verify_flow(cookie, audience)
    except InvalidTokenError:
        raise Problem(400, "bad-request", "this login has expired or was used already; start again") from None
    services.tokens.revoke(claims)
    return claims


def _complete(services, code: str, flow: dict, ctx: RequestContext) -> str | dict:
    """The username signed in, or (not onboarded yet, and no auto onboarding) what the
    onboarding step needs."""
    provider = provider_for(services)
    request = AuthorizationRequest("", flow["state"], flow["nonce"], flow["verifier"])
    try:
        claims = provider.complete(code, flow["redirect_uri"], request)
    except OidcProviderUnavailable as error:
        raise _unavailable(error) from None
    except OidcProviderError as error:
        log.info("OIDC login refused: %s", error)
        raise Problem(401, "unauthenticated", str(error)) from None
    cfg = services.configuration()
    identity = identity_of(claims, cfg)
    row = services.access.user_by_external_id(OIDC, identity.external_id)
    if row is not None:
        _observe(services, row.username, identity.groups, ctx)
        return row.username
    if not cfg.oidc_auto_onboard:
        return _pending(identity)
    return _onboard(services, identity, ctx)


def identity_of(claims: dict, cfg) -> ExternalIdentity:
    """What Portlog keeps of an ID token: `<issuer>|<sub>`, the username the user claim names,
    email, real name, and the group names of the groups claim."""
    user_claim = cfg.oidc_user_claim or DEFAULT_USER_CLAIM
    return ExternalIdentity(username=_text(claims.get(user_claim)), auth_source=OIDC,
                            external_id=f"{claims['iss']}|{claims['sub']}", email=_text(claims.get("email")),
                            realname=_text(claims.get("name")),
                            groups=tuple(groups_of(claims, cfg.oidc_groups_claim)))


def groups_of(claims: dict, claim: str) -> list[str]:
    if not claim:
        return []
    value = claims.get(claim)
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return sorted({group for group in values if isinstance(group, str) and group})[:MAX_GROUPS]


def _pending(identity: ExternalIdentity) -> dict:
    """The onboarding cookie's values."""
    return {"suggested": identity.username, "external_id": identity.external_id, "email": identity.email,
            "realname": identity.realname, "groups": list(identity.groups)}


def _onboard(services, identity: ExternalIdentity, ctx: RequestContext) -> str:
    """Creates the account, with a CLI secret (docker/skopeo's password), and records its groups."""
    if not identity.username:
        raise Problem(400, "bad-request", "the ID token names no username: the administrator sets "
                                          "oidc_user_claim to a claim the provider sends")
    ctx = RequestContext(identity.username, ctx.request_id, ctx.source)
    try:
        services.projections.wait_for(services.admin.onboard_user(identity, ctx))
        services.projections.wait_for(services.admin.set_cli_secret(identity.username, None, ctx)[1])
    except RegistryError as error:
        raise Problem.from_domain(error) from None
    _observe(services, identity.username, identity.groups, ctx)
    return identity.username


def _observe(services, username: str, groups: tuple[str, ...], ctx: RequestContext) -> None:
    ctx = RequestContext(username, ctx.request_id, ctx.source)
    services.projections.wait_for(services.admin.observe_groups(username, list(groups), ctx))


# --- POST /c/oidc/onboard ---

async def oidc_onboard(request: Request) -> Response:
    services = request.app.state.services
    # The step's cookie is its credential: checked before the body is read.
    pending = await run_in_threadpool(_pending_onboarding, services, request.cookies.get(ONBOARD_COOKIE, ""))
    body = await small_body(request, MAX_ONBOARD_BODY)
    try:
        username = orjson.loads(body).get("username")
    except (orjson.JSONDecodeError, AttributeError):
        username = None
    if not isinstance(username, str) or not username:
        raise Problem(400, "bad-request", 'the body is {"username": "..."}')
    await run_in_threadpool(_onboard_chosen, services, username, pending, _context(request))
    response = JSONResponse({"username": username, "redirect": AFTER_LOGIN})
    _clear_flow_cookie(request, response, ONBOARD_COOKIE)
    start_session(request, response, username)
    return response


def _pending_onboarding(services, cookie: str) -> dict:
    try:
        return services.tokens.verify_flow(cookie, OIDC_ONBOARD_AUDIENCE)
    except InvalidTokenError:
        raise Problem(400, "bad-request", "this login has expired or was used already; start again") from None


def _onboard_chosen(services, username: str, pending: dict, ctx: RequestContext) -> None:
    """The step's cookie stays good after a name that is refused (taken, invalid), so the user
    can choose again; it is revoked once the account exists."""
    if services.access.user_by_external_id(OIDC, pending["external_id"]) is not None:
        raise Problem(409, "conflict", "this provider account is onboarded already; log in again")
    identity = ExternalIdentity(username=username, auth_source=OIDC, external_id=pending["external_id"],
                                email=pending["email"], realname=pending["realname"],
                                groups=tuple(pending["groups"]))
    _onboard(services, identity, ctx)
    services.tokens.revoke(pending)


# --- helpers ---

def _context(request: Request) -> RequestContext:
    return RequestContext("anonymous", getattr(request.state, "request_id", ""), client_address(request))


def _set_flow_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, max_age=FLOW_SECONDS, path="/c/oidc", httponly=True, samesite="lax",
                        secure=is_secure(request))


def _clear_flow_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/c/oidc", httponly=True, samesite="lax", secure=is_secure(request))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _code(value: str) -> str:
    """An OAuth error code as the provider sent it, only if it looks like one."""
    return value[:64] if value.replace("_", "").isalnum() else "unknown error"


def _unavailable(error: OidcProviderUnavailable) -> Problem:
    log.warning("OIDC provider unavailable: %s", error)
    return Problem(503, "service-unavailable", str(error))


def _provider_refusal(error: OidcProviderError) -> Problem:
    log.warning("OIDC provider misconfigured: %s", error)
    return Problem(502, "bad-gateway", str(error))


def oidc_routes() -> list[Route]:
    return [
        Route(LOGIN_PATH, oidc_login, methods=["GET"]),
        Route(CALLBACK_PATH, oidc_callback, methods=["GET"]),
        Route(ONBOARD_PATH, oidc_onboard, methods=["POST"]),
    ]
