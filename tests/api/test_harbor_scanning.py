"""Issue 19's "done when", the client side: an unmodified `harborapi` client registers a scanner,
scans an artifact and reads its vulnerabilities, against a live `portlog serve` and a scanner
adapter on loopback that pulls the artifact from Portlog with the token it was given."""

from __future__ import annotations

import asyncio

import pytest
from harborapi.exceptions import Forbidden
from harborapi.models import ScannerRegistrationReq, ScannerRegistrationSettings

from tests.support.harbor import harbor_client
from tests.support.oci import push_image
from tests.support.scanner_adapter import API_KEY, VULNERABILITY_REPORT, ScannerAdapter

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::DeprecationWarning:harborapi")]


@pytest.fixture
async def harbor(live_server):
    client = harbor_client(live_server)
    yield client
    await client.client.aclose()


@pytest.fixture
def adapter():
    server = ScannerAdapter(refresh_after=1)
    server.verify_pull = True
    yield server
    server.close()


async def test_harborapi_registers_a_scanner_scans_and_reads_vulnerabilities(harbor, live_server, adapter):
    settings = ScannerRegistrationSettings(name="trivy-like", url=adapter.url, auth="X-ScannerAdapter-API-Key",
                                           access_credential=API_KEY)
    await harbor.ping_scanner_adapter(settings)
    location = await harbor.create_scanner(ScannerRegistrationReq(
        name="trivy-like", url=adapter.url, auth="X-ScannerAdapter-API-Key", access_credential=API_KEY,
        description="a spec-following adapter"))
    uuid = location.rsplit("/", 1)[1]
    await harbor.set_default_scanner(uuid)
    scanners = await harbor.get_scanners()
    assert [(s.name, s.is_default) for s in scanners] == [("Portlog", False), ("trivy-like", True)]
    registration = await harbor.get_scanner(uuid)
    assert registration.health == "healthy" and registration.access_credential in (None, "")
    metadata = await harbor.get_scanner_metadata(uuid)
    assert metadata.scanner.name == "Fixture"
    assert (await harbor.get_project_scanner("team")).uuid == uuid
    built_in = next(s for s in scanners if s.name == "Portlog")
    with pytest.raises(Forbidden):
        await harbor.delete_scanner(built_in.uuid)

    with live_server.client() as http:
        digest, _ = push_image(http, "team/app", "1.0")
    await harbor.scan_artifact("team", "app", "1.0")
    for _ in range(200):
        artifact = await harbor.get_artifact("team", "app", "1.0", with_scan_overview=True)
        overview = artifact.scan_overview and artifact.scan_overview.root.get(VULNERABILITY_REPORT)
        if overview and overview.scan_status == "Success":
            break
        await asyncio.sleep(0.1)
    assert overview.scan_status == "Success" and overview.severity == "Critical"
    assert overview.summary.total == 3 and overview.summary.fixable == 2
    assert adapter.pulls == [200]  # the adapter pulled the image from Portlog with the token it got

    reports = await harbor.get_artifact_vulnerability_reports("team", "app", "1.0")
    report = reports.first()
    assert report.scanner.name == "Fixture"
    assert [(v.id, v.package, v.fix_version) for v in report.vulnerabilities] == [
        ("CVE-2023-0001", "openssl", "3.0.2-0ubuntu1.10"), ("CVE-2023-0002", "zlib", ""),
        ("CVE-2023-0003", "bash", "5.1-6")]
    assert report.vulnerabilities[0].severity.value == "Critical"
    artifacts = await harbor.get_artifacts("team", "app", with_scan_overview=True)
    assert artifacts[0].digest == digest
    assert artifacts[0].scan_overview.root[VULNERABILITY_REPORT].severity == "Critical"
