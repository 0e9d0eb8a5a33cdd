"""GET /service/token — the Docker token service (POST, the OAuth2 grants: api/oauth_token.py).

Accepts Basic credentials (users and robots) or none (anonymous), and `scope` parameters;
answers {"token", "access_token", "expires_in", "issued_at", "scope"} holding only the scopes
the principal really has. Asked with credentials, a repository scope is answered with every
action the account holds on that repository, not only those asked: clients such as oras-py
keep their first token for the whole session (docs/access-control.md). Anonymous callers get
only what they ask and hold. Bad credentials: 401; too many failures: 429 with Retry-After.
"""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
from starlette.requests import Request
from starlette.responses import Response

from api.auth import real_repository
from api.authn import client_address, parse_basic
from api.errors import UNAUTHORIZED, OciError
from api.tokens import Scope, parse_scopes
from domain.errors import AuthenticationError, NameInvalidError, TooManyAttemptsError
from domain.names import check_name
from domain.permissions import ANONYMOUS, Principal, project_of, repository_actions, system_permissions


def get_token(request: Request) -> Response:
    return _issue(request, parse_basic_or_401(request), request.query_params.getlist("scope"))


def parse_basic_or_401(request: Request) -> tuple[str, str] | None:
    try:
        return parse_basic(request.headers.get("authorization"))
    except AuthenticationError as error:
        raise _unauthorized(error.message) from None


def _issue(request: Request, credentials: tuple[str, str] | None, scope_values: list[str]) -> Response:
    services = request.app.state.services
    principal = _login(services, request, credentials)
    body = token_body(services, principal, scope_values, every_held=credentials is not None)
    if request.query_params.get("offline_token", "").lower() == "true" and not principal.is_anonymous:
        refresh = refresh_token_for(services, principal, request.query_params.get("client_id", ""))
        if refresh is not None:
            body["refresh_token"] = refresh
    return token_response(body)


def token_body(services, principal: Principal, scope_values: list[str], every_held: bool = False) -> dict:
    """A new access token for the scopes asked that the principal really has; with
    `every_held`, each repository asked for with all the actions the principal holds there."""
    scopes = parse_scopes(scope_values)
    granted = [scope for scope in (_grant(services, principal, s, every_held) for s in scopes) if scope]
    token, lifetime = services.tokens.issue(principal.name, granted, anonymous=principal.is_anonymous)
    return {"token": token, "access_token": token, "expires_in": lifetime,
            "issued_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "scope": " ".join(str(scope) for scope in granted)}


def refresh_token_for(services, principal: Principal, client_id: str) -> str | None:
    """A refresh token for an authenticated account (`offline_token=true` here, OAuth2's
    `access_type=offline`), bound to its current password or robot secret; None for a directory
    account (clients then keep the password, and each token request asks the directory again)."""
    credential = services.authenticator.credential(principal.name)
    return None if credential is None else services.tokens.issue_refresh(principal.name, credential, client_id)


def token_response(body: dict, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Tokens are never cached on the way (RFC 6749 5.1); OAuth2 errors are answered so too."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})})


def _login(services, request: Request, credentials: tuple[str, str] | None) -> Principal:
    if credentials is None:
        return ANONYMOUS
    try:
        return services.authenticator.login(*credentials, source=client_address(request))
    except AuthenticationError as error:
        raise _unauthorized(error.message) from None
    except TooManyAttemptsError as error:
        raise OciError.from_domain(error) from None


def _grant(services, principal: Principal, scope: Scope, every_held: bool) -> Scope | None:
    if scope.type == "registry" and scope.name == "catalog":
        return scope if ("catalog", "read") in system_permissions(principal) else None
    if scope.type != "repository":
        return None
    try:
        name = check_name(real_repository(scope.name))
    except NameInvalidError:
        return None
    project = services.access.project(project_of(name))
    if project is None:
        return None
    held = repository_actions(principal, project.name, project.public, name)
    if name != scope.name:  # as-of/<moment>/<repository>: pull of the real repository, nothing else
        held &= {"pull"}
    wanted = held if every_held or "*" in scope.actions else set(scope.actions)
    actions = tuple(sorted(held & wanted))
    return Scope(scope.type, scope.name, actions) if actions else None


def _unauthorized(message: str) -> OciError:
    return OciError(UNAUTHORIZED, message=message, headers={"WWW-Authenticate": 'Basic realm="portlog"'})
