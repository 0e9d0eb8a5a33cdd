"""Every OCI error code we send, in one table, and the one mapping from domain errors.

Wire format: {"errors": [{"code", "message", "detail"}]} with the code's HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

from domain import errors as domain


@dataclass(frozen=True)
class ErrorCode:
    code: str
    message: str
    status: int


BLOB_UNKNOWN = ErrorCode("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID = ErrorCode("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN = ErrorCode("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
DIGEST_INVALID = ErrorCode("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
MANIFEST_BLOB_UNKNOWN = ErrorCode(
    "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", 400)
MANIFEST_INVALID = ErrorCode("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_UNKNOWN = ErrorCode("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
NAME_INVALID = ErrorCode("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN = ErrorCode("NAME_UNKNOWN", "repository name not known to registry", 404)
SIZE_INVALID = ErrorCode("SIZE_INVALID", "provided length did not match content length", 400)
UNAUTHORIZED = ErrorCode("UNAUTHORIZED", "authentication required", 401)
DENIED = ErrorCode("DENIED", "requested access to the resource is denied", 403)
UNSUPPORTED = ErrorCode("UNSUPPORTED", "the operation is unsupported", 405)
TOOMANYREQUESTS = ErrorCode("TOOMANYREQUESTS", "too many requests", 429)
# Distribution's codes beyond the OCI list, which clients also know.
TAG_INVALID = ErrorCode("TAG_INVALID", "manifest tag did not match URI", 400)
RANGE_INVALID = ErrorCode("RANGE_INVALID", "invalid content range", 416)
PAGINATION_NUMBER_INVALID = ErrorCode("PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400)
MANIFEST_TOO_LARGE = ErrorCode("MANIFEST_INVALID", "manifest too large", 413)
UNAVAILABLE = ErrorCode("UNAVAILABLE", "service unavailable", 503)
NOT_FOUND = ErrorCode("NOT_FOUND", "no such endpoint", 404)
# A project's pull policy refuses the artifact: Harbor's 412, with the code clients print as "denied".
POLICY_VIOLATION = ErrorCode("DENIED", "the project's policy refuses this artifact", 412)

DOMAIN_TO_OCI: dict[type[domain.RegistryError], ErrorCode] = {
    domain.NameInvalidError: NAME_INVALID,
    domain.TagInvalidError: TAG_INVALID,
    domain.DigestInvalidError: DIGEST_INVALID,
    domain.NameUnknownError: NAME_UNKNOWN,
    domain.BlobUnknownError: BLOB_UNKNOWN,
    domain.ManifestUnknownError: MANIFEST_UNKNOWN,
    domain.ManifestInvalidError: MANIFEST_INVALID,
    domain.ManifestBlobUnknownError: MANIFEST_BLOB_UNKNOWN,
    domain.ManifestTooLargeError: MANIFEST_TOO_LARGE,
    domain.UploadUnknownError: BLOB_UPLOAD_UNKNOWN,
    domain.UploadInvalidError: BLOB_UPLOAD_INVALID,
    domain.RangeInvalidError: RANGE_INVALID,
    domain.SizeInvalidError: SIZE_INVALID,
    domain.ConcurrentUpdateError: TOOMANYREQUESTS,
    domain.AuthenticationError: UNAUTHORIZED,
    domain.AccessDeniedError: DENIED,
    domain.TooManyAttemptsError: TOOMANYREQUESTS,
    domain.NotFoundError: NAME_UNKNOWN,
    domain.ConflictError: DENIED,
    domain.InvalidInputError: NAME_INVALID,
    domain.StorageUnavailableError: UNAVAILABLE,
    domain.TagImmutableError: DENIED,  # Harbor says 412; OCI has no such code (docs/oci-api.md)
    domain.StillReferencedError: UNSUPPORTED,  # the spec's status for a refused blob DELETE (docs/oci-api.md)
    domain.QuotaExceededError: DENIED,  # as Harbor: docker prints "denied: quota exceeded: …"
    domain.UpstreamUnavailableError: UNAVAILABLE,
    domain.DirectoryUnavailableError: UNAVAILABLE,
    domain.UpstreamRateLimitedError: TOOMANYREQUESTS,
    domain.PolicyViolationError: POLICY_VIOLATION,
    domain.FollowerReadOnlyError: DENIED,  # a follower: writes go to its leader, named in the message
}
RETRY_AFTER_SECONDS = "5"  # storage outages: clients (containers/image, docker) retry 5xx anyway


class OciError(Exception):
    """Raised by the HTTP layer; rendered by `render_oci_error`."""

    def __init__(self, code: ErrorCode, detail: object = None, message: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message or code.message)
        self.code = code
        self.message = message or code.message
        self.detail = detail
        self.headers = headers or {}

    @classmethod
    def from_domain(cls, error: domain.RegistryError) -> OciError:
        code = DOMAIN_TO_OCI[type(error)]
        headers = {"Retry-After": RETRY_AFTER_SECONDS} if code is UNAVAILABLE else None
        if getattr(error, "retry_after", None) is not None:
            headers = {"Retry-After": str(int(error.retry_after))}
        return cls(code, error.detail, error.message, headers=headers)


def error_response(error: OciError, method: str = "GET") -> Response:
    body = {"code": error.code.code, "message": error.message}
    if error.detail is not None:
        body["detail"] = error.detail
    content = b"" if method == "HEAD" else orjson.dumps({"errors": [body]})
    headers = {"Content-Type": "application/json", **error.headers}
    response = Response(content, status_code=error.code.status, headers=headers)
    if method == "HEAD":
        response.headers["Content-Length"] = str(len(orjson.dumps({"errors": [body]})))
    return response


async def render_oci_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, domain.RegistryError):
        exc = OciError.from_domain(exc)
    return error_response(exc, request.method)
