"""Manifests.

HEAD|GET /v2/<name>/manifests/<tag|digest>   200 with content negotiation on Accept;
                                             MANIFEST_UNKNOWN (also for a tag outside the
                                             grammar), NAME_UNKNOWN 404
PUT      /v2/<name>/manifests/<tag|digest>   201 (+ OCI-Subject); MANIFEST_INVALID 400 (413 when
                                             over 4 MiB), MANIFEST_BLOB_UNKNOWN, DIGEST_INVALID,
                                             TAG_INVALID 400
DELETE   /v2/<name>/manifests/<digest>       202: the manifest and every tag on it
DELETE   /v2/<name>/manifests/<tag>          202: the tag only; MANIFEST_UNKNOWN 404 (also for a
                                             tag outside the grammar)
"""

from __future__ import annotations

from typing import Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access
from api.errors import MANIFEST_TOO_LARGE, OciError
from api.proxy_cache import Fetched
from api.request_input import as_id
from api.v2.common import context, is_web_ui, manifest_location, name_of, proxied, services, settle
from domain.errors import ManifestUnknownError, NameUnknownError
from domain.manifests import MAX_MANIFEST_BYTES
from domain.names import check_digest, is_digest_reference, is_valid_tag
from domain.pull_checks import Pull
from projections.catalog import ManifestRow


def get_manifest(request: Request) -> Response:
    """In a proxy-cache project the upstream is asked first (api/proxy_cache.py)."""
    upstream = proxied(request)
    reference = request.path_params["reference"]
    if upstream is None:
        manifest = _find(request)
    else:
        manifest = services(request).proxy_cache.manifest(name_of(request), upstream, reference, context(request))
    check_acceptable(request, manifest)
    check_pull(request, manifest, reference)
    headers = manifest_headers(manifest)
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers)
    body = getattr(manifest, "data", None) or services(request).manifests.read(manifest.digest)
    if not is_web_ui(request):  # only registry clients' pulls count, not the UI's page views
        services(request).pull_counter.count(name_of(request), manifest.digest,
                                             None if is_digest_reference(reference) else reference,
                                             context(request).actor)
    return Response(body, headers=headers)


async def put_manifest(request: Request) -> Response:
    name, reference = name_of(request), request.path_params["reference"]
    body = await _read_limited(request)
    manifest, position = await run_in_threadpool(
        services(request).artifacts.push_manifest, name, reference, body,
        request.headers.get("content-type"), context(request))
    await settle(request, position)
    headers = {"Location": manifest_location(name, manifest.digest),
               "Docker-Content-Digest": manifest.digest, "Content-Length": "0"}
    if manifest.subject:
        headers["OCI-Subject"] = manifest.subject.digest
    return Response(status_code=201, headers=headers)


async def delete_manifest(request: Request) -> Response:
    name, reference = name_of(request), request.path_params["reference"]
    artifacts = services(request).artifacts
    command = artifacts.delete_manifest if is_digest_reference(reference) else artifacts.delete_tag
    position = await run_in_threadpool(command, name, reference, context(request))
    await settle(request, position)
    return Response(status_code=202)


def _find(request: Request) -> ManifestRow:
    name, reference = name_of(request), request.path_params["reference"]
    catalog = services(request).catalog
    if is_digest_reference(reference):
        manifest = catalog.manifest_by_digest(name, check_digest(reference))
    else:
        # A tag outside the grammar names a manifest that cannot exist: unknown, not invalid.
        manifest = catalog.manifest_by_tag(name, reference) if is_valid_tag(reference) else None
    if manifest is None:
        if not catalog.repository_exists(name):
            raise NameUnknownError("repository name not known to registry", {"name": name})
        raise ManifestUnknownError("manifest unknown to registry", {"reference": reference})
    return manifest


def check_pull(request: Request, manifest: ManifestRow | Fetched, reference: str) -> None:
    """The project's pull policies (domain/pull_checks.py). The web UI showing an artifact is
    no pull: it shows the vulnerable and unsigned ones too."""
    if is_web_ui(request):
        return
    data = getattr(manifest, "data", None)
    document = _once(lambda: _document(data or services(request).manifests.read(manifest.digest)))
    artifact_type = manifest.artifact_type if data is None else _artifact_type(document())
    services(request).pull_checks.check(Pull(
        name_of(request), reference, manifest.digest, manifest.media_type, artifact_type, document,
        scanner=getattr(request.state, "scanner_pull", False), signing_tool=lambda: _signing_tool(request)))


def _once(read: Callable[[], dict]) -> Callable[[], dict]:
    """`read`, called at most once (functools.cache's wrapper costs more to make, per request)."""
    found: list[dict] = []

    def document() -> dict:
        if not found:
            found.append(read())
        return found[0]

    return document


def _document(data: bytes) -> dict:
    """The manifest's JSON object; an upstream's (not validated before it is served) may be none."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


def _artifact_type(document: dict) -> str | None:
    """A fetched manifest's artifact type, as the catalog has a stored one's."""
    config = document.get("config")
    found = document.get("artifactType") or (config.get("mediaType") if isinstance(config, dict) else None)
    return found if isinstance(found, str) else None


def _signing_tool(request: Request) -> bool:
    """cosign or notation, for a principal who may push to the repository: it reads the manifest
    to sign it (Harbor lets these through its pull policies)."""
    agent = request.headers.get("user-agent", "").lower()
    return ("cosign" in agent or "notation" in agent) and services(request).authorizer.can(
        request, Access("repository", name_of(request), "push"))


def check_acceptable(request: Request, manifest: ManifestRow | Fetched) -> None:
    accepted = _accepted_types(request.headers.getlist("accept"))
    if not accepted or manifest.media_type in accepted or "*/*" in accepted:
        return
    if f"{manifest.media_type.split('/')[0]}/*" in accepted:
        return
    raise ManifestUnknownError(
        "manifest exists but its media type is not in the Accept header",
        {"mediaType": manifest.media_type, "accept": sorted(accepted)},
    )


def _accepted_types(values: list[str]) -> set[str]:
    return {
        item.split(";")[0].strip().lower()
        for value in values for item in value.split(",") if item.strip()
    }


def manifest_headers(manifest: ManifestRow | Fetched) -> dict[str, str]:
    return {
        "Content-Type": manifest.media_type,
        "Content-Length": str(manifest.size),
        "Docker-Content-Digest": manifest.digest,
        "ETag": f'"{manifest.digest}"',
    }


async def _read_limited(request: Request) -> bytes:
    declared = as_id(request.headers.get("content-length", ""))
    if declared is not None and declared > MAX_MANIFEST_BYTES:
        raise OciError(MANIFEST_TOO_LARGE, {"size": declared, "limit": MAX_MANIFEST_BYTES})
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_MANIFEST_BYTES:
            raise OciError(MANIFEST_TOO_LARGE, {"limit": MAX_MANIFEST_BYTES})
        chunks.append(chunk)
    return b"".join(chunks)
