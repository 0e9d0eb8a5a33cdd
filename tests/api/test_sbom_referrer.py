"""The SBOM of a completed SBOM scan becomes a referrer of its artifact (Harbor's SBOM accessory),
through a real scanner adapter serving the spec over HTTP on loopback."""

from __future__ import annotations

import json
import time

import pytest

from background import scan_jobs
from background.sbom_referrers import HARBOR_SBOM, OCI_LAYER, _value_tokens
from domain.repository import Repository
from tests.support.oci import push_image
from tests.support.scanner_adapter import API_KEY, ScannerAdapter
from tests.support.waiting import wait_until

ART = "/api/v2.0/projects/team/repositories/app/artifacts"


@pytest.fixture(autouse=True)
def quick_workers(monkeypatch):
    for name in ("POLL_SECONDS", "FOLLOW_SECONDS", "CHECK_SECONDS", "MIN_REFRESH_SECONDS"):
        monkeypatch.setattr(scan_jobs, name, 0.05)


@pytest.fixture
def adapter(client):
    server = ScannerAdapter()
    response = client.post("/api/v2.0/scanners", json={
        "name": "fixture", "url": server.url, "auth": "X-ScannerAdapter-API-Key", "access_credential": API_KEY})
    assert response.status_code == 201, response.text
    uuid = response.headers["Location"].rsplit("/", 1)[1]
    assert client.patch(f"/api/v2.0/scanners/{uuid}", json={"is_default": True}).status_code == 200
    yield server
    server.close()


def sbom_scan(client, previous_report: str | None = None) -> dict:
    assert client.post(f"{ART}/v1/scan", json={"scan_type": "sbom"}).status_code == 202

    def done():
        overview = client.get(f"{ART}/v1", params={"with_sbom_overview": "true"}).json().get("sbom_overview", {})
        finished = overview.get("scan_status") == "Success" and overview.get("report_id") != previous_report
        return overview if finished and "sbom_digest" in overview else None

    return wait_until(done, 15, interval=0.05)


def referrers(client, digest: str) -> list[dict]:
    response = client.get(f"/v2/team/app/referrers/{digest}")
    assert response.status_code == 200
    return response.json()["manifests"]


def test_the_sbom_is_a_referrer_of_the_artifact_and_a_rescan_replaces_it(client, services, adapter):
    digest, _ = push_image(client, "team/app", "v1")
    overview = sbom_scan(client)
    assert overview["sbom_repository"] == "team/app"
    [referrer] = referrers(client, digest)
    assert referrer["digest"] == overview["sbom_digest"] and referrer["artifactType"] == HARBOR_SBOM

    manifest = client.get(f"/v2/team/app/manifests/{referrer['digest']}").json()
    assert manifest["subject"]["digest"] == digest and manifest["config"]["mediaType"] == HARBOR_SBOM
    assert manifest["annotations"]["created-by"] == "Portlog"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == OCI_LAYER
    document = client.get(f"/v2/team/app/blobs/{layer['digest']}").json()
    assert document == {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}

    log = client.get(f"{ART}/v1/scan/{overview['report_id']}/log").text
    assert f"SBOM pushed as a referrer of the artifact by scanner:fixture: {referrer['digest']}" in log
    pushed = [e for e in services.registry.events.get(Repository.create_id("team/app"))
              if isinstance(e, Repository.ManifestPushed) and e.digest == referrer["digest"]]
    assert [e.actor for e in pushed] == ["scanner:fixture"]

    time.sleep(1.1)  # a new `created` annotation: another referrer (within one second it is the same one)
    rescanned = sbom_scan(client, overview["report_id"])
    [replacement] = referrers(client, digest)
    assert replacement["digest"] == rescanned["sbom_digest"] != referrer["digest"]
    assert client.get(f"/v2/team/app/manifests/{referrer['digest']}").status_code == 404


def test_a_refused_push_leaves_the_report_and_says_why_in_the_scan_log(client, adapter):
    digest, _ = push_image(client, "team/app", "v1")
    used = client.get("/api/v1/projects/team/quota").json()["usage"]["storage_bytes"]
    assert client.put("/api/v1/projects/team/quota", json={"storage_bytes": used}).status_code == 200
    assert client.post(f"{ART}/v1/scan", json={"scan_type": "sbom"}).status_code == 202

    def logged():
        overview = client.get(f"{ART}/v1", params={"with_sbom_overview": "true"}).json().get("sbom_overview", {})
        if overview.get("scan_status") != "Success":
            return None
        log = client.get(f"{ART}/v1/scan/{overview['report_id']}/log").text
        return (overview, log) if "SBOM not attached" in log else None

    overview, log = wait_until(logged, 15, interval=0.05)
    assert "sbom_digest" not in overview
    assert "SBOM not attached: the SBOM could not be pushed as a referrer" in log and "quota" in log
    assert referrers(client, digest) == []


@pytest.mark.parametrize("document", [
    {"a": [1, 2.5, -3e-7, True, False, None, "é\"\n"], "b": {}, "c": [], "d": [{"e": {"f": [[]]}}]},
    [{"x": 1}, {"y": [2, 3]}],
])
def test_the_sbom_value_is_re_serialised_faithfully(document):
    import ijson

    report = json.dumps({"scanner": {"sbom": 1}, "sbom": document, "after": {"sbom": 2}}).encode()
    text = b"".join(_value_tokens(ijson.parse(report), "sbom"))
    assert json.loads(text) == document
