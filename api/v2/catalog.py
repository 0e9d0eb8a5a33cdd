"""GET /v2/_catalog?n=&last=   200 {"repositories": [...]}, lexically ordered, paginated."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.v2.common import services
from api.v2.pagination import page_params, paged_response


def get_catalog(request: Request) -> Response:
    limit, last = page_params(request)
    names = services(request).catalog.repositories(limit, last)
    return paged_response(request, {"repositories": names}, names, limit)
