"""Every /v2/ route in one table: path, method, handler, and the access it needs.

Each handler runs behind `guarded`: the repository name is validated (NAME_INVALID), then
the one authorizer decides, then the handler runs with a RequestContext (actor, request id).
Paths under /v2/as-of/<moment>/ are the read-only view of a repository at a past moment
(api/v2/as_of.py): no repository route matches there, and they need pull on the real repository.
"""

from __future__ import annotations

import inspect
import re
from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from api.auth import Access
from api.authn import client_address
from api.errors import NOT_FOUND, UNSUPPORTED, OciError
from api.v2 import as_of, base, blobs, catalog, manifests, referrers, tags, uploads
from api.v2.common import proxied, services
from domain.as_of import as_of_name
from domain.context import RequestContext
from domain.names import check_name

NAME = "/v2/{name:path}"
AS_OF = "/v2/as-of/{moment}/{name:path}"
PULL, PUSH, DELETE = "pull", "push", "delete"

ROUTES: list[tuple[str, str, Callable, str | None]] = [
    ("/v2/", "GET", base.get_base, None),
    (f"{AS_OF}/tags/list", "GET", as_of.get_tags, PULL),
    (f"{AS_OF}/manifests/{{reference}}", "HEAD", as_of.get_manifest, PULL),
    (f"{AS_OF}/manifests/{{reference}}", "GET", as_of.get_manifest, PULL),
    (f"{AS_OF}/blobs/{{digest}}", "HEAD", as_of.head_blob, PULL),
    (f"{AS_OF}/blobs/{{digest}}", "GET", as_of.get_blob, PULL),
    (f"{AS_OF}/referrers/{{digest}}", "GET", as_of.get_referrers, PULL),
    ("/v2/_catalog", "GET", catalog.get_catalog, "catalog"),
    (f"{NAME}/manifests/{{reference}}", "HEAD", manifests.get_manifest, PULL),
    (f"{NAME}/manifests/{{reference}}", "GET", manifests.get_manifest, PULL),
    (f"{NAME}/manifests/{{reference}}", "PUT", manifests.put_manifest, PUSH),
    (f"{NAME}/manifests/{{reference}}", "DELETE", manifests.delete_manifest, DELETE),
    (f"{NAME}/blobs/uploads/", "POST", uploads.start_blob_upload, PUSH),
    (f"{NAME}/blobs/uploads/{{upload_id}}", "GET", uploads.get_upload_status, PUSH),
    (f"{NAME}/blobs/uploads/{{upload_id}}", "PATCH", uploads.patch_blob_data, PUSH),
    (f"{NAME}/blobs/uploads/{{upload_id}}", "PUT", uploads.put_blob_upload_complete, PUSH),
    (f"{NAME}/blobs/uploads/{{upload_id}}", "DELETE", uploads.cancel_blob_upload, PUSH),
    (f"{NAME}/blobs/{{digest}}", "HEAD", blobs.head_blob, PULL),
    (f"{NAME}/blobs/{{digest}}", "GET", blobs.get_blob, PULL),
    (f"{NAME}/blobs/{{digest}}", "DELETE", blobs.delete_blob, DELETE),
    (f"{NAME}/tags/list", "GET", tags.get_tags, PULL),
    (f"{NAME}/referrers/{{digest}}", "GET", referrers.get_referrers, PULL),
]


# Lookups cheap enough to answer on the event loop, without a hop to the thread pool, when
# the read models are local (SQLite: microseconds) and no password must be hashed.
INLINE = {manifests.get_manifest, blobs.head_blob, blobs.get_blob}


def access_for(request: Request, action: str | None) -> Access | None:
    if action is None:
        return None
    if action == "catalog":
        return Access("registry", "catalog", "*")
    if "moment" in request.path_params:  # the scope a client asks for names the view's path
        return Access("repository", as_of_name(request.path_params["moment"], request.path_params["name"]), action)
    return Access("repository", request.path_params["name"], action)


def guarded(handler: Callable, action: str | None) -> Callable:
    is_async = inspect.iscoroutinefunction(handler)

    def authorize(request: Request) -> None:
        if "name" in request.path_params:
            check_name(request.path_params["name"])
        if "moment" in request.path_params:
            as_of.check_moment(request)
        actor = services(request).authorizer.authorize(request, access_for(request, action))
        request.state.context = RequestContext(actor, request.state.request_id, client_address(request))

    def authorize_and_handle(request: Request) -> Response:
        authorize(request)
        return handler(request)

    inline = handler in INLINE

    async def endpoint(request: Request) -> Response:
        if is_async:
            await run_in_threadpool(authorize, request)
            return await handler(request)
        if inline and services(request).inline_reads and not _has_basic_credentials(request) \
                and proxied(request) is None:  # a proxy cache's upstream would block the loop
            return authorize_and_handle(request)
        return await run_in_threadpool(authorize_and_handle, request)

    endpoint.__name__ = handler.__name__
    return endpoint


def _has_basic_credentials(request: Request) -> bool:
    return request.headers.get("authorization", "")[:6].lower() == "basic "


def v2_routes() -> list[Route]:
    routes = [
        Route(path, guarded(handler, action), methods=[method], include_in_schema=False)
        for path, method, handler, action in ROUTES
    ]

    async def unmatched(request: Request) -> Response:
        """A known path with another method is UNSUPPORTED (405); anything else NOT_FOUND."""
        detail = {"path": request.url.path, "method": request.method}
        if any(route.matches(request.scope)[0] == Match.PARTIAL for route in routes):
            raise OciError(UNSUPPORTED, detail)
        raise OciError(NOT_FOUND, detail)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    # A repository's routes never match under /v2/as-of/ (that is the past moments' view), so
    # they can come first: a manifest GET tries 2 routes here rather than 12.
    by_name = [_not_as_of(route) for route in routes if route.path.startswith(NAME)]
    as_of_rest = Route("/v2/as-of/{rest:path}", as_of.refuse, methods=methods)  # read-only
    return by_name + [route for route in routes if route not in by_name] + [as_of_rest] \
        + [Route("/v2/{rest:path}", unmatched, methods=methods)]


def _not_as_of(route: Route) -> Route:
    """`route` (path /v2/{name:path}/…), not matching a name that starts with as-of/."""
    route.path_regex = re.compile(route.path_regex.pattern.replace("^/v2/", "^/v2/(?!as-of/)", 1))
    return route
