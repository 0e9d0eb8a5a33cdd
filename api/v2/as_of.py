"""The read-only view of repositories as of a moment: `/v2/as-of/<moment>/<repository>/…`
(domain/as_of.py, docs/time-travel.md).

GET      …/tags/list                the tags at the moment ({"name": as-of/<moment>/<repository>, "tags"})
HEAD|GET …/manifests/<tag|digest>   the manifest the tag pointed to at the moment, or one the
                                    repository held then; MANIFEST_UNKNOWN 404 (with the reason
                                    when its bytes were garbage-collected since)
HEAD|GET …/blobs/<digest>           a blob linked then; BLOB_UNKNOWN 404 likewise
GET      …/referrers/<digest>       the referrers the repository held then
anything else                       UNSUPPORTED 405 for a write (the view is read-only), NOT_FOUND 404

A malformed moment or one in the future is NAME_INVALID 400; a repository that did not exist at
the moment (or was deleted then) NAME_UNKNOWN 404. The project's pull policies apply as they are
now; as-of pulls are not counted as pulls.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from api.errors import NOT_FOUND, UNSUPPORTED, OciError
from api.v2.blobs import blob_headers, serve_blob
from api.v2.common import name_of, services
from api.v2.manifests import check_acceptable, check_pull, manifest_headers
from api.v2.pagination import page_params, paged_response
from api.v2.referrers import descriptor
from domain.as_of import AS_OF_PROJECT, ManifestAt, RepositoryAt, as_of_name, parse_moment
from domain.errors import BlobUnknownError, ManifestUnknownError, NameUnknownError
from domain.manifests import OCI_INDEX
from domain.names import check_digest, is_digest_reference, is_valid_tag

COLLECTED = "garbage-collected since"


def get_tags(request: Request) -> Response:
    state = _state(request)
    limit, last = page_params(request)
    tags = [tag for tag in sorted(state.tags) if last is None or tag > last][:limit]
    return paged_response(request, {"name": _virtual_name(request), "tags": tags}, tags, limit)


def get_manifest(request: Request) -> Response:
    state = _state(request)
    reference = request.path_params["reference"]
    manifest = _manifest(request, state, reference)
    body = _manifest_bytes(request, manifest)
    check_acceptable(request, manifest)
    check_pull(request, manifest, reference)
    headers = manifest_headers(manifest)
    return Response(status_code=200, headers=headers) if request.method == "HEAD" else Response(body, headers=headers)


def head_blob(request: Request) -> Response:
    digest, size = _blob(request)
    return Response(status_code=200, headers=blob_headers(digest, size))


def get_blob(request: Request) -> Response:
    return serve_blob(request, *_blob(request))


def get_referrers(request: Request) -> Response:
    subject = check_digest(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType") or None
    details = services(request).as_of.manifests(_state(request))
    found = sorted((m for m in details.values() if m.subject == subject
                    and (artifact_type is None or m.artifact_type == artifact_type)), key=lambda m: m.digest)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(m) for m in found]}
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return Response(orjson.dumps(index), media_type=OCI_INDEX, headers=headers)


async def refuse(request: Request) -> Response:
    """Any other path or method under /v2/as-of/: a write is refused, the rest is unknown."""
    detail = {"path": request.url.path, "method": request.method}
    if request.method in ("GET", "HEAD"):
        raise OciError(NOT_FOUND, detail)
    raise OciError(UNSUPPORTED, {**detail, "view": AS_OF_PROJECT},
                   message=f"the {AS_OF_PROJECT} view of a repository at a past moment is read-only")


def check_moment(request: Request) -> None:
    """The moment's grammar, before anything else (NAME_INVALID)."""
    parse_moment(request.path_params["moment"])


def _state(request: Request) -> RepositoryAt:
    """The repository at the path's moment, once per request."""
    if not hasattr(request.state, "as_of"):
        as_of, name = services(request).as_of, name_of(request)
        moment = parse_moment(request.path_params["moment"])
        position = as_of.position(moment)
        state = as_of.repository(name, position)
        if state is None:
            raise NameUnknownError("repository name not known to registry at that moment",
                                   {"name": name, "moment": moment.text, "position": position})
        request.state.as_of = state
    return request.state.as_of


def _virtual_name(request: Request) -> str:
    return as_of_name(request.path_params["moment"], name_of(request))


def _manifest(request: Request, state: RepositoryAt, reference: str) -> ManifestAt:
    if is_digest_reference(reference):
        digest = check_digest(reference)
    else:  # a tag outside the grammar names a manifest that cannot exist: unknown, not invalid
        digest = state.tags.get(reference) if is_valid_tag(reference) else None
    manifest = services(request).as_of.manifests(state).get(digest) if digest else None
    if manifest is None:
        raise ManifestUnknownError("manifest unknown to registry at that moment",
                                   {"reference": reference, "position": state.position})
    return manifest


def _manifest_bytes(request: Request, manifest: ManifestAt) -> bytes:
    """The manifest cache may still hold bytes collected since: the store is asked first."""
    try:
        if services(request).blobs.stat(manifest.digest) is None:
            raise BlobUnknownError("blob unknown to registry", {"digest": manifest.digest})
        return services(request).manifests.read(manifest.digest)
    except BlobUnknownError:
        reason = _why_missing(request, manifest.digest)
        raise ManifestUnknownError(f"manifest unknown to registry: its bytes were {reason}",
                                   {"digest": manifest.digest, "reason": reason}) from None


def _blob(request: Request) -> tuple[str, int]:
    state = _state(request)
    digest = check_digest(request.path_params["digest"])
    size = state.blobs.get(digest)
    if size is None:
        raise BlobUnknownError("blob unknown to registry at that moment",
                               {"digest": digest, "position": state.position})
    if services(request).blobs.stat(digest) is None:
        reason = _why_missing(request, digest)
        raise BlobUnknownError(f"blob unknown to registry: its bytes were {reason}",
                               {"digest": digest, "reason": reason})
    return digest, size


def _why_missing(request: Request, digest: str) -> str:
    return COLLECTED if services(request).as_of.collected(digest) else "removed since"
