"""What every Harbor handler shares: Harbor's error shape, the endpoint wrapper (the management
API's, for authentication and permission checks), page/page_size paging with X-Total-Count
and Link, `q=` filters, and resolving `{project_name_or_id}`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import orjson
from sqlalchemy import and_
from starlette.requests import Request
from starlette.responses import Response

from api.management.common import Call, endpoint, page_params
from api.management.common import paged as management_paged
from api.management.problems import Problem, browser_safe
from api.request_input import as_id
from domain.errors import RegistryError
from domain.immutability import Selector
from projections.access import ProjectRow

PREFIX = "/api/v2.0"
CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
         405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT", 409: "CONFLICT", 412: "PRECONDITION",
         413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 429: "TOO_MANY_REQUESTS", 500: "UNKNOWN"}


def harbor_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [{"code": CODES.get(status, "UNKNOWN"), "message": message}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def bad_request(message: str) -> Problem:
    return Problem(400, "bad-request", message)


def not_found(message: str) -> Problem:
    return Problem(404, "not-found", message)


async def render_harbor_error(request: Request, exc: Exception) -> Response:
    problem = Problem.from_domain(exc) if isinstance(exc, RegistryError) else exc
    # Harbor answers malformed input with 400; Portlog's problem details say 422.
    status = 400 if problem.status == 422 else problem.status
    return harbor_error(status, problem.detail, browser_safe(request, problem.headers))


def harbor_endpoint(handler: Callable[[Call], Response], anonymous: bool = False):
    """The management endpoint wrapper (JSON, Basic or Bearer, thread pool), answering errors
    in Harbor's shape instead of problem details."""
    inner = endpoint(handler, anonymous)

    async def run(request: Request) -> Response:
        try:
            return await inner(request)
        except (Problem, RegistryError) as error:
            return await render_harbor_error(request, error)

    run.__name__ = handler.__name__
    return run


def empty(status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, headers=headers)


# Paging


def paged(request: Request, items: list, total: int, page: int, size: int) -> Response:
    return management_paged(request, items, total, page, size, link_separator=" , ")


def page_slice(request: Request, items: list) -> tuple[list, int, int, int]:
    """One page of a list held whole (the access model's small tables): (items, total, page, size)."""
    page, size = page_params(request)
    return items[(page - 1) * size:page * size], len(items), page, size


def paged_list(request: Request, items: list, render: Callable = lambda item: item) -> Response:
    chosen, total, page, size = page_slice(request, items)
    return paged(request, [render(item) for item in chosen], total, page, size)


def sort_items(items: list[dict], sort: str | None, fields: set[str]) -> list[dict]:
    """Harbor's `sort=field1,-field2` over plain JSON items."""
    for key in reversed([k.strip() for k in (sort or "").split(",") if k.strip()]):
        name = key.lstrip("-")
        if name not in fields:
            raise bad_request(f"cannot sort by {name}; sortable: {', '.join(sorted(fields))}")
        items = sorted(items, key=lambda item: (item.get(name) is None, item.get(name)),
                       reverse=key.startswith("-"))
    return items


# q= filters: k=v exact, k=~v fuzzy, k=[a~b] range, k={a b} any of, k=(a b) all of


@dataclass(frozen=True)
class Filter:
    kind: str  # exact | fuzzy | range | any | all
    values: tuple

    def test(self, value) -> bool:
        if isinstance(value, bool):
            value = "true" if value else "false"
        if self.kind == "range":
            low, high = (None if v is None else _typed(v, value) for v in self.values)
            return value is not None and (low is None or value >= low) and (high is None or value <= high)
        text = "" if value is None else str(value)
        if self.kind == "fuzzy":
            return self.values[0] in text
        if self.kind == "all":
            return all(text == v for v in self.values)
        return text in self.values

    def clause(self, column, cast: Callable = str):
        if self.kind == "fuzzy":
            return column.contains(self.values[0], autoescape=True)
        if self.kind == "range":
            low, high = (None if v is None else cast(v) for v in self.values)
            return and_(*([column >= low] if low is not None else []),
                        *([column <= high] if high is not None else []))
        values = [cast(v) for v in self.values]
        if self.kind == "all":
            return and_(*(column == v for v in values))
        return column.in_(values)


def parse_q(text: str | None) -> dict[str, Filter]:
    """Keys are normalised (lower case, no underscores): `ProjectID` and `project_id` agree."""
    filters = {}
    for term in _split_terms(text or ""):
        key, sep, raw = term.partition("=")
        if not sep or not key.strip():
            raise bad_request(f"malformed query term {term!r}: expected key=value")
        filters[key.strip().lower().replace("_", "")] = _parse_value(raw.strip())
    return filters


def _split_terms(text: str) -> list[str]:
    terms, depth, quote, start = [], 0, None, 0
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return [t.strip() for t in terms if t.strip()]


def _parse_value(raw: str) -> Filter:
    if raw.startswith("~"):
        return Filter("fuzzy", (_unquote(raw[1:]),))
    if raw.startswith("[") and raw.endswith("]"):
        low, sep, high = raw[1:-1].partition("~")
        if not sep:
            raise bad_request(f"malformed range {raw!r}: expected [min~max]")
        return Filter("range", (_unquote(low) or None, _unquote(high) or None))
    for opening, closing, kind in (("{", "}", "any"), ("(", ")", "all")):
        if raw.startswith(opening) and raw.endswith(closing):
            return Filter(kind, tuple(_unquote(v) for v in raw[1:-1].split()))
    return Filter("exact", (_unquote(raw),))


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _typed(bound: str, like):
    try:
        if isinstance(like, datetime):
            return parse_time(bound)
        return type(like)(bound)
    except ValueError:
        raise bad_request(f"{bound!r} is not comparable with {like!r}") from None


def parse_time(value: str) -> datetime:
    """Harbor writes times as `2020-04-09 02:36:00` (UTC); ISO 8601 is accepted too."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{value!r} is not a time such as 2020-04-09 02:36:00") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def filter_items(items: list[dict], filters: dict[str, Filter], fields: dict[str, str]) -> list[dict]:
    """Keeps the items every filter accepts; `fields` maps normalised q keys to item keys."""
    for key, value_filter in filters.items():
        if key not in fields:
            raise bad_request(f"unsupported query key {key!r}; supported: {', '.join(sorted(fields))}")
        items = [item for item in items if value_filter.test(item.get(fields[key]))]
    return items


# Projects named in paths


def project_of(call: Call, resource: str, action: str, param: str = "project") -> ProjectRow:
    """`{project_name_or_id}`: a number is an id unless `X-Is-Resource-Name: true`. Checks the
    caller's permission the way the management API does (unknown projects: 404 or refusal)."""
    value = call.param(param)
    by_name = call.request.headers.get("x-is-resource-name", "").lower() == "true"
    project_id = None if by_name else as_id(value)
    if project_id is None:
        row, name = call.services.access.project(value), value
    else:
        # '#<id>' is no project name: an unknown id takes the path of an unknown project.
        row, name = call.services.access.project_by_id(project_id), f"#{value}"
    call.require_project(row.name if row else name, resource, action)
    return row


def harbor_bool(value, name: str) -> bool | None:
    """Harbor metadata carries booleans as strings "true"/"false"."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"{name} must be \"true\" or \"false\"")


def body_of(call: Call) -> dict:
    if not isinstance(call.body, dict):
        raise bad_request("request body must be a JSON object")
    return call.body


# Harbor's selectors (immutability and retention rules): one doublestar pattern each, and whether
# it selects what it matches or everything else.
SELECTOR_KIND = "doublestar"
TAG_DECORATIONS = {"matches": False, "excludes": True}
REPOSITORY_DECORATIONS = {"repoMatches": False, "repoExcludes": True}


def doublestar_selector(raw: object, decorations: dict[str, bool], what: str) -> Selector:
    if not isinstance(raw, dict):
        raise bad_request(f"a {what} selector is an object with kind, decoration and pattern")
    if raw.get("kind") != SELECTOR_KIND:
        raise bad_request(f"unsupported {what} selector kind {raw.get('kind')!r}; supported: {SELECTOR_KIND}")
    decoration = raw.get("decoration")
    if decoration not in decorations:
        raise bad_request(f"unsupported {what} selector decoration {decoration!r}; "
                          f"supported: {', '.join(decorations)}")
    pattern = raw.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise bad_request(f"a {what} selector needs a pattern")
    return Selector(pattern, decorations[decoration])
