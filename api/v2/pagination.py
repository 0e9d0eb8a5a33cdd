"""`n`/`last` pagination with RFC 5988 Link headers, shared by tags/list and _catalog."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from api.errors import PAGINATION_NUMBER_INVALID, OciError
from api.request_input import as_id
from api.v2.common import next_page_link

MAX_PAGE = 10_000


def page_params(request: Request) -> tuple[int, str | None]:
    n = request.query_params.get("n")
    if n is None or n == "":
        return MAX_PAGE, request.query_params.get("last") or None
    if not (n.isascii() and n.isdigit()):
        raise OciError(PAGINATION_NUMBER_INVALID, {"n": n})
    value = as_id(n)  # None: more than a BIGINT, so as many as there are
    return MAX_PAGE if value is None else min(value, MAX_PAGE), request.query_params.get("last") or None


def paged_response(request: Request, body: dict, items: list[str], limit: int) -> Response:
    headers = {}
    if items and len(items) == limit:
        headers["Link"] = next_page_link(request.url.path, limit, items[-1])
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)
