"""What every management handler shares: the principal, permission checks, JSON in and out,
page/page_size pagination with X-Total-Count and Link."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from urllib.parse import urlencode

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api.authn import client_address, parse_basic
from api.management.problems import Problem
from api.request_input import MAX_BIGINT, check_json_numbers, parse_int
from api.sessions import SESSION_COOKIE, session_principal
from api.tokens import InvalidTokenError, is_anonymous
from domain.context import RequestContext
from domain.errors import AuthenticationError
from domain.permissions import (
    ANONYMOUS,
    MATRIX,
    Principal,
    Role,
    permissions_beyond,
    project_permissions,
    system_permissions,
)
from projections.database import as_utc

MAX_PAGE_SIZE = 100


@dataclass
class Call:
    """One management request, resolved: who asks, and what they sent."""

    request: Request
    principal: Principal
    body: object

    @property
    def services(self):
        return self.request.app.state.services

    @property
    def context(self) -> RequestContext:
        return RequestContext(self.principal.name, self.request.state.request_id,
                              client_address(self.request))

    def param(self, name: str) -> str:
        return self.request.path_params[name]

    def require_system(self, resource: str, action: str) -> None:
        if (resource, action) not in system_permissions(self.principal):
            raise self._refusal(f"{resource}:{action}")

    def require_project_creation(self) -> None:
        """Signed-in users create projects, unless `project_creation_restriction` is adminonly."""
        self.require_system("project", "create")
        if not self.principal.system_admin and \
                self.services.configuration().project_creation_restriction == "adminonly":
            raise self._refusal("project:create (project_creation_restriction is adminonly)")

    def require_project(self, project: str, resource: str, action: str, repository: str | None = None) -> None:
        """`repository`: a grant on that repository alone counts too."""
        row = self.services.access.project(project)
        if row is None:
            if self.principal.system_admin or self.principal.grants.get(project):
                raise Problem(404, "not-found", f"project {project} not found", {"project": project})
            raise self._refusal(f"{resource}:{action}", project)
        if (resource, action) not in project_permissions(self.principal, project, row.public, repository):
            raise self._refusal(f"{resource}:{action}", project)

    def require_robot_management(self, project: str | None, action: str) -> None:
        """Project robots are managed within their project, system robots system-wide."""
        if project is None:
            self.require_system("robot", action)
        else:
            self.require_project(project, "robot", action)

    def require_grantable(self, permissions: list[dict]) -> None:
        """A robot's (checked) permissions, or a role's, stay within those of whoever grants them."""
        beyond = permissions_beyond(self.principal, permissions)
        if beyond:
            names = ", ".join(f"{p['project']}:{p['resource']}:{p['action']}" for p in beyond)
            raise Problem(403, "forbidden", f"{self.principal.name} does not hold {names}: one grants, and "
                          "changes robots holding, only what one holds oneself", {"permissions": beyond})

    def require_role_grantable(self, project: str, role: Role) -> None:
        self.require_grantable([{"project": project, "resource": resource, "action": action}
                                for resource, action in sorted(MATRIX[role])])

    def require_robot_editable(self, robot: str, permissions: list[dict], expires_at: datetime | None) -> None:
        """No robot changes itself (permissions, secret, disabling), and only a principal holding
        every permission of a robot, and (a robot) living as long, changes it."""
        if self.principal.kind == "robot" and self.principal.name == robot:
            raise Problem(403, "forbidden", "a robot account cannot change itself", {"robot": robot})
        self.require_grantable(permissions)
        self.require_outlived(expires_at)

    def require_outlived(self, expires_at: datetime | None) -> None:
        """A robot creates or changes only robots expiring no later than itself (None: never,
        which only a robot that never expires may give); users are not bounded so."""
        if self.principal.kind != "robot":
            return
        own = self.services.access.robot(self.principal.name)
        if own is None:  # deleted since it authenticated
            raise Problem(401, "unauthenticated", "the principal no longer exists")
        if own.expires_at is None:
            return
        limit = as_utc(own.expires_at)
        if expires_at is None or as_utc(expires_at) > limit:
            raise Problem(403, "forbidden", f"{self.principal.name} expires at {limit.isoformat()}: a robot creates "
                          "and changes only robots that expire no later than itself", {"expires_at": limit.isoformat()})

    def can_project(self, project: str, resource: str, action: str) -> bool:
        try:
            self.require_project(project, resource, action)
            return True
        except Problem:
            return False

    def require_outbound(self, url: str) -> None:
        """A 400 for an address outbound connections may not reach (adapters/outbound.py)."""
        refusal = self.services.outbound.refusal_of(url) if isinstance(url, str) else None
        if refusal:
            raise Problem(400, "outbound-refused", refusal, {"url": url})

    def settle(self, position: int | None) -> None:
        self.services.projections.wait_for(position)

    def _refusal(self, permission: str, project: str | None = None) -> Problem:
        extra = {"permission": permission, **({"project": project} if project else {})}
        if self.principal.is_anonymous:
            return Problem(401, "unauthenticated", "authentication required", extra,
                           {"WWW-Authenticate": 'Basic realm="portlog"'})
        return Problem(403, "forbidden", f"{self.principal.name} may not {permission}", extra)


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body, default=str, option=orjson.OPT_NAIVE_UTC), status_code=status,
                    media_type="application/json", headers=headers)


def page_params(request: Request) -> tuple[int, int]:
    # Pages beyond this would start past the largest row offset a database takes.
    page = parse_int(request.query_params.get("page", "1"), "page", minimum=1, maximum=MAX_BIGINT // MAX_PAGE_SIZE)
    size = parse_int(request.query_params.get("page_size", "10"), "page_size", minimum=1)
    return page, min(size, MAX_PAGE_SIZE)


def paged(request: Request, items: list, total: int, page: int, size: int,
          link_separator: str = ", ") -> Response:
    """One page with X-Total-Count and Link (prev, next); Harbor separates links with " , "."""
    headers = {"X-Total-Count": str(total)}
    links = []
    if page > 1:
        links.append(f'<{_page_url(request, page - 1, size)}>; rel="prev"')
    if page * size < total:
        links.append(f'<{_page_url(request, page + 1, size)}>; rel="next"')
    if links:
        headers["Link"] = link_separator.join(links)
    return json_response(items, headers=headers)


def _page_url(request: Request, page: int, size: int) -> str:
    return url_with(request, page=page, page_size=size)


def url_with(request: Request, **changes) -> str:
    """This request's path and query, with `changes` replacing those parameters (put last)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    return request.url.path + "?" + urlencode(params + list(changes.items()))


def endpoint(handler: Callable[[Call], Response], anonymous: bool = False):
    """Wraps a synchronous handler: authenticates (Basic or Bearer) before reading any body,
    parses JSON (capped by api/middleware.py), runs it in the thread pool. `anonymous` lets
    unauthenticated callers in (the handler decides). A handler with an `authorize` attribute
    has it run (on the call without its body) before the body is read."""
    authorize = getattr(handler, "authorize", None)

    async def run(request: Request) -> Response:
        principal = await run_in_threadpool(_principal, request)
        if authorize is not None:
            await run_in_threadpool(authorize, Call(request, principal, None))
        body = None
        if request.method in ("POST", "PUT", "PATCH"):
            raw = await request.body()
            try:
                body = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError as error:
                raise Problem(400, "malformed-json", f"request body is not valid JSON: {error}") from None
            check_json_numbers(body)
        return await run_in_threadpool(handler, Call(request, principal, body))

    def _principal(request: Request) -> Principal:
        principal = authenticate(request)
        request.state.user = None if principal.is_anonymous else principal.name  # the access line's
        if principal.is_anonymous and not anonymous:
            raise Problem(401, "unauthenticated", "authentication required", {},
                          {"WWW-Authenticate": 'Basic realm="portlog"'})
        return principal

    run.__name__ = handler.__name__
    run.__doc__ = inspect.getdoc(handler)
    return run


def authenticate(request: Request) -> Principal:
    services = request.app.state.services
    header = request.headers.get("authorization")
    if header and header[:7].lower() == "bearer ":
        try:
            claims = services.tokens.verify(header[7:].strip())
        except InvalidTokenError as error:
            raise Problem(401, "unauthenticated", f"invalid token: {error}") from None
        if is_anonymous(claims):
            return ANONYMOUS
        principal = services.authenticator.principal_named(claims["sub"])
        if principal is None:
            raise Problem(401, "unauthenticated", "the token's principal no longer exists")
        return principal
    try:
        credentials = parse_basic(header)
    except AuthenticationError as error:
        raise Problem.from_domain(error) from None
    if credentials is None:
        return session_principal(request) if SESSION_COOKIE in request.cookies else ANONYMOUS
    return services.authenticator.login(*credentials, source=client_address(request))


def field(body: object, name: str, kind: type | tuple, required: bool = True, default=None):
    if not isinstance(body, dict):
        raise Problem(422, "invalid-input", "request body must be a JSON object")
    if name not in body or body[name] is None:
        if required:
            raise Problem(422, "invalid-input", f"field '{name}' is required", {"field": name})
        return default
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Problem(422, "invalid-input", f"field '{name}' has the wrong type", {"field": name})
    return value
