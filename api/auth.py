"""The one authorizer every /v2/ route goes through, and the checks behind it.

Clients authenticate with a Bearer token from `/service/token` (Docker token auth) or with
Basic credentials; anonymous requests may pull from public projects. A request the token
does not cover gets a 401 challenge naming the scope, so the client fetches a new token;
an authenticated principal who really lacks the permission gets 403 DENIED.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from api.authn import Authenticator, client_address, parse_basic
from api.errors import DENIED, UNAUTHORIZED, OciError
from api.sessions import SAFE_METHODS, SESSION_COOKIE, session_user
from api.tokens import SERVICE, InvalidTokenError, TokenIssuer, granted_actions, is_anonymous
from domain.as_of import split_as_of_name
from domain.errors import AuthenticationError, NameUnknownError, TooManyAttemptsError
from domain.permissions import ANONYMOUS, Principal, project_of, repository_actions, system_permissions
from domain.pull_checks import SCANNER_PULL
from projections.access import AccessView


@dataclass(frozen=True)
class Access:
    """What a request needs, in Docker token scope terms: `repository:team/app:pull`."""

    resource_type: str
    name: str
    action: str

    def challenge_scope(self) -> str:
        actions = "pull,push" if self.action == "push" else self.action
        return f"{self.resource_type}:{self.name}:{actions}"


class RegistryAuthorizer:
    def __init__(self, authenticator: Authenticator, tokens: TokenIssuer, access: AccessView) -> None:
        self.authenticator = authenticator
        self.tokens = tokens
        self.access = access

    def authorize(self, request: Request, access: Access | None) -> str:
        """Returns the principal's name, or raises OciError (UNAUTHORIZED, DENIED)."""
        header = request.headers.get("authorization")
        if header and header[:7].lower() == "bearer ":
            return self._bearer(request, header[7:].strip(), access)
        principal = self._basic(request, header)
        if access is None:
            if principal.is_anonymous:
                raise challenge(request, None)
            return principal.name
        if self.allows(principal, access):
            return principal.name
        if principal.is_anonymous:
            raise challenge(request, access)
        raise denied(access)

    def can(self, request: Request, access: Access) -> bool:
        try:
            self.authorize(request, access)
            return True
        except (OciError, NameUnknownError):
            return False

    def allows(self, principal: Principal, access: Access) -> bool:
        if access.resource_type == "registry":
            return ("catalog", "read") in system_permissions(principal)
        name = real_repository(access.name)
        if name != access.name and access.action != "pull":
            return False  # the view of a past moment is read-only
        project = self.access.project(project_of(name))
        if project is None:
            if principal.is_anonymous:
                return False
            raise NameUnknownError(f"project {project_of(name)} not found", {"project": project_of(name)})
        return access.action in repository_actions(principal, project.name, project.public, name)

    def _bearer(self, request: Request, token: str, access: Access | None) -> str:
        try:
            claims = self.tokens.verify(token)
        except InvalidTokenError as error:
            raise challenge(request, access, error="invalid_token", detail=str(error)) from None
        name = claims["sub"]
        if access is None:
            return name
        granted = granted_actions(claims, access.resource_type, access.name)
        if access.action in granted or "*" in granted:
            # A scan job's token (only Portlog issues that action): no pull policy refuses it.
            request.state.scanner_pull = SCANNER_PULL in granted
            return name
        principal = ANONYMOUS if is_anonymous(claims) else self.authenticator.principal_named(name)
        if principal is not None and not principal.is_anonymous and not self.allows(principal, access):
            raise denied(access)
        raise challenge(request, access, error="insufficient_scope")

    def _basic(self, request: Request, header: str | None) -> Principal:
        try:
            credentials = parse_basic(header)
            if credentials is None:
                return self._session(request)
            return self.authenticator.login(*credentials, source=client_address(request))
        except AuthenticationError as error:
            raise challenge(request, None, error="invalid_credentials", detail=error.message) from None
        except TooManyAttemptsError as error:
            raise OciError.from_domain(error) from None


    def _session(self, request: Request) -> Principal:
        """The web UI reads manifests, configs and referrers through /v2/ with its session
        cookie: for reading only, so no change ever rides on a cookie here."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is None or request.method not in SAFE_METHODS:
            return ANONYMOUS
        try:
            claims = self.tokens.verify_session(cookie)
        except InvalidTokenError:
            return ANONYMOUS
        principal = session_user(self.access, claims)
        if principal is None:
            return ANONYMOUS
        request.state.web_ui = True  # the UI viewing an artifact: no pull (api/v2/manifests.py)
        return principal


def real_repository(name: str) -> str:
    """The repository a scope's name stands for: `as-of/<moment>/<repository>` (the view of a
    past moment, domain/as_of.py) stands for <repository>; any other name for itself."""
    virtual = split_as_of_name(name)
    return name if virtual is None else virtual[1]


def token_realm(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}/service/token"


def challenge(request: Request, access: Access | None, error: str | None = None,
              detail: object = None) -> OciError:
    parts = [f'realm="{token_realm(request)}"', f'service="{SERVICE}"']
    if access is not None:
        parts.append(f'scope="{access.challenge_scope()}"')
    if error:
        parts.append(f'error="{error}"')
    detail = detail if access is None else {"scope": access.challenge_scope(), "reason": detail or error}
    return OciError(UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer " + ",".join(parts)})


def denied(access: Access) -> OciError:
    return OciError(DENIED, {"scope": access.challenge_scope()},
                    message=f"requested access to the resource is denied: {access.challenge_scope()}")
