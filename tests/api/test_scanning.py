"""Scanner registrations and scans through Harbor's API, against a real scanner adapter serving
the pluggable-scanner-spec over HTTP on loopback (tests/support/scanner_adapter.py)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from background import scan_jobs, webhook_dispatcher
from domain.context import RequestContext
from domain.permissions import Role
from tests.support.metrics import scrape, value
from tests.support.oci import DOCKER_MANIFEST, OCI_INDEX, push_image
from tests.support.scanner_adapter import API_KEY, SBOM_REPORT, VULNERABILITY_REPORT, ScannerAdapter
from tests.support.waiting import wait_until as wait_long

pytestmark = pytest.mark.both_databases

SCANNERS = "/api/v2.0/scanners"
KEY = "scanning-tests-secret-key-0123456789"
ART = "/api/v2.0/projects/team/repositories/app/artifacts"


def wait_until(predicate, timeout: float = 15.0):
    return wait_long(predicate, timeout, interval=0.05)


@pytest.fixture
def settings(settings):
    return replace(settings, secret_key=KEY)  # scale-out nodes share a configured key


@pytest.fixture(autouse=True)
def quick_workers(monkeypatch):
    monkeypatch.setattr(scan_jobs, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(scan_jobs, "FOLLOW_SECONDS", 0.05)
    monkeypatch.setattr(scan_jobs, "CHECK_SECONDS", 0.05)
    monkeypatch.setattr(scan_jobs, "MIN_REFRESH_SECONDS", 0.05)
    monkeypatch.setattr(webhook_dispatcher, "POLL_SECONDS", 0.05)


@pytest.fixture
def adapter():
    server = ScannerAdapter()
    yield server
    server.close()


def register(client, adapter: ScannerAdapter, name: str = "fixture", default: bool = True, **fields) -> str:
    body = {"name": name, "url": adapter.url, "auth": "X-ScannerAdapter-API-Key", "access_credential": API_KEY,
            "description": "the tests' adapter", **fields}
    response = client.post(SCANNERS, json=body)
    assert response.status_code == 201, response.text
    uuid = response.headers["Location"].rsplit("/", 1)[1]
    if default:
        assert client.patch(f"{SCANNERS}/{uuid}", json={"is_default": True}).status_code == 200
    return uuid


def overview_of(client, reference: str, **params) -> dict | None:
    response = client.get(f"{ART}/{reference}", params={"with_scan_overview": "true", **params})
    assert response.status_code == 200, response.text
    return response.json().get("scan_overview")


def scanned(client, reference: str, status: str = "Success") -> dict:
    def done():
        overview = overview_of(client, reference)
        summary = next(iter(overview.values())) if overview else None
        return summary if summary and summary["scan_status"] == status else None

    return wait_until(done)


# Registrations


def test_registration_crud_never_shows_the_credential(client, adapter):
    uuid = register(client, adapter, default=False)
    listed = client.get(SCANNERS).json()
    assert [s["name"] for s in listed] == ["Portlog", "fixture"]
    assert [s["is_default"] for s in listed] == [True, False]  # the built-in is the first default
    shown = client.get(f"{SCANNERS}/{uuid}")
    assert shown.status_code == 200
    body = shown.json()
    assert API_KEY not in shown.text and "access_credential" not in body
    assert body["auth"] == "X-ScannerAdapter-API-Key" and body["url"] == adapter.url
    assert body["health"] == "healthy" and body["adapter"] == "Fixture" and body["vendor"] == "Portlog tests"
    assert body["capabilities"] == {"support_vulnerability": True, "support_sbom": True}

    # An update without a credential keeps the stored one (the adapter still accepts us).
    response = client.put(f"{SCANNERS}/{uuid}", json={"name": "renamed", "url": adapter.url,
                                                       "auth": "X-ScannerAdapter-API-Key", "description": "d2"})
    assert response.status_code == 200, response.text
    assert client.get(f"{SCANNERS}/{uuid}").json()["health"] == "healthy"
    assert client.get(SCANNERS, params={"q": "name=renamed"}).json()[0]["description"] == "d2"

    assert client.patch(f"{SCANNERS}/{uuid}", json={"is_default": True}).status_code == 200
    assert [s["name"] for s in client.get(SCANNERS, params={"q": "is_default=true"}).json()] == ["renamed"]
    deleted = client.delete(f"{SCANNERS}/{uuid}")
    assert deleted.status_code == 200 and deleted.json()["name"] == "renamed"
    assert client.get(f"{SCANNERS}/{uuid}").status_code == 404
    audit = client.get("/api/v2.0/audit-logs", params={"page_size": 100}).text
    assert API_KEY not in audit


def test_registration_refusals(client, adapter):
    built_in = client.get(SCANNERS, params={"q": "name=Portlog"}).json()[0]["uuid"]
    assert client.delete(f"{SCANNERS}/{built_in}").status_code == 403
    assert client.put(f"{SCANNERS}/{built_in}", json={"name": "x", "url": adapter.url}).status_code == 403
    bad = [({"name": "a", "url": "ftp://x"}, 400), ({"name": "a", "url": adapter.url, "auth": "Digest"}, 400),
           ({"name": "a", "url": adapter.url, "auth": "Bearer"}, 400),  # a credential is required
           ({"name": "a", "url": adapter.url}, 400),  # the adapter refuses us without its key
           ({"name": "a", "url": "http://127.0.0.1:1"}, 400)]  # nothing answers there
    for body, status in bad:
        response = client.post(SCANNERS, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["errors"][0]["code"] == "BAD_REQUEST"
    register(client, adapter, default=False)
    assert client.post(SCANNERS, json={"name": "fixture", "url": adapter.url, "auth": "X-ScannerAdapter-API-Key",
                                       "access_credential": API_KEY}).status_code == 409
    assert client.get(f"{SCANNERS}/not-a-uuid").status_code == 404
    assert client.get(SCANNERS, auth=None).status_code == 401


def test_ping_and_metadata(client, adapter):
    settings = {"name": "p", "url": adapter.url, "auth": "X-ScannerAdapter-API-Key", "access_credential": API_KEY}
    assert client.post(f"{SCANNERS}/ping", json=settings).status_code == 200
    wrong = client.post(f"{SCANNERS}/ping", json={**settings, "access_credential": "nope"})
    assert wrong.status_code == 400 and "unauthorized" in wrong.json()["errors"][0]["message"]
    uuid = register(client, adapter, default=False)
    metadata = client.get(f"{SCANNERS}/{uuid}/metadata").json()
    assert metadata["scanner"] == {"name": "Fixture", "vendor": "Portlog tests", "version": "1.2.3"}
    assert [c["type"] for c in metadata["capabilities"]] == ["vulnerability", "sbom"]
    adapter.mode = "down"
    assert client.get(f"{SCANNERS}/{uuid}/metadata").status_code == 503
    assert client.get(f"{SCANNERS}/{uuid}").json()["health"] == "unhealthy"


def test_project_scanner(client, adapter):
    uuid = register(client, adapter, default=False)
    assert client.get("/api/v2.0/projects/team/scanner").json()["name"] == "Portlog"  # the default
    assert client.put("/api/v2.0/projects/team/scanner", json={"uuid": uuid}).status_code == 200
    chosen = client.get("/api/v2.0/projects/team/scanner").json()
    assert chosen["uuid"] == uuid and chosen["health"] == "healthy"
    assert client.get("/api/v2.0/projects/race/scanner").json()["name"] == "Portlog"
    candidates = client.get("/api/v2.0/projects/team/scanner/candidates").json()
    assert {c["name"] for c in candidates} == {"Portlog", "fixture"}
    assert client.put("/api/v2.0/projects/team/scanner", json={"uuid": "00000000-0000-0000-0000-000000000000"}) \
        .status_code == 404
    client.delete(f"{SCANNERS}/{uuid}")
    assert client.get("/api/v2.0/projects/team/scanner").json()["name"] == "Portlog"


# Scans


def test_scan_stores_the_report_and_lists_the_overview(client, services, adapter):
    register(client, adapter)
    digest, _ = push_image(client, "team/app", "v1")
    assert client.get(f"{ART}/v1", params={"with_scan_overview": "true"}).json().get("scan_overview") is None
    response = client.post(f"{ART}/v1/scan")
    assert response.status_code == 202, response.text
    summary = scanned(client, "v1")
    assert summary["severity"] == "Critical" and summary["complete_percent"] == 100
    assert summary["summary"] == {"total": 3, "fixable": 2, "summary": {"Critical": 1, "High": 1, "Low": 1}}
    assert summary["scanner"] == {"name": "Fixture", "vendor": "Portlog tests", "version": "1.2.3"}
    samples = scrape(client)  # the scan in the metrics (docs/operations.md)
    assert value(samples, "portlog_scanned_artifacts", severity="Critical") == 1
    assert value(samples, "portlog_scans", status="Success") == 1
    assert value(samples, "harbor_task_queue_size", type="IMAGE_SCAN") == 0
    listed = client.get(f"{ART}", params={"with_scan_overview": "true"}).json()
    assert listed[0]["scan_overview"][VULNERABILITY_REPORT]["report_id"] == summary["report_id"]

    # The adapter was asked with a pull token for this one repository, and polled (302 first).
    headers, request = adapter.scan_requests[-1]
    assert request["artifact"] == {"repository": "team/app", "digest": digest, "tag": "v1",
                                   "mime_type": "application/vnd.oci.image.manifest.v1+json"}
    assert request["enabled_capabilities"][0]["type"] == "vulnerability"
    assert headers["Content-Type"] == "application/vnd.scanner.adapter.scan.request+json; version=1.1"
    assert [poll["Accept"] for poll in adapter.report_polls] == [VULNERABILITY_REPORT] * 2
    token = request["registry"]["authorization"]
    assert token.startswith("Bearer ")
    pulled = client.get(f"/v2/team/app/manifests/{digest}", auth=None, headers={"Authorization": token})
    assert pulled.status_code == 200
    assert client.get("/v2/race/app/manifests/v1", auth=None, headers={"Authorization": token}).status_code == 401
    pushed = client.put("/v2/team/app/manifests/v2", auth=None, content=b"{}",
                        headers={"Authorization": token, "Content-Type": DOCKER_MANIFEST})
    assert pushed.status_code == 401

    # The report, keyed by its media type; the overview's CVE ids for the pull policies.
    vulnerabilities = client.get(f"{ART}/v1/additions/vulnerabilities").json()
    report = vulnerabilities[VULNERABILITY_REPORT]
    assert [v["id"] for v in report["vulnerabilities"]] == ["CVE-2023-0001", "CVE-2023-0002", "CVE-2023-0003"]
    overview = services.scans.overview("team/app", digest)
    assert overview.status == "Success" and overview.cve_ids == ("CVE-2023-0001", "CVE-2023-0002", "CVE-2023-0003")
    findings = services.scans.findings("team/app", digest)
    assert [(f.id, f.fix_version, f.severity, f.score_v3) for f in findings][:2] == [
        ("CVE-2023-0001", "3.0.2-0ubuntu1.10", "Critical", 9.8), ("CVE-2023-0002", "", "High", 7.5)]
    log = client.get(f"{ART}/v1/scan/{summary['report_id']}/log")
    assert log.status_code == 200 and "completed by Fixture 1.2.3: 3 vulnerabilities" in log.text
    assert services.blobs.stat(overview.report_digest) is not None
    assert services.references.kept().get(overview.report_digest)  # never collected


def test_as_of_answers_what_was_known_then(client, services, adapter):
    register(client, adapter)
    digest, _ = push_image(client, "team/app", "v1")
    client.post(f"{ART}/v1/scan")
    first = scanned(client, "v1")
    between = time.time()
    time.sleep(0.05)
    adapter.vulnerabilities = adapter.vulnerabilities[:1]
    client.post(f"{ART}/v1/scan")
    wait_until(lambda: (s := scanned(client, "v1")) and s["report_id"] != first["report_id"] and s)
    assert overview_of(client, "v1")[VULNERABILITY_REPORT]["summary"]["total"] == 1
    from datetime import datetime, timezone
    moment = datetime.fromtimestamp(between, timezone.utc)
    then = client.get(f"{ART}/v1/additions/vulnerabilities", params={"as_of": moment.isoformat()}).json()
    assert len(then[VULNERABILITY_REPORT]["vulnerabilities"]) == 3
    assert [f.id for f in services.scans.findings("team/app", digest, as_of=moment)] == [
        "CVE-2023-0001", "CVE-2023-0002", "CVE-2023-0003"]
    before = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert client.get(f"{ART}/v1/additions/vulnerabilities", params={"as_of": before.isoformat()}).json() == {}


def test_sbom_scan(client, adapter):
    register(client, adapter)
    push_image(client, "team/app", "v1")
    assert client.post(f"{ART}/v1/scan", json={"scan_type": "sbom"}).status_code == 202

    def sbom():
        response = client.get(f"{ART}/v1", params={"with_sbom_overview": "true"}).json()
        return response.get("sbom_overview", {}).get("scan_status") == "Success" and response["sbom_overview"]

    overview = wait_until(sbom)
    assert overview["scanner"]["name"] == "Fixture"
    assert adapter.report_polls[-1]["Accept"] == SBOM_REPORT
    assert client.post(f"{ART}/v1/scan", json={"scan_type": "nope"}).status_code == 400


@pytest.mark.parametrize("mode, reason", [
    ("error", "trivy exited with 1: database is missing"),
    ("garbage", "the report is not valid JSON"),
    ("never", "no report within 1 s"),
])
def test_a_failing_adapter_fails_the_scan_and_nothing_else(client, services, adapter, monkeypatch, mode, reason):
    monkeypatch.setattr(scan_jobs, "SCAN_TIMEOUT_SECONDS", 1)
    register(client, adapter)
    adapter.mode = mode
    push_image(client, "team/app", "v1")
    client.post(f"{ART}/v1/scan")
    summary = scanned(client, "v1", "Error")
    assert summary["summary"] is None
    log = client.get(f"{ART}/v1/scan/{summary['report_id']}/log").text
    assert "failed: " in log and reason in log
    # Pushes and pulls go on.
    push_image(client, "team/app", "v2", seed="2")
    assert client.get("/v2/team/app/manifests/v2").status_code == 200


def test_stop(client, services, adapter):
    register(client, adapter)
    adapter.mode = "never"
    push_image(client, "team/app", "v1")
    assert client.post(f"{ART}/v1/scan/stop", json={"scan_type": "vulnerability"}).status_code == 400  # none yet
    client.post(f"{ART}/v1/scan")
    scanned(client, "v1", "Running")
    assert client.post(f"{ART}/v1/scan").status_code == 409  # one at a time
    assert client.post(f"{ART}/v1/scan/stop", json={"scan_type": "vulnerability"}).status_code == 202
    assert scanned(client, "v1", "Stopped")["summary"] is None
    polls = len(adapter.report_polls)
    time.sleep(0.3)
    assert len(adapter.report_polls) <= polls + 1  # the worker noticed and stopped polling
    assert client.post(f"{ART}/v1/scan").status_code == 202  # a new scan may start


def test_scan_of_an_index_scans_its_images(client, adapter):
    import json

    register(client, adapter)
    first, manifest_a = push_image(client, "team/app", "a", seed="a")
    second, manifest_b = push_image(client, "team/app", "b", seed="b")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": first, "size": len(manifest_a),
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": second, "size": len(manifest_b),
         "platform": {"architecture": "arm64", "os": "linux"}}]}).encode()
    assert client.put("/v2/team/app/manifests/multi", content=index,
                      headers={"Content-Type": OCI_INDEX}).status_code == 201
    assert client.post(f"{ART}/multi/scan").status_code == 202
    merged = scanned(client, "multi")
    assert merged["summary"]["total"] == 6 and merged["summary"]["summary"]["Critical"] == 2
    assert {request["artifact"]["digest"] for _, request in adapter.scan_requests} == {first, second}


def test_permissions(client, services, adapter):
    register(client, adapter)
    push_image(client, "team/app", "v1")
    admin = RequestContext("admin", "t")
    services.admin.create_user("dev", "Dev-Pass-1", "dev@example.com", False, admin)
    services.admin.set_member("team", "dev", Role.DEVELOPER, None, admin)
    services.projections.catch_up()
    assert client.post(f"{ART}/v1/scan", auth=("dev", "Dev-Pass-1")).status_code == 403
    assert client.get(SCANNERS, auth=("dev", "Dev-Pass-1")).status_code == 403
    assert client.get("/api/v2.0/projects/team/scanner", auth=("dev", "Dev-Pass-1")).status_code == 200
    assert client.post(f"{ART}/v1/scan", auth=None).status_code == 401


def test_scanning_what_is_not_there(client, adapter):
    register(client, adapter)
    push_image(client, "team/app", "v1")
    assert client.post(f"{ART}/sha256:{'0' * 64}/scan").status_code == 404
    assert client.post("/api/v2.0/projects/team/repositories/nope/artifacts/v1/scan").status_code == 404
    assert client.post(f"{ART}/v1/scan", content=b"{not json").status_code == 400


def test_the_pull_policy_judges_a_scanned_image_by_the_findings_its_allowlist_leaves(client, adapter):
    """The report: CVE-2023-0001 Critical, CVE-2023-0002 High, CVE-2023-0003 Low."""
    register(client, adapter)
    push_image(client, "team/app", "v1")
    project = "/api/v2.0/projects/team"

    def policy(severity: str, allowed: list[str]) -> None:
        body = {"metadata": {"prevent_vul": "true", "severity": severity, "reuse_sys_cve_allowlist": "false"},
                "cve_allowlist": {"items": [{"cve_id": cve} for cve in allowed]}}
        assert client.put(project, json=body).status_code == 200

    def pull_status() -> int:
        return client.get("/v2/team/app/manifests/v1").status_code

    policy("high", [])
    refused = client.get("/v2/team/app/manifests/v1")
    assert refused.status_code == 412 and "without vulnerability scanning" in refused.json()["errors"][0]["message"]
    assert client.post(f"{ART}/v1/scan").status_code == 202
    scanned(client, "v1")
    refused = client.get("/v2/team/app/manifests/v1")
    assert refused.status_code == 412, refused.text
    assert "current image with 3 vulnerabilities cannot be pulled" in refused.json()["errors"][0]["message"]
    policy("high", ["CVE-2023-0001"])  # the High one is left
    assert pull_status() == 412
    policy("critical", ["CVE-2023-0001"])  # the gravest left is High, under Critical
    assert pull_status() == 200
    policy("high", ["CVE-2023-0001", "CVE-2023-0002"])  # only the Low one is left
    assert pull_status() == 200
    policy("low", ["CVE-2023-0001", "CVE-2023-0002"])
    assert pull_status() == 412


# Auto-scan, scan all, webhooks, rebuild


def test_a_push_to_an_auto_scan_project_is_scanned_without_a_request(client, services, adapter):
    register(client, adapter)
    assert client.put("/api/v2.0/projects/team", json={"metadata": {"auto_scan": "true"}}).status_code == 200
    digest, _ = push_image(client, "team/app", "v1")
    push_image(client, "race/app", "v1")
    summary = scanned(client, "v1")
    assert summary["summary"]["total"] == 3
    assert [request["artifact"]["tag"] for _, request in adapter.scan_requests] == ["v1"]
    time.sleep(0.3)  # the follower has gone past the push into race: no scan there
    assert len(adapter.scan_requests) == 1
    assert services.scans.overview("race/app", digest) is None
    log = client.get(f"{ART}/v1/scan/{summary['report_id']}/log").text
    assert "requested by admin (event)" in log


def test_scan_all_with_metrics_and_stop(client, services, adapter):
    register(client, adapter)
    push_image(client, "team/app", "v1")
    push_image(client, "team/other", "v1", seed="other")
    assert client.get("/api/v2.0/scans/all/metrics").json() == {"total": 0, "completed": 0, "ongoing": False}
    response = client.post("/api/v2.0/system/scanAll/schedule", json={"schedule": {"type": "Manual"}})
    assert response.status_code == 201, response.text

    def finished():
        stats = client.get("/api/v2.0/scans/all/metrics").json()
        return stats if stats["total"] == 2 and not stats["ongoing"] else None

    stats = wait_until(finished)
    assert stats["completed"] == 2 and stats["metrics"]["Success"] == 2 and stats["trigger"] == "Manual"
    assert scanned(client, "v1")["summary"]["total"] == 3

    # A schedule, Harbor's way; then a run stopped half way.
    assert client.post("/api/v2.0/system/scanAll/schedule",
                       json={"schedule": {"type": "Daily"}}).status_code == 201
    assert client.get("/api/v2.0/system/scanAll/schedule").json()["schedule"]["type"] == "Daily"
    assert client.post("/api/v2.0/system/scanAll/schedule",
                       json={"schedule": {"type": "Weekly"}}).status_code == 412
    assert client.put("/api/v2.0/system/scanAll/schedule",
                      json={"schedule": {"type": "Custom", "cron": "0 0 3 * * *"}}).status_code == 200
    assert client.get("/api/v2.0/system/scanAll/schedule").json()["schedule"]["cron"] == "0 0 3 * * *"
    assert client.put("/api/v2.0/system/scanAll/schedule", json={"schedule": {"type": "None"}}).status_code == 200
    assert client.get("/api/v2.0/system/scanAll/schedule").json()["schedule"]["type"] == "None"
    adapter.mode = "never"
    client.post("/api/v2.0/system/scanAll/schedule", json={"schedule": {"type": "Manual"}})
    wait_until(lambda: client.get("/api/v2.0/scans/all/metrics").json()["metrics"]["Running"] >= 1)
    assert client.post("/api/v2.0/system/scanAll/stop").status_code == 202
    stats = wait_until(lambda: (s := client.get("/api/v2.0/scans/all/metrics").json()) and not s["ongoing"] and s)
    assert stats["metrics"]["Stopped"] == 2
    assert client.get("/api/v2.0/scans/all/metrics", auth=None).status_code == 401


def test_scanning_webhooks_carry_harbors_payload(client, services, adapter, monkeypatch):
    from tests.api.test_webhooks import Receiver

    receiver = Receiver()
    try:
        register(client, adapter)
        policy = {"name": "scans", "enabled": True, "event_types": ["SCANNING_COMPLETED", "SCANNING_FAILED"],
                  "targets": [{"type": "http", "address": receiver.url, "payload_format": "Default"}]}
        assert client.post("/api/v2.0/projects/team/webhook/policies", json=policy).status_code == 201
        digest, _ = push_image(client, "team/app", "v1")
        client.post(f"{ART}/v1/scan")
        summary = scanned(client, "v1")
        body = wait_until(lambda: receiver.bodies("SCANNING_COMPLETED") and receiver.bodies("SCANNING_COMPLETED")[0])
        assert body["type"] == "SCANNING_COMPLETED" and body["operator"] == "admin"
        data = body["event_data"]
        assert data["scan"] == {"scan_type": "vulnerability"}
        assert data["repository"] == {"name": "app", "namespace": "team", "repo_full_name": "team/app",
                                      "repo_type": "private"}
        resource = data["resources"][0]
        assert resource["digest"] == digest and resource["tag"] == "v1"
        assert resource["resource_url"] == f"{services.settings.registry_address}/team/app:v1"
        overview = resource["scan_overview"][VULNERABILITY_REPORT]
        assert overview["report_id"] == summary["report_id"] and overview["scan_status"] == "Success"
        assert overview["severity"] == "Critical" and overview["summary"]["summary"] == summary["summary"]["summary"]
        assert overview["scanner"]["name"] == "Fixture"

        adapter.mode = "error"
        client.post(f"{ART}/v1/scan")
        failed = wait_until(lambda: receiver.bodies("SCANNING_FAILED") and receiver.bodies("SCANNING_FAILED")[0])
        assert failed["event_data"]["resources"][0]["scan_overview"][VULNERABILITY_REPORT]["scan_status"] == "Error"
        # The same events on the public event stream, as CloudEvents.
        events = client.get("/api/v1/events", params={"type": "scan.completed"})
        assert events.status_code == 200, events.text
        assert any(e["type"] == "io.portlog.scan.completed" and e["subject"] == "team/app:v1"
                   and e["data"]["digest"] == digest and e["data"]["project"] == "team"
                   and e["data"]["summary"] == {"Critical": 1, "High": 1, "Low": 1} for e in events.json())
    finally:
        receiver.close()


def test_rebuilt_read_models_are_the_same(client, services, adapter):
    from sqlalchemy import select

    from projections import scanners, scans

    uuid = register(client, adapter)
    client.put("/api/v2.0/projects/team/scanner", json={"uuid": uuid})
    push_image(client, "team/app", "v1")
    client.post(f"{ART}/v1/scan")
    scanned(client, "v1")
    client.post(f"{ART}/v1/scan", json={"scan_type": "sbom"})
    adapter.mode = "error"
    push_image(client, "team/app", "v2", seed="2")
    client.post(f"{ART}/v2/scan")
    scanned(client, "v2", "Error")
    client.post("/api/v2.0/system/scanAll/schedule", json={"schedule": {"type": "Manual"}})
    wait_until(lambda: not client.get("/api/v2.0/scans/all/metrics").json()["ongoing"])
    tables = [*scanners.metadata.sorted_tables, *scans.metadata.sorted_tables]

    def dump():
        with services.db.reader.connect() as conn:
            return {table.name: sorted(tuple(row) for row in conn.execute(select(table))) for table in tables}

    before = dump()
    assert before["scan_reports"] and before["scan_all_runs"] and before["scanner_projects"]
    services.projections.rebuild()
    assert dump() == before
