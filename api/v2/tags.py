"""GET /v2/<name>/tags/list?n=&last=   200 {"name", "tags"}, lexically ordered, with a
`Link: <...>; rel="next"` header when more may follow; NAME_UNKNOWN 404,
PAGINATION_NUMBER_INVALID 400."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.v2.common import name_of, services
from api.v2.pagination import page_params, paged_response
from domain.errors import NameUnknownError


def get_tags(request: Request) -> Response:
    name, catalog = name_of(request), services(request).catalog
    if not catalog.repository_exists(name):
        raise NameUnknownError("repository name not known to registry", {"name": name})
    limit, last = page_params(request)
    tags = catalog.tags(name, limit, last)
    return paged_response(request, {"name": name, "tags": tags}, tags, limit)
