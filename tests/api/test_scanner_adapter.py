"""The built-in scanner's Harbor Scanner Adapter API at /scanner, over real HTTP: images are
pushed into a Portlog listening on a loopback port, and the adapter pulls them back from that
Portlog's /v2/ as an external adapter would. The loopback address is not allowed to outbound
connections here: the built-in scanner reaches its own Portlog, and nothing else on loopback.
Answers are checked against the adapter spec's schemas (tests/data/scanner-spec)."""

from __future__ import annotations

import base64
import gzip
import json
import re
import socket
import threading
import time
import zipfile
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from adapters.osv_files import osv_file
from adapters.passwords import Argon2SecretHasher
from api.app import create_app
from config.bootstrap import bootstrap
from config.settings import Settings
from domain.context import RequestContext
from scanner.adapter_app import ERROR, ScannerAdapter
from scanner.jobs import ScanJobs
from scanner.reports import SBOM_REPORT, VULNERABILITY_REPORT
from tests.support.layers import gzip_bomb, header, tar_bytes
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of, push_blob
from tests.support.outbound import Trap
from tests.support.scanner_spec import spec_errors
from tests.support.server import ADMIN_PASSWORD, REPO_ROOT
from tests.support.waiting import wait_until

DATA = REPO_ROOT / "tests" / "data"
SITE = "usr/local/lib/python3.11/site-packages"
ADMIN = ("admin", ADMIN_PASSWORD)
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class Portlog:
    """A Portlog serving over HTTP on 127.0.0.1 (uvicorn in a thread of the test process)."""

    def __init__(self, root: Path) -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        settings = Settings(data_dir=root / "data", admin_password=ADMIN_PASSWORD, port=self.port)
        self.services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
        self.services.admin.create_project("team", False, RequestContext("admin", "test-setup"))
        self.services.projections.catch_up()
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.services), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [listener]})
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.http = httpx.Client(base_url=self.url, auth=ADMIN, timeout=60)
        self.key = {"X-ScannerAdapter-API-Key": self.services.built_in_scanner_key}

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join()
        self.services.close()

    def pull_token(self, repository: str) -> str:
        scope = f"repository:{repository}:pull"
        return self.http.get("/service/token", params={"service": "portlog", "scope": scope}).json()["token"]

    def scan_request(self, repository: str, digest: str, **extra) -> dict:
        return {"registry": {"url": self.url, "authorization": f"Bearer {self.pull_token(repository)}"},
                "artifact": {"repository": repository, "digest": digest, "tag": "v1", "mime_type": OCI_MANIFEST},
                **extra}

    def scan(self, request: dict) -> str:
        answer = self.http.post("/scanner/api/v1/scan", json=request, headers={
            **self.key, "Content-Type": "application/vnd.scanner.adapter.scan.request+json; version=1.1"})
        assert answer.status_code == 202, answer.text
        assert answer.headers["content-type"] == "application/vnd.scanner.adapter.scan.response+json; version=1.0"
        assert spec_errors(answer.json(), "ScanResponse") == []
        return answer.json()["id"]

    def report(self, scan_id: str, accept: str = VULNERABILITY_REPORT, **params) -> httpx.Response:
        """The report once the scan is over, having seen 302 + Refresh-After meanwhile or not."""
        deadline = time.monotonic() + 60
        while True:
            answer = self.http.get(f"/scanner/api/v1/scan/{scan_id}/report", params=params,
                                   headers={**self.key, "Accept": accept})
            if answer.status_code != 302:
                return answer
            assert int(answer.headers["Refresh-After"]) > 0
            assert time.monotonic() < deadline, "the scan did not end"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def portlog(tmp_path_factory):
    server = Portlog(tmp_path_factory.mktemp("scanner"))
    osv = tmp_path_factory.mktemp("osv") / "osv.zip"
    with zipfile.ZipFile(osv, "w") as archive:
        for record in (DATA / "osv").glob("*.json"):
            archive.write(record, record.name)
    with osv_file(osv) as data:
        _, position = server.services.vulnerability_imports.record(
            "osv", data.chunks(), data.file_name, data.ecosystems, data.records, RequestContext("admin", "t"))
    server.services.projections.wait_for(position)
    yield server
    server.close()


def push_image(portlog: Portlog, repository: str, tag: str, layers: list[bytes],
               arch: str = "amd64") -> tuple[str, bytes]:
    diff_ids = [digest_of(gzip.decompress(layer)) for layer in layers]
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}},
                        sort_keys=True).encode()
    for blob in (config, *layers):
        push_blob(portlog.http, repository, blob)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": descriptor("application/vnd.oci.image.config.v1+json", config),
                           "layers": [descriptor(LAYER, layer) for layer in layers]}).encode()
    answer = portlog.http.put(f"/v2/{repository}/manifests/{tag}", content=manifest,
                              headers={"Content-Type": OCI_MANIFEST})
    assert answer.status_code == 201, answer.text
    return answer.headers["Docker-Content-Digest"], manifest


def debian_layers() -> list[bytes]:
    packages = DATA / "packages"
    return [gzip.compress(tar_bytes({"usr/lib/os-release": Path("/usr/lib/os-release").read_bytes(),
                                     "var/lib/dpkg/status": (packages / "dpkg-status-bookworm-12.1").read_bytes()}),
                          mtime=0),
            gzip.compress(tar_bytes({f"{SITE}/requests-2.28.1.dist-info/METADATA":
                                     (packages / "requests-2.28.1-METADATA").read_bytes(),
                                     f"{SITE}/urllib3-1.26.18.dist-info/METADATA":
                                     (packages / "urllib3-1.26.18-METADATA").read_bytes()}), mtime=0)]


def test_metadata_follows_the_spec_for_v1_2_and_v1_1_clients(portlog):
    answer = portlog.http.get("/scanner/api/v1/metadata", headers=portlog.key)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/vnd.scanner.adapter.metadata+json; version=1.1"
    document = answer.json()
    assert spec_errors(document, "ScannerAdapterMetadata") == []
    assert document["scanner"]["name"] == "Portlog" and document["scanner"]["vendor"] == "Portlog"
    assert [(c["type"], c["produces_mime_types"]) for c in document["capabilities"]] == [
        ("vulnerability", [VULNERABILITY_REPORT, "application/vnd.scanner.adapter.vuln.report.harbor+json; "
                                                 "version=1.0"]),
        ("sbom", [SBOM_REPORT])]
    assert document["capabilities"][0]["consumes_mime_types"] == [
        OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"]
    updated = document["properties"]["harbor.scanner-adapter/vulnerability-database-updated-at"]
    assert updated.endswith("Z")
    older = portlog.http.get("/scanner/api/v1/metadata", headers={
        **portlog.key, "Accept": "application/vnd.scanner.adapter.metadata+json; version=1.0"})
    assert older.headers["content-type"] == "application/vnd.scanner.adapter.metadata+json; version=1.0"


@pytest.mark.parametrize("headers", [{}, {"X-ScannerAdapter-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic " + base64.b64encode(b"admin:x").decode()}])
def test_without_the_api_key_every_endpoint_answers_401(portlog, headers):
    for method, path in (("GET", "/scanner/api/v1/metadata"), ("POST", "/scanner/api/v1/scan"),
                         ("GET", "/scanner/api/v1/scan/x/report")):
        answer = httpx.request(method, portlog.url + path, headers=headers, content=b"{}")
        assert answer.status_code == 401 and answer.headers["content-type"] == ERROR
        assert spec_errors(answer.json(), "ErrorResponse") == []


def test_the_key_as_a_bearer_credential_is_accepted(portlog):
    key = portlog.services.built_in_scanner_key
    assert httpx.get(portlog.url + "/scanner/api/v1/metadata", headers={"Authorization": f"Bearer {key}"}) \
        .status_code == 200


def test_a_vulnerable_image_is_scanned_into_both_reports(portlog):
    layers = debian_layers()
    digest, _ = push_image(portlog, "team/app", "v1", layers)
    scan_id = portlog.scan(portlog.scan_request("team/app", digest))
    answer = portlog.report(scan_id)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == VULNERABILITY_REPORT
    report = answer.json()
    assert spec_errors(report, "HarborVulnerabilityReport") == []
    assert report["artifact"] == {"repository": "team/app", "digest": digest, "tag": "v1", "mime_type": OCI_MANIFEST}
    assert report["severity"] == "High"
    os_layer, app_layer = (digest_of(layer) for layer in layers)
    assert [(v["id"], v["package"], v["version"], v["fix_version"], v["severity"], v["layer"]["digest"])
            for v in report["vulnerabilities"]] == [
        ("CVE-2023-32681", "requests", "2.28.1", "2.31.0", "Medium", app_layer),
        ("CVE-2024-37891", "urllib3", "1.26.18", "1.26.19", "Medium", app_layer),
        ("CVE-2023-4911", "libc6", "2.36-9+deb12u1", "2.36-9+deb12u3", "High", os_layer),
        ("CVE-2025-9230", "libssl3", "3.0.9-1", "3.0.17-1~deb12u3", "Unknown", os_layer),
        ("CVE-2025-9230", "openssl", "3.0.9-1", "3.0.17-1~deb12u3", "Unknown", os_layer)]
    assert report["vulnerabilities"][2]["layer"]["diff_id"] == digest_of(gzip.decompress(layers[0]))
    sbom = portlog.report(scan_id, SBOM_REPORT, sbom_media_type="application/vnd.cyclonedx+json")
    assert sbom.status_code == 200 and sbom.headers["content-type"] == SBOM_REPORT
    assert spec_errors(sbom.json(), "HarborSbomReport") == []
    document = sbom.json()["sbom"]
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(orjson.dumps(document).decode()) is None
    assert sorted(c["name"] for c in document["components"] if c["type"] == "library") == [
        "libc6", "libssl3", "openssl", "requests", "urllib3", "zlib1g"]
    assert document["metadata"]["component"]["purl"] == \
        f"pkg:oci/app@{digest}?repository_url=127.0.0.1:{portlog.port}/team/app"


def test_basic_credentials_and_an_index_are_scanned_too(portlog):
    clean, _ = push_image(portlog, "team/multi", "arm", [gzip.compress(tar_bytes(
        {"etc/os-release": b"ID=debian\nVERSION_ID=12\n"}), mtime=0)], arch="arm64")
    vulnerable, _ = push_image(portlog, "team/multi", "amd", debian_layers())
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**descriptor(OCI_MANIFEST, portlog.http.get(f"/v2/team/multi/manifests/{d}",
                                                     headers={"Accept": OCI_MANIFEST}).content),
         "platform": {"os": "linux", "architecture": arch}} for d, arch in ((clean, "arm64"), (vulnerable, "amd64"))]})
    answer = portlog.http.put("/v2/team/multi/manifests/v1", content=index, headers={"Content-Type": OCI_INDEX})
    assert answer.status_code == 201, answer.text
    basic = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    scan_id = portlog.scan({"registry": {"url": portlog.url, "authorization": basic},
                            "artifact": {"repository": "team/multi", "digest": digest_of(index.encode()),
                                         "mime_type": OCI_INDEX},
                            "enabled_capabilities": [{"type": "vulnerability"}]})
    report = portlog.report(scan_id).json()
    assert report["severity"] == "High" and len(report["vulnerabilities"]) == 5
    refused = portlog.report(scan_id, SBOM_REPORT)
    assert refused.status_code == 400 and "not asked for the sbom capability" in refused.json()["error"]["message"]


def test_a_failed_scan_answers_500_with_the_reason(portlog):
    missing = "sha256:" + "0" * 64
    scan_id = portlog.scan(portlog.scan_request("team/app", missing))
    answer = portlog.report(scan_id)
    assert answer.status_code == 500 and answer.headers["content-type"] == ERROR
    assert spec_errors(answer.json(), "ErrorResponse") == []
    assert answer.json()["error"]["message"] == \
        f"the registry answered 404 to GET {portlog.url}/v2/team/app/manifests/{missing}"


def test_hostile_images_fail_with_their_reason(portlog):
    size = 100 * 1024 * 1024
    database = gzip.compress(header("var/lib/dpkg/status", size) + bytes(size) + bytes(1024), 6, mtime=0)
    digest, _ = push_image(portlog, "team/hostile", "db", [database])
    reason = portlog.report(portlog.scan(portlog.scan_request("team/hostile", digest))).json()["error"]["message"]
    assert reason == f"var/lib/dpkg/status in layer {digest_of(database)} is {size} bytes; the scanner reads " \
                     "files of at most 64 MiB"
    layer, chunks = gzip_bomb(expanded_gib=2)
    bomb = b"".join(chunks())
    assert digest_of(bomb) == layer.digest
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    for blob in (config.encode(), bomb):
        push_blob(portlog.http, "team/hostile", blob)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": descriptor("application/vnd.oci.image.config.v1+json", config.encode()),
                           "layers": [descriptor(LAYER, bomb)]}).encode()
    assert portlog.http.put("/v2/team/hostile/manifests/bomb", content=manifest,
                            headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    started = time.monotonic()
    answer = portlog.report(portlog.scan(portlog.scan_request("team/hostile", digest_of(manifest))))
    assert "expands more than 500 times its size (a decompression bomb?)" in answer.json()["error"]["message"]
    assert time.monotonic() - started < 30


def test_registries_other_than_portlog_itself_stay_out_of_reach_on_loopback(portlog):
    trap = Trap()
    try:
        request = portlog.scan_request("team/app", "sha256:" + "1" * 64)
        request["registry"]["url"] = f"http://127.0.0.1:{trap.port}"
        reason = portlog.report(portlog.scan(request)).json()["error"]["message"]
        assert f"127.0.0.1:{trap.port} refused: 127.0.0.1 is loopback" in reason
        assert trap.connections() == 0
    finally:
        trap.close()


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{not json", 400, "not valid JSON"),
    (b"[]", 400, "not a JSON object"),
    (b'{"registry": "http://x", "artifact": {}}', 400, "registry must be an object"),
    (b'{"registry": {"url": "http://x"}}', 422, "artifact is required"),
    (b'{"registry": {"url": 5}, "artifact": {}}', 400, "registry.url must be a string"),
    (b'{"registry": {"url": "ftp://x"}, "artifact": {"repository": "a/b", "digest": "sha256:' + b"a" * 64 + b'"}}',
     422, "invalid registry.url"),
    (b'{"registry": {"url": "http://x"}, "artifact": {"repository": "../etc", "digest": "sha256:' + b"a" * 64 + b'"}}',
     422, "invalid artifact.repository"),
    (b'{"registry": {"url": "http://x"}, "artifact": {"repository": "a/b", "digest": "md5:1"}}', 422,
     "invalid artifact.digest"),
    (b'{"registry": {"url": "http://x"}, "artifact": {"repository": "a/b", "digest": "sha256:' + b"a" * 64 +
     b'", "mime_type": "application/vnd.cncf.helm.config.v1+json"}}', 501, "does not scan"),
    (b'{"registry": {"url": "http://x"}, "artifact": {"repository": "a/b", "digest": "sha256:' + b"a" * 64 +
     b'"}, "enabled_capabilities": [{"type": "malware"}]}', 501, "no 'malware' capability"),
    (b'{"registry": {"url": "http://x"}, "artifact": {"repository": "a/b", "digest": "sha256:' + b"a" * 64 +
     b'"}, "enabled_capabilities": [{"type": "sbom", "parameters": {"sbom_media_types": ["application/spdx+json"]}}]}',
     501, "CycloneDX|cyclonedx"),
    (b'{"pad": "' + b"x" * 70_000 + b'"}', 400, "larger than"),
])
def test_bad_scan_requests_get_the_specs_errors(portlog, body, status, message):
    answer = portlog.http.post("/scanner/api/v1/scan", content=body, headers=portlog.key)
    assert answer.status_code == status and answer.headers["content-type"] == ERROR
    assert spec_errors(answer.json(), "ErrorResponse") == []
    assert re.search(message, answer.json()["error"]["message"])


def test_unknown_scans_and_report_types(portlog):
    assert portlog.http.get("/scanner/api/v1/scan/no-such-scan/report", headers=portlog.key).status_code == 404
    digest, _ = push_image(portlog, "team/app", "again", debian_layers())
    scan_id = portlog.scan(portlog.scan_request("team/app", digest))
    assert portlog.report(scan_id).status_code == 200
    raw = portlog.report(scan_id, "application/vnd.scanner.adapter.vuln.report.raw")
    assert raw.status_code == 501 and spec_errors(raw.json(), "ErrorResponse") == []
    spdx = portlog.report(scan_id, SBOM_REPORT, sbom_media_type="application/spdx+json")
    assert spdx.status_code == 400
    legacy = portlog.report(scan_id, "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0")
    assert legacy.status_code == 200 and len(legacy.json()["vulnerabilities"]) == 5
    assert portlog.report(scan_id, "*/*").headers["content-type"] == VULNERABILITY_REPORT


def test_every_process_sees_a_scan_another_process_accepted(portlog):
    """A second adapter on the same database, as a second worker process of `portlog serve`
    would have: it answers for the first one's scan."""
    digest, _ = push_image(portlog, "team/app", "seen", debian_layers())
    scan_id = portlog.scan(portlog.scan_request("team/app", digest))
    services = portlog.services
    other = ScannerAdapter(vulnerabilities=services.vulnerability_data, jobs=ScanJobs(services.db.writer,
                                                                                     services.db.reader),
                           http_client=httpx.Client, scanner=services.scanner_adapter.scanner,
                           api_key=services.built_in_scanner_key)
    try:
        from starlette.testclient import TestClient

        with TestClient(other.app) as elsewhere:
            deadline = time.monotonic() + 60
            while (answer := elsewhere.get(f"/api/v1/scan/{scan_id}/report", headers=portlog.key)).status_code == 302:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert answer.status_code == 200 and len(answer.json()["vulnerabilities"]) == 5
    finally:
        other.close()


def test_a_scan_whose_process_stopped_is_reported_failed_after_its_time(portlog):
    clock = [time.time()]
    jobs = ScanJobs(portlog.services.db.writer, portlog.services.db.reader, clock=lambda: clock[0])
    jobs.create("lost-job", ("vulnerability",), expires_in=60)
    assert jobs.get("lost-job").status == "queued"
    waiting = portlog.http.get("/scanner/api/v1/scan/lost-job/report", headers=portlog.key)
    assert (waiting.status_code, waiting.headers["Refresh-After"], waiting.content) == (302, "2", b"")
    clock[0] += 61
    lost = jobs.get("lost-job")
    assert (lost.status, lost.error) == ("failed", "the scan did not finish in time (the process running it may "
                                                   "have stopped)")
    jobs.finish("lost-job", "{}", None)  # too late: it stays failed
    assert jobs.get("lost-job").status == "failed"


def test_portlog_scans_an_artifact_with_its_built_in_scanner_through_harbors_api(portlog):
    """The whole path: Harbor's scan endpoint, the scan worker, the adapter client, this adapter
    at <portlog>/scanner pulling from <portlog>/v2/, the report stored and served back."""
    digest, _ = push_image(portlog, "team/web", "v1", debian_layers())
    artifact = f"/api/v2.0/projects/team/repositories/web/artifacts/{digest}"
    assert portlog.http.post(f"{artifact}/scan", json={"scan_type": "vulnerability"}).status_code == 202

    def done():
        overview = portlog.http.get(artifact, params={"with_scan_overview": "true"}).json().get("scan_overview")
        summary = next(iter(overview.values())) if overview else None
        return summary if summary and summary["scan_status"] in ("Success", "Error") else None
    summary = wait_until(done, 60, what="the scan")
    assert (summary["scan_status"], summary["severity"], summary["scanner"]["name"]) == ("Success", "High", "Portlog")
    assert summary["summary"]["total"] == 5 and summary["summary"]["fixable"] == 5
    report = portlog.http.get(f"{artifact}/additions/vulnerabilities").json()[VULNERABILITY_REPORT]
    assert sorted(v["id"] for v in report["vulnerabilities"]) == [
        "CVE-2023-32681", "CVE-2023-4911", "CVE-2024-37891", "CVE-2025-9230", "CVE-2025-9230"]
