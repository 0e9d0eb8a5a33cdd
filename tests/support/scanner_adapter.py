"""A small Harbor Scanner Adapter (pluggable-scanner-spec v1.2) serving HTTP on 127.0.0.1: the
peer server that stands in for Trivy's adapter (which cannot be installed offline here). It
answers the spec's metadata, accepts scan requests (recording them, with the registry URL and
the pull token they carry), and answers the first poll of each report with 302 + Refresh-After,
then a fixed, spec-valid report per `Accept` type. `mode` scripts failures: "error" (the report
is a 500 with the spec's error JSON), "garbage" (not JSON), "never" (302 for ever),
"down" (metadata fails). With `verify_pull`, it pulls the artifact's manifest from the registry the
scan request names, with the authorization it carries, as a real adapter does (`pulls`: the statuses)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VULNERABILITY_REPORT = "application/vnd.security.vulnerability.report; version=1.1"
SBOM_REPORT = "application/vnd.security.sbom.report+json; version=1.0"
ERROR_MEDIA_TYPE = "application/vnd.scanner.adapter.error+json; version=1.0"
API_KEY = "adapter-api-key-1"
SCANNER = {"name": "Fixture", "vendor": "Portlog tests", "version": "1.2.3"}
CONSUMES = ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"]
VULNERABILITIES = [
    {"id": "CVE-2023-0001", "package": "openssl", "version": "3.0.2-0ubuntu1", "fix_version": "3.0.2-0ubuntu1.10",
     "severity": "Critical", "description": "A buffer overflow.", "links": ["https://example.com/CVE-2023-0001"],
     "preferred_cvss": {"score_v3": 9.8, "vector_v3": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
     "cwe_ids": ["CWE-120"]},
    {"id": "CVE-2023-0002", "package": "zlib", "version": "1.2.11", "fix_version": "", "severity": "High",
     "description": "An out-of-bounds read.", "links": [], "preferred_cvss": {"score_v3": 7.5}},
    {"id": "CVE-2023-0003", "package": "bash", "version": "5.1", "fix_version": "5.1-6", "severity": "Low",
     "description": "A minor issue.", "links": []},
]


class ScannerAdapter:
    def __init__(self, api_key: str | None = API_KEY, refresh_after: int = 0, prefix: str = "") -> None:
        self.api_key = api_key
        self.prefix = prefix  # where it is mounted: "/scanner" as Portlog's own
        self.refresh_after = refresh_after
        self.mode = "ok"
        self.scan_requests: list[tuple[dict, dict]] = []  # (headers, body) of each POST /scan
        self.report_polls: list[dict] = []  # headers of each report GET
        self.vulnerabilities = list(VULNERABILITIES)
        self.sbom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}  # what SBOM reports carry
        self.verify_pull = False
        self.pulls: list[int] = []
        self.metadata_requests = 0
        self._polled: set[str] = set()
        self._scans: dict[str, dict] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def metadata(self) -> dict:
        return {"scanner": SCANNER, "capabilities": [
            {"type": "vulnerability", "consumes_mime_types": CONSUMES, "produces_mime_types": [VULNERABILITY_REPORT]},
            {"type": "sbom", "consumes_mime_types": CONSUMES, "produces_mime_types": [SBOM_REPORT],
             "additional_attributes": {"sbom_media_types": ["application/vnd.cyclonedx+json"]}}],
            "properties": {"harbor.scanner-adapter/scanner-type": "os-package-vulnerability",
                           "harbor.scanner-adapter/registry-authorization-type": "Bearer"}}

    def report(self, scan: dict, accept: str) -> tuple[str, dict]:
        artifact = scan["artifact"]
        if accept == SBOM_REPORT:
            return SBOM_REPORT, {"generated_at": "2026-01-01T00:00:00Z", "artifact": artifact, "scanner": SCANNER,
                                 "media_type": "application/vnd.cyclonedx+json",
                                 "sbom": self.sbom}
        return VULNERABILITY_REPORT, {"generated_at": "2026-01-01T00:00:00Z", "artifact": artifact,
                                      "scanner": SCANNER, "severity": "Critical",
                                      "vulnerabilities": self.vulnerabilities}

    def _handler(self):
        adapter = self

        class Handler(BaseHTTPRequestHandler):
            def parse_request(self) -> bool:
                if not super().parse_request():
                    return False
                if adapter.prefix and self.path.startswith(adapter.prefix + "/"):
                    self.path = self.path[len(adapter.prefix):]
                return True

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                if self.path == "/api/v1/metadata":
                    adapter.metadata_requests += 1
                    if adapter.mode == "down":
                        return self._error(500, "the adapter is broken")
                    return self._json(200, adapter.metadata(), "application/vnd.scanner.adapter.metadata+json; "
                                                               "version=1.0")
                parts = self.path.split("?")[0].split("/")
                if len(parts) == 6 and parts[:4] == ["", "api", "v1", "scan"] and parts[5] == "report":
                    return self._report(parts[4])
                self._error(404, "not found")

            def do_POST(self) -> None:
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
                if self.path != "/api/v1/scan":
                    return self._error(404, "not found")
                if not self.headers.get("Content-Type", "").startswith(
                        "application/vnd.scanner.adapter.scan.request+json"):
                    return self._error(400, "unexpected content type")
                if not isinstance(body, dict) or not body.get("artifact", {}).get("digest"):
                    return self._error(422, "invalid scan request")
                if adapter.verify_pull:
                    adapter.pulls.append(_pull(body))
                scan_id = str(uuid.uuid4())
                with adapter._lock:
                    adapter.scan_requests.append((dict(self.headers), body))
                    adapter._scans[scan_id] = body
                self._json(202, {"id": scan_id}, "application/vnd.scanner.adapter.scan.response+json; version=1.0")

            def _report(self, scan_id: str) -> None:
                with adapter._lock:
                    adapter.report_polls.append(dict(self.headers))
                    scan = adapter._scans.get(scan_id)
                    first = scan_id not in adapter._polled
                    adapter._polled.add(scan_id)
                if scan is None:
                    return self._error(404, "unknown scan")
                if first or adapter.mode == "never":
                    self.send_response(302)
                    self.send_header("Refresh-After", str(adapter.refresh_after))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if adapter.mode == "error":
                    return self._error(500, "trivy exited with 1: database is missing")
                if adapter.mode == "garbage":
                    return self._raw(200, b'{"vulnerabilities": [{"id": "CVE-1"', VULNERABILITY_REPORT)
                media_type, report = adapter.report(scan, self.headers.get("Accept", ""))
                self._json(200, report, media_type)

            def _authorized(self) -> bool:
                if adapter.api_key is None or self.headers.get("X-ScannerAdapter-API-Key") == adapter.api_key:
                    return True
                self._error(401, "unauthorized")
                return False

            def _error(self, status: int, message: str) -> None:
                self._raw(status, json.dumps({"error": {"message": message}}).encode(), ERROR_MEDIA_TYPE)

            def _json(self, status: int, body: dict, media_type: str) -> None:
                self._raw(status, json.dumps(body).encode(), media_type)

            def _raw(self, status: int, data: bytes, media_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        return Handler


def _pull(scan_request: dict) -> int:
    """The status of GET /v2/<repository>/manifests/<digest> at the scan request's registry."""
    artifact, registry = scan_request["artifact"], scan_request["registry"]
    request = urllib.request.Request(
        f"{registry['url']}/v2/{artifact['repository']}/manifests/{artifact['digest']}",
        headers={"Authorization": registry["authorization"], "Accept": artifact["mime_type"]})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
