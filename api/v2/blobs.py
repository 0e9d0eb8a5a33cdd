"""Blobs of a repository.

HEAD|GET /v2/<name>/blobs/<digest>   200, 206 with Range; BLOB_UNKNOWN 404, DIGEST_INVALID 400,
                                     RANGE_INVALID 416 for an unsatisfiable Range
DELETE   /v2/<name>/blobs/<digest>   202; BLOB_UNKNOWN, NAME_UNKNOWN 404; UNSUPPORTED 405 while a manifest
                                     of the repository references the blob (docs/oci-api.md)
"""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from api.errors import RANGE_INVALID, OciError
from api.v2.blob_body import blob_body
from api.v2.common import context, name_of, proxied, services, settle
from domain.errors import BlobUnknownError
from domain.names import check_digest

_RANGE_RE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})", re.ASCII)  # more: malformed, answered whole


def blob_headers(digest: str, size: int) -> dict[str, str]:
    return {
        "Content-Length": str(size),
        "Content-Type": "application/octet-stream",
        "Docker-Content-Digest": digest,
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
    }


def _blob_size(request: Request) -> tuple[str, int]:
    digest = check_digest(request.path_params["digest"])
    size = services(request).catalog.blob_size(name_of(request), digest)
    if size is None:
        raise BlobUnknownError("blob unknown to registry", {"digest": digest})
    return digest, size


def _missing_here(request: Request) -> bool:
    return services(request).catalog.blob_size(name_of(request), check_digest(request.path_params["digest"])) is None


def head_blob(request: Request) -> Response:
    """A pushing client that hears 200 skips the upload: when nothing references the blob,
    it is retained, so that no collector takes it before the client's manifest arrives (a
    write, but rare: once a minute at most per such blob). A blob being collected, or collected
    since the link was read, is unknown (docs/gc.md)."""
    if (upstream := proxied(request)) is not None and _missing_here(request):
        digest = request.path_params["digest"]
        size = services(request).proxy_cache.blob_size(upstream, digest)
        return Response(status_code=200, headers=blob_headers(digest, size))
    digest, size = _blob_size(request)
    services(request).uploads.retain(digest, "head", context(request))
    return Response(status_code=200, headers=blob_headers(digest, size))


def get_blob(request: Request) -> Response:
    """In a proxy-cache project, a blob the repository lacks comes from the upstream, cached as
    it streams through (api/proxy_cache.py); without Range support then."""
    if (upstream := proxied(request)) is not None and _missing_here(request):
        digest = request.path_params["digest"]
        fetched = services(request).proxy_cache.open_blob(name_of(request), upstream, digest, context(request))
        if fetched is not None:
            size, chunks = fetched
            return StreamingResponse(chunks, headers=blob_headers(digest, size))
    digest, size = _blob_size(request)
    return serve_blob(request, digest, size)


def serve_blob(request: Request, digest: str, size: int) -> Response:
    """The blob's bytes: a redirect to the store when it offers one, else streamed (Range: 206)."""
    blobs = services(request).blobs
    if url := blobs.redirect_url(digest):
        return RedirectResponse(url, status_code=307, headers={"Docker-Content-Digest": digest})
    headers = blob_headers(digest, size)
    requested = parse_range(request.headers.get("range"), size)
    if requested is None:
        return StreamingResponse(blob_body(blobs, digest, 0, size), headers=headers)
    start, end = requested
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    body = blob_body(blobs, digest, start, end - start + 1)
    return StreamingResponse(body, status_code=206, headers=headers)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One `bytes=` range → inclusive (start, end); None means the whole blob."""
    if not header:
        return None
    match = _RANGE_RE.fullmatch(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # multiple or malformed ranges: RFC 9110 lets us send it all
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise OciError(RANGE_INVALID, {"range": header, "size": size},
                       headers={"Content-Range": f"bytes */{size}"})
    return start, end


async def delete_blob(request: Request) -> Response:
    digest = check_digest(request.path_params["digest"])
    position = await run_in_threadpool(
        services(request).uploads.unlink_blob, name_of(request), digest, context(request))
    await settle(request, position)
    return Response(status_code=202, headers={"Docker-Content-Digest": digest})
