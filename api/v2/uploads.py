"""Blob uploads.

POST   /v2/<name>/blobs/uploads/                 202 start; 201 with ?digest= (one request)
                                                 or ?mount=&from= (cross-repository mount;
                                                 202 when it cannot mount)
PATCH  /v2/<name>/blobs/uploads/<id>             202; with Content-Range a chunk, without it a
                                                 stream; RANGE_INVALID 416 when out of order
PUT    /v2/<name>/blobs/uploads/<id>?digest=     201; DIGEST_INVALID 400 (upload cancelled)
GET    /v2/<name>/blobs/uploads/<id>             204 with Range
DELETE /v2/<name>/blobs/uploads/<id>             204
Unknown or foreign upload ids: BLOB_UPLOAD_UNKNOWN 404.
"""

from __future__ import annotations

import re
from dataclasses import replace

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access
from api.errors import DIGEST_INVALID, RANGE_INVALID, SIZE_INVALID, OciError
from api.request_input import as_id
from api.v2.common import blob_location, context, name_of, services, settle, upload_location
from domain.names import check_digest, check_name
from domain.ports import UploadInfo, UploadWriter

FLUSH_BYTES = 1024 * 1024
_CONTENT_RANGE_RE = re.compile(r"(?:bytes[ =])?(\d{1,19})-(\d{1,19})(?:/\d+|/\*)?", re.ASCII)


async def start_blob_upload(request: Request) -> Response:
    name, params = name_of(request), request.query_params
    if "mount" in params:
        response = await _try_mount(request, name, params["mount"], params.get("from"))
        if response is not None:
            return response
    upload = await run_in_threadpool(services(request).uploads.start_upload, name)
    if "digest" not in params:
        return _upload_accepted(name, upload.upload_id, 0, status=202)
    try:
        digest = check_digest(params["digest"])
        size = await _receive(request, upload, expected_length=_content_length(request))
        return await _complete(request, name, replace(upload, size=size), digest)
    except BaseException:
        await run_in_threadpool(services(request).blobs.cancel_upload, upload.upload_id)
        raise


async def patch_blob_data(request: Request) -> Response:
    name, upload_id = name_of(request), request.path_params["upload_id"]
    upload = await run_in_threadpool(services(request).uploads.get_upload, name, upload_id)
    size = await _receive(request, upload, *_chunk_range(request))
    return _upload_accepted(name, upload_id, size, status=202)


async def put_blob_upload_complete(request: Request) -> Response:
    name, upload_id = name_of(request), request.path_params["upload_id"]
    digest = request.query_params.get("digest")
    if not digest:
        raise OciError(DIGEST_INVALID, message="digest query parameter is required")
    digest = check_digest(digest)
    upload = await run_in_threadpool(services(request).uploads.get_upload, name, upload_id)
    size = await _receive(request, upload, *_chunk_range(request))
    return await _complete(request, name, replace(upload, size=size), digest)


def get_upload_status(request: Request) -> Response:
    name, upload_id = name_of(request), request.path_params["upload_id"]
    upload = services(request).uploads.get_upload(name, upload_id)
    return _upload_accepted(name, upload_id, upload.size, status=204)


def cancel_blob_upload(request: Request) -> Response:
    name, upload_id = name_of(request), request.path_params["upload_id"]
    services(request).uploads.cancel_upload(name, upload_id)
    return Response(status_code=204)


async def _try_mount(request: Request, name: str, mount: str, source: str | None):
    digest = check_digest(mount)
    if not source:
        return None
    check_name(source)
    if not await run_in_threadpool(services(request).authorizer.can, request,
                                   Access("repository", source, "pull")):
        return None
    uploads = services(request).uploads
    position = await run_in_threadpool(uploads.mount_blob, name, digest, source, context(request))
    if position is None:
        return None
    await settle(request, position)
    return Response(status_code=201, headers={
        "Location": blob_location(name, digest), "Docker-Content-Digest": digest,
        "Content-Length": "0"})


async def _complete(request: Request, name: str, upload: UploadInfo, digest: str) -> Response:
    uploads = services(request).uploads
    position = await run_in_threadpool(
        uploads.complete_upload, name, upload, digest, context(request))
    await settle(request, position)
    return Response(status_code=201, headers={
        "Location": blob_location(name, digest), "Docker-Content-Digest": digest,
        "Content-Length": "0"})


def _upload_accepted(name: str, upload_id: str, size: int, status: int) -> Response:
    return Response(status_code=status, headers={
        "Location": upload_location(name, upload_id),
        "Docker-Upload-UUID": upload_id,
        "Range": _range_header(size),
        "Content-Length": "0",
    })


def _range_header(size: int) -> str:
    # Distribution's convention: an empty upload reports 0-0.
    return f"0-{max(size - 1, 0)}"


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    length = as_id(value)
    if length is None:
        raise OciError(SIZE_INVALID, {"content_length": value})
    return length


def _chunk_range(request: Request) -> tuple[int | None, int | None]:
    """(start offset, length) from Content-Range; (None, Content-Length) for a stream."""
    header = request.headers.get("content-range")
    length = _content_length(request)
    if header is None:
        return None, length
    match = _CONTENT_RANGE_RE.fullmatch(header.strip())
    if not match or int(match[2]) < int(match[1]):
        raise OciError(RANGE_INVALID, {"content_range": header})
    start, end = int(match[1]), int(match[2])
    if length is not None and length != end - start + 1:
        raise OciError(RANGE_INVALID, {"content_range": header, "content_length": length})
    return start, end - start + 1


async def _receive(request: Request, upload: UploadInfo, start: int | None = None,
                   expected_length: int | None = None) -> int:
    """Appends the request body to the upload; on any failure the upload is as before."""
    writer: UploadWriter = await run_in_threadpool(
        services(request).blobs.upload_writer, upload.upload_id)
    try:
        if start is not None and start != writer.size:
            raise _out_of_order(request, upload, writer.size, start)
        received = await _stream_into(request, writer, expected_length)
        if expected_length is not None and received != expected_length:
            raise OciError(SIZE_INVALID, {"expected": expected_length, "received": received})
    except BaseException:
        await run_in_threadpool(writer.abort)
        raise
    return await run_in_threadpool(writer.commit)


async def _stream_into(request: Request, writer: UploadWriter, limit: int | None) -> int:
    pending: list[bytes] = []
    pending_bytes = received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if limit is not None and received > limit:
            raise OciError(SIZE_INVALID, {"expected": limit, "received": f">{limit}"})
        pending.append(chunk)
        pending_bytes += len(chunk)
        if pending_bytes >= FLUSH_BYTES:
            await run_in_threadpool(writer.write, b"".join(pending))
            pending, pending_bytes = [], 0
    if pending:
        await run_in_threadpool(writer.write, b"".join(pending))
    return received


def _out_of_order(request: Request, upload: UploadInfo, size: int, start: int) -> OciError:
    return OciError(
        RANGE_INVALID,
        {"expected_offset": size, "received_offset": start},
        message="chunk does not start where the upload stands",
        headers={"Range": _range_header(size),
                 "Location": upload_location(upload.repository, upload.upload_id),
                 "Docker-Upload-UUID": upload.upload_id},
    )
