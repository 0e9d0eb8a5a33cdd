"""The Harbor Scanner Adapter API v1.2 (goharbor/pluggable-scanner-spec), answering v1.1 clients
too: `GET /api/v1/metadata`, `POST /api/v1/scan`, `GET /api/v1/scan/{id}/report`.

A scan request is checked (400 for JSON of the wrong shape, 422 for an invalid field, 501 for
what this scanner cannot do) and answered 202 with the job's id at once; the scan runs on a
bounded pool of threads of the process that accepted it, within the scan's limits and time
(scanner/limits.py). The job's state lives in a database table (scanner/jobs.py), so any
process answers for it: 302 with `Refresh-After` while it runs, 200 with the report the
`Accept` header asks for, or 500 with the failure's reason. Errors are the spec's JSON,
`{"error": {"message": ...}}`.

With an API key, every request must carry it (`X-ScannerAdapter-API-Key: KEY`, or
`Authorization: Bearer KEY`, as Harbor sends a registration's credential); it is checked before
anything is read.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Callable
from urllib.parse import urlsplit

import httpx
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scanner.jobs import DONE, FAILED, ScanJobs
from scanner.layers import DOCKER_MANIFEST, INDEXES, OCI_MANIFEST
from scanner.limits import Deadline, ScanFailed, ScanLimits
from scanner.reports import CYCLONEDX_JSON, SBOM_REPORT, VULNERABILITY_REPORT, ScannerInfo, timestamp
from scanner.scan import SBOM, VULNERABILITY, ScanRequest, scan
from scanner.vulndb import VulnerabilitySource

log = logging.getLogger("portlog.scanner")

METADATA_1_0 = "application/vnd.scanner.adapter.metadata+json; version=1.0"
METADATA_1_1 = "application/vnd.scanner.adapter.metadata+json; version=1.1"
SCAN_RESPONSE = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
ERROR = "application/vnd.scanner.adapter.error+json; version=1.0"
HARBOR_REPORT_1_0 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
CONSUMES = (OCI_MANIFEST, DOCKER_MANIFEST)
REPORT_KINDS = {VULNERABILITY_REPORT: VULNERABILITY, HARBOR_REPORT_1_0: VULNERABILITY, SBOM_REPORT: SBOM}
API_KEY_HEADER = "X-ScannerAdapter-API-Key"
MAX_REQUEST_BYTES = 64 * 1024
REFRESH_AFTER_SECONDS = 2
QUEUE_SECONDS = 3600  # how long a job may wait for a thread before it counts as lost
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class BadScanRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class ScannerAdapter:
    def __init__(self, *, vulnerabilities: VulnerabilitySource, jobs: ScanJobs, http_client: Callable[[], httpx.Client],
                 scanner: ScannerInfo, api_key: str | None = None, limits: ScanLimits = ScanLimits(),
                 workers: int = 2, max_queued: int = 100,
                 data_updated_at: Callable[[], datetime | None] = lambda: None) -> None:
        """`http_client` makes the client the scans pull images with (Portlog's passes its
        outbound guard); `data_updated_at` tells when the vulnerability data was imported."""
        self.vulnerabilities, self.jobs, self.http_client, self.scanner = vulnerabilities, jobs, http_client, scanner
        self.api_key, self.limits, self.max_queued, self.data_updated_at = api_key, limits, max_queued, data_updated_at
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="scanner")
        self._lock = threading.Lock()
        self._accepted: dict[str, Deadline | None] = {}  # jobs of this process, with the deadline once running
        self._closed = False
        self.app = Starlette(routes=[
            Route("/api/v1/metadata", self.metadata, methods=["GET"]),
            Route("/api/v1/scan", self.accept_scan, methods=["POST"]),
            Route("/api/v1/scan/{scan_request_id}/report", self.report, methods=["GET"]),
        ])

    # --- the API ---

    def metadata(self, request: Request) -> Response:
        if refused := self._refusal(request):
            return refused
        properties = {"harbor.scanner-adapter/scanner-type": "os-package-vulnerability",
                      "harbor.scanner-adapter/vulnerability-database-source": "OSV (imported with portlog vulndb)"}
        updated = self.data_updated_at()
        if updated is not None:
            properties["harbor.scanner-adapter/vulnerability-database-updated-at"] = timestamp(updated)
        document = {
            "scanner": self.scanner.as_json(),
            "capabilities": [
                {"type": VULNERABILITY, "consumes_mime_types": list(CONSUMES),
                 "produces_mime_types": [VULNERABILITY_REPORT, HARBOR_REPORT_1_0]},
                {"type": SBOM, "consumes_mime_types": list(CONSUMES), "produces_mime_types": [SBOM_REPORT],
                 "additional_attributes": {"sbom_media_types": [CYCLONEDX_JSON]}},
            ],
            "properties": properties,
        }
        version = METADATA_1_0 if _normalized(METADATA_1_0) in _accepted(request) else METADATA_1_1
        return _json(200, document, version)

    async def accept_scan(self, request: Request) -> Response:
        if refused := self._refusal(request):
            return refused
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return error(400, f"the scan request is larger than {MAX_REQUEST_BYTES} bytes")
        try:
            scan_request = parse_scan_request(body)
        except BadScanRequest as bad:
            return error(bad.status, bad.message)
        return await run_in_threadpool(self._enqueue, scan_request)

    def report(self, request: Request) -> Response:
        if refused := self._refusal(request):
            return refused
        job = self.jobs.get(request.path_params["scan_request_id"][:64])
        if job is None:
            return error(404, "no scan with this id (it may have been forgotten: scan again)")
        media_type = _report_media_type(request.headers.get("accept", ""))
        if media_type is None:
            return error(501, "this scanner produces application/vnd.security.vulnerability.report; version=1.1 "
                              "and application/vnd.security.sbom.report+json; version=1.0")
        kind = REPORT_KINDS[media_type]
        if kind == SBOM and request.query_params.get("sbom_media_type", CYCLONEDX_JSON) != CYCLONEDX_JSON:
            return error(400, f"this scanner writes SBOMs as {CYCLONEDX_JSON} only")
        if kind not in job.capabilities:
            return error(400, f"the scan was not asked for the {kind} capability")
        if job.status == FAILED:
            return error(500, job.error or "the scan failed")
        if job.status != DONE:
            return Response(status_code=302, headers={"Refresh-After": str(REFRESH_AFTER_SECONDS)})
        report = job.vulnerability_report if kind == VULNERABILITY else job.sbom_report
        return Response(report, 200, media_type=media_type)

    # --- running scans ---

    def _enqueue(self, scan_request: ScanRequest) -> Response:
        with self._lock:
            if self._closed:
                return error(503, "the scanner is stopping")
            if len(self._accepted) >= self.max_queued:
                return error(503, f"{self.max_queued} scans are waiting or running: try again later")
            job_id = str(uuid.uuid4())
            self._accepted[job_id] = None
        self.jobs.create(job_id, scan_request.capabilities, QUEUE_SECONDS + self.limits.seconds)
        self._pool.submit(self._run, job_id, scan_request)
        return _json(202, {"id": job_id}, SCAN_RESPONSE)

    def _run(self, job_id: str, scan_request: ScanRequest) -> None:
        deadline = Deadline(self.limits.seconds)
        with self._lock:
            if self._closed:
                return
            self._accepted[job_id] = deadline
        try:
            self.jobs.start(job_id, self.limits.seconds + 60)
            with self.http_client() as client:
                reports = scan(scan_request, client, self.vulnerabilities, self.scanner, self.limits, deadline)
            self.jobs.finish(job_id, reports.vulnerability, reports.sbom)
        except ScanFailed as failure:
            self.jobs.fail(job_id, str(failure))
        except Exception as failure:  # a bug or an outside refusal (the outbound guard's): the job still ends
            log.exception("scan %s failed", job_id)
            self.jobs.fail(job_id, f"the scan failed: {failure or type(failure).__name__}")
        finally:
            with self._lock:
                self._accepted.pop(job_id, None)

    def close(self) -> None:
        """Stops the running scans at their next read; the waiting ones are failed."""
        with self._lock:
            self._closed = True
            waiting = [job_id for job_id, deadline in self._accepted.items() if deadline is None]
            for deadline in self._accepted.values():
                if deadline is not None:
                    deadline.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.jobs.fail_unfinished(waiting, "the scanner stopped before the scan started: scan again")

    # --- authentication ---

    def _refusal(self, request: Request) -> Response | None:
        if self.api_key is None:
            return None
        given = request.headers.get(API_KEY_HEADER, "")
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = given or credential
        if given and hmac.compare_digest(given.encode(), self.api_key.encode()):
            return None
        return error(401, f"authentication required: the adapter's API key in {API_KEY_HEADER}")


# --- the scan request ---

def parse_scan_request(body: bytes) -> ScanRequest:
    """The spec's ScanRequest; BadScanRequest (400 wrong JSON, 422 invalid field, 501 not done here)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadScanRequest(400, "the scan request is not valid JSON") from None
    if not isinstance(document, dict):
        raise BadScanRequest(400, "the scan request is not a JSON object")
    registry, artifact = _object(document, "registry"), _object(document, "artifact")
    url = _string(registry, "registry.url", required=True)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise BadScanRequest(422, "invalid registry.url: an http(s) URL of the registry")
    repository = _string(artifact, "artifact.repository", required=True)
    if len(repository) > 255 or not _REPOSITORY.match(repository):
        raise BadScanRequest(422, "invalid artifact.repository")
    digest = _string(artifact, "artifact.digest", required=True)
    if not _DIGEST.match(digest):
        raise BadScanRequest(422, "invalid artifact.digest: sha256:<64 hex digits>")
    mime_type = _string(artifact, "artifact.mime_type")
    if mime_type and mime_type not in (*CONSUMES, *INDEXES):
        raise BadScanRequest(501, f"this scanner does not scan {mime_type} artifacts")
    tag = _string(artifact, "artifact.tag")
    sent = {"repository": repository, "digest": digest, **({"tag": tag} if tag else {}),
            **({"mime_type": mime_type} if mime_type else {})}
    return ScanRequest(url, _string(registry, "registry.authorization"), sent, _capabilities(document))


def _capabilities(document: dict) -> tuple[str, ...]:
    """The spec: without `enabled_capabilities`, every capability."""
    enabled = document.get("enabled_capabilities")
    if enabled is None:
        return (VULNERABILITY, SBOM)
    if not isinstance(enabled, list) or not all(isinstance(c, dict) for c in enabled):
        raise BadScanRequest(400, "enabled_capabilities must be a list of objects")
    found = []
    for capability in enabled:
        kind = _string(capability, "enabled_capabilities[].type", required=True)
        if kind not in (VULNERABILITY, SBOM):
            raise BadScanRequest(501, f"this scanner has no {kind!r} capability")
        produces = capability.get("produces_mime_types")
        if produces is not None and (not isinstance(produces, list) or not all(isinstance(m, str) for m in produces)):
            raise BadScanRequest(400, "produces_mime_types must be a list of strings")
        parameters = capability.get("parameters")
        if parameters is not None:
            formats = parameters.get("sbom_media_types") if isinstance(parameters, dict) else "not an object"
            if formats is not None and (not isinstance(formats, list) or not all(isinstance(f, str) for f in formats)):
                raise BadScanRequest(400, "parameters.sbom_media_types must be a list of strings")
            if formats and CYCLONEDX_JSON not in formats:
                raise BadScanRequest(501, f"this scanner writes SBOMs as {CYCLONEDX_JSON} only")
        found.append(kind)
    if not found:
        raise BadScanRequest(422, "enabled_capabilities enables nothing")
    return tuple(dict.fromkeys(found))


def _object(document: dict, key: str) -> dict:
    value = document.get(key)
    if value is None:
        raise BadScanRequest(422, f"{key} is required")
    if not isinstance(value, dict):
        raise BadScanRequest(400, f"{key} must be an object")
    return value


def _string(document: dict, name: str, required: bool = False) -> str:
    value = document.get(name.rsplit(".", 1)[-1])
    if value is None or value == "":
        if required:
            raise BadScanRequest(422, f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise BadScanRequest(400, f"{name} must be a string")
    return value


# --- content negotiation and answers ---

def _normalized(media_type: str) -> str:
    """`type/subtype; key=value` without spaces, lower case, without a q parameter."""
    parts = [p.strip().lower().replace(" ", "") for p in media_type.split(";")]
    return ";".join(p for p in parts if p and not p.startswith("q="))


def _accepted(request: Request) -> list[str]:
    return [_normalized(item) for item in request.headers.get("accept", "").split(",") if item.strip()]


def _report_media_type(accept: str) -> str | None:
    """The report the Accept header asks for first; the vulnerability report for none or any."""
    by_normalized = {_normalized(media_type): media_type for media_type in REPORT_KINDS}
    for item in accept.split(","):
        wanted = _normalized(item)
        if wanted in by_normalized:
            return by_normalized[wanted]
        if wanted in ("*/*", "application/*", "application/json"):
            return VULNERABILITY_REPORT
    return VULNERABILITY_REPORT if not accept.strip() else None


def _json(status: int, document: dict, media_type: str) -> Response:
    return Response(orjson.dumps(document), status, media_type=media_type)


def error(status: int, message: str) -> Response:
    return _json(status, {"error": {"message": message}}, ERROR)
