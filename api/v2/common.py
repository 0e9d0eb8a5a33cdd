"""Helpers shared by the /v2/ handlers."""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from config.bootstrap import Services
from domain.context import RequestContext


def services(request: Request) -> Services:
    return request.app.state.services


def context(request: Request) -> RequestContext:
    return request.state.context


def name_of(request: Request) -> str:
    return request.path_params["name"]


def is_web_ui(request: Request) -> bool:
    """Read by the web UI through its session (api/auth.py), not by a registry client."""
    return getattr(request.state, "web_ui", False)


def proxied(request: Request):
    """The upstream (api/proxy_cache.py Upstream) of a repository of a proxy-cache project,
    None for any other; looked up once per request."""
    if not hasattr(request.state, "upstream"):
        request.state.upstream = services(request).proxy_cache.upstream_of(name_of(request))
    return request.state.upstream


async def settle(request: Request, position: int | None) -> None:
    """Read-your-writes: answer only once the read models include our events."""
    await run_in_threadpool(services(request).projections.wait_for, position)


def blob_location(name: str, digest: str) -> str:
    return f"/v2/{name}/blobs/{digest}"


def upload_location(name: str, upload_id: str) -> str:
    return f"/v2/{name}/blobs/uploads/{upload_id}"


def manifest_location(name: str, digest: str) -> str:
    return f"/v2/{name}/manifests/{digest}"


def next_page_link(path: str, n: int, last: str) -> str:
    return f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"'
