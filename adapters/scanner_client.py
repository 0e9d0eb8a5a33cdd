"""A client of the Harbor Scanner Adapter API (goharbor/pluggable-scanner-spec, v1.0 to v1.2):
`GET /api/v1/metadata`, `POST /api/v1/scan`, `GET /api/v1/scan/{id}/report` with `Accept` per report
type (302 + `Refresh-After` while the report is being made). Any adapter written to the spec
(Trivy's, Anchore's, Sysdig's, Portlog's own at `<portlog>/scanner`) is reached the same way.

Every connection goes through the outbound guard; every request has connect and read timeouts;
answers are bounded (metadata and errors are small, a report is streamed to the caller's sink and
cut at `max_report_bytes`). Authorization is the registration's: `Basic` (base64 of the
credential, Harbor's way), `Bearer`, or the `X-ScannerAdapter-API-Key` header. Failures raise
ScannerError with the adapter's own message when it sent the spec's error JSON.

    with ScannerClient(url, "Bearer", token, outbound=guard) as adapter:
        metadata = adapter.metadata()
        scan_id = adapter.submit(request)
        answer = adapter.report(scan_id, VULNERABILITY_REPORT, sink)   # NotReady or ReportStored
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Callable

import httpx
import orjson

from adapters.outbound import OutboundGuard, OutboundRefused

API = "/api/v1"
METADATA_MEDIA_TYPE = "application/vnd.scanner.adapter.metadata+json; version=1.0"
METADATA_MEDIA_TYPES = "application/vnd.scanner.adapter.metadata+json; version=1.1, " + METADATA_MEDIA_TYPE
SCAN_REQUEST_V1_0 = "application/vnd.scanner.adapter.scan.request+json; version=1.0"
SCAN_REQUEST_V1_1 = "application/vnd.scanner.adapter.scan.request+json; version=1.1"  # with enabled_capabilities
SCAN_RESPONSE_MEDIA_TYPE = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
VULNERABILITY_REPORT = "application/vnd.security.vulnerability.report; version=1.1"
HARBOR_NATIVE_REPORT = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
SBOM_REPORT = "application/vnd.security.sbom.report+json; version=1.0"
CYCLONEDX = "application/vnd.cyclonedx+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# The report types Portlog reads, per scan type, in order of preference.
REPORT_TYPES = {"vulnerability": (VULNERABILITY_REPORT, HARBOR_NATIVE_REPORT), "sbom": (SBOM_REPORT,)}

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0
MAX_SMALL_ANSWER_BYTES = 1024 * 1024  # metadata, scan responses, error bodies
MAX_REPORT_BYTES = 64 * 1024 * 1024
DEFAULT_REFRESH_SECONDS = 5.0  # Harbor's, when a 302 names none
MAX_REFRESH_SECONDS = 300.0
USER_AGENT = "portlog-scanner-client/1"


class ScannerError(Exception):
    """The adapter could not be reached, or answered other than the spec says."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class NotReady:
    """302: the report is being made; ask again after `refresh_after` seconds."""

    refresh_after: float


@dataclass(frozen=True)
class ReportReceived:
    media_type: str  # as the adapter labelled it
    size: int


def authorization_headers(auth: str, credential: str | None) -> dict[str, str]:
    """The header a registration's auth kind sends (Harbor's authorizers)."""
    if not auth:
        return {}
    if not credential:
        raise ScannerError(f"the {auth} authorization needs an access credential")
    if auth == "Basic":
        return {"Authorization": "Basic " + base64.b64encode(credential.encode()).decode()}
    if auth == "Bearer":
        return {"Authorization": f"Bearer {credential}"}
    if auth == "X-ScannerAdapter-API-Key":
        return {"X-ScannerAdapter-API-Key": credential}
    raise ScannerError(f"unsupported authorization {auth!r}")


class ScannerClient:
    def __init__(self, url: str, auth: str = "", credential: str | None = None, *, skip_cert_verify: bool = False,
                 outbound: OutboundGuard | None = None, connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
                 read_timeout: float = READ_TIMEOUT_SECONDS, max_report_bytes: int = MAX_REPORT_BYTES) -> None:
        self.url = url.rstrip("/")
        self.max_report_bytes = max_report_bytes
        transport = (outbound or OutboundGuard()).httpx_transport(verify=not skip_cert_verify)
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False,
                                  headers={"User-Agent": USER_AGENT, **authorization_headers(auth, credential)})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ScannerClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def metadata(self) -> dict:
        """The adapter's metadata, checked as Harbor checks it (scanner name, vendor and version;
        capabilities consuming Docker image manifests and producing a report type Portlog reads)."""
        with self._send("GET", "/metadata", headers={"Accept": METADATA_MEDIA_TYPES}) as response:
            body = self._small_json(response, 200, "GET /metadata")
        return check_metadata(body)

    def submit(self, scan_request: dict, media_type: str = SCAN_REQUEST_V1_0) -> str:
        """Posts a scan request; returns the adapter's id of it."""
        content = orjson.dumps(scan_request)
        with self._send("POST", "/scan", content=content, headers={
                "Content-Type": media_type, "Accept": SCAN_RESPONSE_MEDIA_TYPE}) as response:
            body = self._small_json(response, 202, "POST /scan")
        scan_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(scan_id, str) or not scan_id or len(scan_id) > 256 or "/" in scan_id:
            raise ScannerError("the adapter accepted the scan without a usable id", 202)
        return scan_id

    def report(self, scan_id: str, media_type: str, sink: Callable[[bytes], None],
               sbom_media_type: str | None = None) -> NotReady | ReportReceived:
        """Asks for the report once: NotReady on 302, or the report's bytes handed to `sink` as
        they arrive (ScannerError past `max_report_bytes`, or on any other answer)."""
        params = {"sbom_media_type": sbom_media_type} if sbom_media_type else None
        with self._send("GET", f"/scan/{scan_id}/report", headers={"Accept": media_type},
                        params=params) as response:
            if response.status_code == 302:
                return NotReady(_refresh_after(response.headers.get("refresh-after")))
            if response.status_code != 200:
                raise self._failure(response, f"GET /scan/{scan_id}/report")
            size = 0
            try:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_report_bytes:
                        raise ScannerError(f"the report is larger than {self.max_report_bytes} bytes", 200)
                    sink(chunk)
            except httpx.HTTPError as error:
                raise ScannerError(f"the report could not be read: {_describe(error)}") from None
            return ReportReceived(response.headers.get("content-type", ""), size)

    # --- plumbing ---

    def _send(self, method: str, path: str, **kwargs):
        request = self._http.build_request(method, self.url + API + path, **kwargs)
        try:
            return _Answer(self._http.send(request, stream=True))
        except OutboundRefused as refused:
            raise ScannerError(str(refused)) from None
        except httpx.HTTPError as error:
            raise ScannerError(f"the scanner adapter at {self.url} did not answer: {_describe(error)}") from None

    def _small_json(self, response: httpx.Response, expected: int, what: str) -> object:
        if response.status_code != expected:
            raise self._failure(response, what)
        return _json(_bounded_body(response), what, response.status_code)

    def _failure(self, response: httpx.Response, what: str) -> ScannerError:
        """The spec's error JSON {"error": {"message": ...}} when the adapter sent one."""
        status = response.status_code
        try:
            body = orjson.loads(_bounded_body(response))
        except (ScannerError, orjson.JSONDecodeError):
            body = None
        message = body.get("error", {}).get("message") if isinstance(body, dict) and \
            isinstance(body.get("error"), dict) else None
        if isinstance(message, str) and message:
            return ScannerError(f"{what}: {status}: {message[:1000]}", status)
        return ScannerError(f"{what}: unexpected status {status}", status)


class _Answer:
    """A streamed response, closed on leaving the `with`."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    def __enter__(self) -> httpx.Response:
        return self.response

    def __exit__(self, *exc_info) -> None:
        self.response.close()


def _bounded_body(response: httpx.Response, limit: int = MAX_SMALL_ANSWER_BYTES) -> bytes:
    data = bytearray()
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > limit:
                raise ScannerError(f"the adapter's answer is larger than {limit} bytes", response.status_code)
    except httpx.HTTPError as error:
        raise ScannerError(f"the adapter's answer could not be read: {_describe(error)}") from None
    return bytes(data)


def _json(data: bytes, what: str, status: int) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ScannerError(f"{what}: the adapter's answer is not JSON", status) from None


def _refresh_after(value: str | None) -> float:
    try:
        seconds = float(value) if value is not None else DEFAULT_REFRESH_SECONDS
    except ValueError:
        seconds = DEFAULT_REFRESH_SECONDS
    if seconds != seconds:  # NaN
        seconds = DEFAULT_REFRESH_SECONDS
    return min(max(seconds, 0.0), MAX_REFRESH_SECONDS)


def check_metadata(body: object) -> dict:
    if not isinstance(body, dict):
        raise ScannerError("the adapter's metadata is not a JSON object")
    scanner = body.get("scanner")
    if not isinstance(scanner, dict) or not all(isinstance(scanner.get(k), str) and scanner[k]
                                                for k in ("name", "vendor", "version")):
        raise ScannerError("invalid scanner in metadata: name, vendor and version are required")
    capabilities = body.get("capabilities")
    if not isinstance(capabilities, list) or not capabilities:
        raise ScannerError("invalid capabilities in metadata")
    readable = {media for types in REPORT_TYPES.values() for media in types}
    for capability in capabilities:
        if not isinstance(capability, dict):
            raise ScannerError("invalid capabilities in metadata")
        consumes, produces = capability.get("consumes_mime_types"), capability.get("produces_mime_types")
        if not isinstance(consumes, list) or DOCKER_MANIFEST not in consumes:
            raise ScannerError(f"missing {DOCKER_MANIFEST} in consumes_mime_types")
        if not isinstance(produces, list) or not readable & set(produces):
            raise ScannerError(f"missing {VULNERABILITY_REPORT}, {HARBOR_NATIVE_REPORT} or {SBOM_REPORT} "
                               "in produces_mime_types")
    properties = body.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise ScannerError("invalid properties in metadata")
    return body


@dataclass(frozen=True)
class Capability:
    """What an adapter offers for one scan type and artifact media type."""

    report_media_type: str  # the report type to ask for
    typed: bool  # the adapter names capability types (spec v1.2): send enabled_capabilities


def capability_for(metadata: dict, scan_type: str, mime_type: str) -> Capability | None:
    """The report type to ask of the adapter for `scan_type` on an artifact of `mime_type`; None
    when it cannot. A capability without a type is a vulnerability one (spec v1.0/1.1)."""
    typed = any(isinstance(c, dict) and c.get("type") for c in metadata["capabilities"])
    for capability in metadata["capabilities"]:
        kind = capability.get("type") or "vulnerability"
        if kind != scan_type or mime_type not in capability["consumes_mime_types"]:
            continue
        for wanted in REPORT_TYPES[scan_type]:
            if wanted in capability["produces_mime_types"]:
                return Capability(wanted, typed)
    return None


def harbor_capabilities(metadata: dict) -> dict:
    """Harbor's `capabilities` of a registration: {"support_vulnerability": …, "support_sbom": …}."""
    types = {c.get("type") for c in metadata["capabilities"]}
    if types == {None} or types == {""}:
        return {"support_vulnerability": True, "support_sbom": False}
    return {**({"support_vulnerability": True} if "vulnerability" in types else {}),
            **({"support_sbom": True} if "sbom" in types else {})}


def _describe(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text[:500]
