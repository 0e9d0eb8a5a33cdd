"""RFC 9457 problem details for the management API, and the one mapping from domain errors."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from domain import errors as domain

PROBLEM_TYPE_BASE = "https://portlog.dev/problems/"

DOMAIN_TO_STATUS: dict[type[domain.RegistryError], tuple[int, str]] = {
    domain.NotFoundError: (404, "not-found"),
    domain.NameUnknownError: (404, "not-found"),
    domain.ManifestUnknownError: (404, "not-found"),
    domain.ConflictError: (409, "conflict"),
    domain.InvalidInputError: (422, "invalid-input"),
    domain.NameInvalidError: (422, "invalid-input"),
    domain.TagInvalidError: (422, "invalid-input"),
    domain.DigestInvalidError: (422, "invalid-input"),
    domain.AuthenticationError: (401, "unauthenticated"),
    domain.AccessDeniedError: (403, "forbidden"),
    domain.TooManyAttemptsError: (429, "too-many-attempts"),
    domain.ConcurrentUpdateError: (429, "too-many-writers"),
    domain.StorageUnavailableError: (503, "storage-unavailable"),
    domain.TagImmutableError: (409, "tag-immutable"),
    domain.QuotaExceededError: (403, "quota-exceeded"),
    domain.UpstreamUnavailableError: (503, "upstream-unavailable"),
    domain.DirectoryUnavailableError: (503, "directory-unavailable"),
    domain.UpstreamRateLimitedError: (429, "upstream-rate-limited"),
    domain.PolicyViolationError: (412, "policy-violation"),
    domain.FollowerReadOnlyError: (403, "read-only-follower"),
}


class Problem(Exception):
    def __init__(self, status: int, kind: str, detail: str, extra: dict | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail
        self.extra = extra or {}
        self.headers = headers or {}

    @classmethod
    def from_domain(cls, error: domain.RegistryError) -> Problem:
        status, kind = next((DOMAIN_TO_STATUS[c] for c in type(error).__mro__ if c in DOMAIN_TO_STATUS),
                            (400, "bad-request"))
        extra = error.detail if isinstance(error.detail, dict) else {}
        headers = {"WWW-Authenticate": 'Basic realm="portlog"'} if status == 401 else {}
        if getattr(error, "retry_after", None) is not None:
            headers["Retry-After"] = str(int(error.retry_after))
        return cls(status, kind, error.message, extra, headers)


def problem_response(request: Request, problem: Problem) -> Response:
    body = {
        "type": PROBLEM_TYPE_BASE + problem.kind,
        "title": problem.kind.replace("-", " ").capitalize(),
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
        **{k: v for k, v in problem.extra.items() if k not in ("type", "title", "status", "instance")},
    }
    return Response(orjson.dumps(body, default=str), status_code=problem.status,
                    media_type="application/problem+json", headers=browser_safe(request, problem.headers))


def browser_safe(request: Request, headers: dict[str, str] | None) -> dict[str, str] | None:
    """Without the Basic challenge for the web UI's calls (they say X-Requested-With), so a
    browser shows Portlog's login page instead of its own password dialog."""
    if headers and request.headers.get("x-requested-with") == "XMLHttpRequest":
        return {k: v for k, v in headers.items() if k.lower() != "www-authenticate"}
    return headers


async def render_problem(request: Request, exc: Exception) -> Response:
    if isinstance(exc, domain.RegistryError):
        exc = Problem.from_domain(exc)
    return problem_response(request, exc)
