"""The SBOM an SBOM scan produced, served as Harbor serves an SBOM's `additions/sbom` — on the SBOM
accessory the scan attached, and (Portlog's addition) on the scanned artifact itself: the
document the adapter's SBOM report carries (CycloneDX JSON), against the spec-following adapter
on loopback (tests/support/scanner_adapter.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from background import scan_jobs
from tests.api.test_scanning import ART, KEY, register, wait_until
from tests.support.oci import push_image
from tests.support.scanner_adapter import ScannerAdapter

COMPONENTS = [
    {"type": "library", "name": "openssl", "version": "3.0.2-0ubuntu1", "purl": "pkg:deb/ubuntu/openssl@3.0.2-0ubuntu1",
     "bom-ref": "pkg:deb/ubuntu/openssl@3.0.2-0ubuntu1"},
    {"type": "library", "name": "requests", "version": "2.31.0", "purl": "pkg:pypi/requests@2.31.0",
     "licenses": [{"license": {"id": "Apache-2.0"}}], "properties": [{"name": "size", "value": 1.5e3}]},
]


@pytest.fixture
def settings(settings):
    return replace(settings, secret_key=KEY)


@pytest.fixture(autouse=True)
def quick_workers(monkeypatch):
    for name in ("POLL_SECONDS", "FOLLOW_SECONDS", "CHECK_SECONDS", "MIN_REFRESH_SECONDS"):
        monkeypatch.setattr(scan_jobs, name, 0.05)


@pytest.fixture
def adapter():
    server = ScannerAdapter()
    yield server
    server.close()


def sbom_done(client, reference: str, report_id: str | None = None) -> dict:
    def done():
        overview = client.get(f"{ART}/{reference}", params={"with_sbom_overview": "true"}).json().get("sbom_overview")
        finished = overview and overview["scan_status"] == "Success" and overview["report_id"] != report_id
        return overview if finished else None

    return wait_until(done)


def test_the_sbom_of_an_sbom_scan_is_served_whole_and_as_of(client, adapter):
    register(client, adapter)
    push_image(client, "team/app", "v1")
    assert client.get(f"{ART}/v1/additions/sbom").status_code == 404  # never generated
    adapter.sbom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": "urn:uuid:1",
                    "metadata": {"component": {"name": "team/app", "type": "container"}}, "components": COMPONENTS}
    assert client.post(f"{ART}/v1/scan", json={"scan_type": "sbom"}).status_code == 202
    first = sbom_done(client, "v1")

    response = client.get(f"{ART}/v1/additions/sbom")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.cyclonedx+json"
    assert response.json() == adapter.sbom  # the document, not the report around it

    # Harbor's way: the addition of the SBOM accessory the scan attached (its one layer).
    accessory = wait_until(lambda: client.get(f"{ART}/v1", params={"with_sbom_overview": "true"})
                           .json()["sbom_overview"].get("sbom_digest"))
    attached = client.get(f"{ART}/{accessory}/additions/sbom")
    assert attached.status_code == 200, attached.text
    assert attached.headers["content-type"] == "application/vnd.goharbor.harbor.sbom.v1"
    assert attached.json() == adapter.sbom
    # An artifact that is neither an SBOM accessory nor SBOM-scanned has none.
    other, _ = push_image(client, "team/app", "v2", seed="other")
    assert client.get(f"{ART}/{other}/additions/sbom").status_code == 404

    # A vulnerability scan is no SBOM; a later SBOM scan replaces it, and as_of finds the first.
    client.post(f"{ART}/v1/scan")
    between = datetime.now(timezone.utc)
    time.sleep(0.05)
    adapter.sbom = {**adapter.sbom, "components": COMPONENTS[:1]}
    assert client.post(f"{ART}/v1/scan", json={"scan_type": "sbom"}).status_code == 202
    sbom_done(client, "v1", first["report_id"])
    assert [c["name"] for c in client.get(f"{ART}/v1/additions/sbom").json()["components"]] == ["openssl"]
    then = client.get(f"{ART}/v1/additions/sbom", params={"as_of": between.isoformat()})
    assert [c["name"] for c in then.json()["components"]] == ["openssl", "requests"]
    assert client.get(f"{ART}/v1/additions/sbom", params={"as_of": "2000-01-01T00:00:00Z"}).status_code == 404
    bad = client.get(f"{ART}/v1/additions/sbom", params={"as_of": "yesterday"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "BAD_REQUEST"
    assert client.get(f"{ART}/v9/additions/sbom").status_code == 404


def test_a_report_without_a_document_is_no_sbom(client, adapter):
    register(client, adapter)
    push_image(client, "team/app", "v1")
    adapter.sbom = None  # the report's `sbom` is null
    client.post(f"{ART}/v1/scan", json={"scan_type": "sbom"})
    sbom_done(client, "v1")
    response = client.get(f"{ART}/v1/additions/sbom")
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "NOT_FOUND"
