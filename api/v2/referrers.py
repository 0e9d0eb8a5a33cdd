"""GET /v2/<name>/referrers/<digest>?artifactType=   200 with an OCI image index of the
manifests whose subject is <digest> (empty when none); `OCI-Filters-Applied: artifactType`
when filtered. DIGEST_INVALID 400."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from api.v2.common import name_of, services
from domain.manifests import OCI_INDEX
from domain.names import check_digest


def get_referrers(request: Request) -> Response:
    subject = check_digest(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType") or None
    rows = services(request).catalog.referrers(name_of(request), subject, artifact_type)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(row) for row in rows]}
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return Response(orjson.dumps(index), media_type=OCI_INDEX, headers=headers)


def descriptor(row) -> dict:
    descriptor = {"mediaType": row.media_type, "digest": row.digest, "size": row.size}
    if row.artifact_type:
        descriptor["artifactType"] = row.artifact_type
    if row.annotations:
        descriptor["annotations"] = row.annotations
    return descriptor
