"""Vulnerability scanning in the web UI (issue 19), in Chromium against a live `portlog serve` and
a spec-following scanner adapter serving HTTP on loopback (tests/support/scanner_adapter.py):
the scanner administration page, a scan started from the artifact page and its findings, the
severity summary in the repository's listing, the project's scanning and pull policies with its
CVE allowlist, the SBOM tab, and all of it in Simplified Chinese."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import shot
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, push_image
from tests.support.scanner_adapter import API_KEY, VULNERABILITIES, ScannerAdapter
from tests.support.server import LiveServer, start_server
from tests.support.waiting import wait_until
from tests.ui.test_accessibility import UNLABELLED

PROJECT = "scans"
NARROW = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
LONG_DESCRIPTION = ("A buffer overflow in the X.509 certificate verification of openssl lets a remote attacker "
                    "crash the process or run code of their choice by presenting a crafted certificate chain "
                    "during the TLS handshake.")
COMPONENTS = [
    {"type": "library", "name": "openssl", "version": "3.0.2-0ubuntu1",
     "purl": "pkg:deb/ubuntu/openssl@3.0.2-0ubuntu1"},
    {"type": "library", "name": "requests", "version": "2.31.0", "purl": "pkg:pypi/requests@2.31.0"},
    {"type": "library", "name": "zlib", "version": "1.2.11", "purl": "pkg:deb/ubuntu/zlib@1.2.11",
     "components": [{"type": "file", "name": "libz.so.1", "version": "1.2.11"}]},
]
UNTRANSLATED = re.compile(r"\b(?:scanning|scanners|artifact|common|project|repository)\.[a-z_]+\b")


@pytest.fixture(scope="module")
def adapter():
    server = ScannerAdapter()
    server.vulnerabilities = [{**VULNERABILITIES[0], "description": LONG_DESCRIPTION}, *VULNERABILITIES[1:]]
    server.sbom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": COMPONENTS}
    yield server
    server.close()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory) -> LiveServer:
    root = tmp_path_factory.mktemp("ui-scanning")
    server = start_server(root / "data", root / "serve.log", projects=(PROJECT,))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def images(ui_server) -> dict[str, str]:
    """tag -> digest of the images pushed to scans/app."""
    with ui_server.client() as client:
        return {tag: push_image(client, f"{PROJECT}/app", tag, seed=tag)[0] for tag in ("1.0", "2.0", "3.0")}


def registered(ui_server, adapter) -> str:
    """The uuid of the adapter's registration (made through the API unless a test made it), the default."""
    with ui_server.client() as client:
        found = [s for s in client.get("/api/v2.0/scanners").json() if s["url"] == adapter.url]
        if found:
            uuid = found[0]["uuid"]
        else:
            response = client.post("/api/v2.0/scanners", json={"name": "fixture", "url": adapter.url,
                                                               "auth": "X-ScannerAdapter-API-Key",
                                                               "access_credential": API_KEY})
            assert response.status_code == 201, response.text
            uuid = response.headers["Location"].rsplit("/", 1)[1]
        assert client.patch(f"/api/v2.0/scanners/{uuid}", json={"is_default": True}).status_code == 200
        return uuid


def push_index(client, platforms: dict[str, str]) -> str:
    """An OCI index of the repository's images (architecture -> digest), tagged "multi"; its digest."""
    manifests = []
    for architecture, digest in platforms.items():
        manifest = client.get(f"/v2/{PROJECT}/app/manifests/{digest}", headers={"Accept": OCI_MANIFEST}).content
        manifests.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
                          "platform": {"architecture": architecture, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
    response = client.put(f"/v2/{PROJECT}/app/manifests/multi", content=index, headers={"Content-Type": OCI_INDEX})
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"]


def scanned(ui_server, digest: str) -> None:
    """Scans the image through the API unless it was scanned already, and waits for the report."""
    url = f"/api/v2.0/projects/{PROJECT}/repositories/app/artifacts/{digest}"

    def status(client):
        overview = client.get(url, params={"with_scan_overview": "true"}).json().get("scan_overview") or {}
        return next(iter(overview.values()), {}).get("scan_status")

    with ui_server.client() as client:
        if status(client) is None:
            assert client.post(f"{url}/scan", json={"scan_type": "vulnerability"}).status_code == 202
        wait_until(lambda: status(client) == "Success", 30)


def artifact_url(digest: str, tab: str | None = None) -> str:
    return f"/ui/artifact?name={PROJECT}/app&digest={digest}" + (f"&tab={tab}" if tab else "")


def cell_texts(page: Page, table, column: int) -> list[str]:
    return [text.strip() for text in table.locator(f"tbody tr td:nth-child({column})").all_inner_texts()]


def test_register_a_scanner_scan_an_artifact_and_read_its_findings(admin_page: Page, ui_server, adapter, images):
    page = admin_page
    page.goto("/ui/scanners")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vulnerability scanning")
    scanners = page.get_by_role("table", name=re.compile("scanners?$"))
    built_in = scanners.get_by_role("row").filter(has_text="Portlog")
    expect(built_in.get_by_text("Built-in", exact=True)).to_be_visible()
    expect(built_in.get_by_text("Default", exact=True)).to_be_visible()
    expect(built_in.get_by_role("button", name="Edit scanner Portlog")).to_have_count(0)  # not editable
    expect(built_in.get_by_role("button", name="Delete scanner Portlog")).to_have_count(0)

    # Add the adapter: a wrong key fails the connection test with the adapter's answer; the right one passes.
    page.get_by_role("button", name="New scanner").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("fixture")
    dialog.get_by_label("Adapter URL").fill(adapter.url)
    dialog.get_by_label("Authorization").select_option("X-ScannerAdapter-API-Key")
    dialog.get_by_label("Credential").fill("wrong-key")
    dialog.get_by_role("button", name="Test connection").click()
    expect(dialog.get_by_role("alert")).to_contain_text("unauthorized")
    dialog.get_by_label("Credential").fill(API_KEY)
    dialog.get_by_role("button", name="Test connection").click()
    expect(dialog.get_by_text("The adapter answered with valid metadata.")).to_be_visible()
    dialog.get_by_role("button", name="Add").click()
    expect(page.locator("#notices")).to_contain_text("Scanner fixture added")
    row = scanners.get_by_role("row").filter(has_text="fixture")
    expect(row.get_by_text("Healthy", exact=True)).to_be_visible()
    expect(row).to_contain_text("Fixture 1.2.3")
    expect(row).not_to_contain_text(API_KEY)
    row.get_by_role("button", name="Make fixture the default scanner").click()
    expect(page.locator("#notices")).to_contain_text("fixture is now the default scanner")
    expect(scanners.get_by_role("row").filter(has_text="fixture").get_by_text("Default", exact=True)).to_be_visible()
    with ui_server.client() as client:
        [shown] = client.get("/api/v2.0/scanners", params={"q": "name=fixture"}).json()
        assert shown["is_default"] and shown["auth"] == "X-ScannerAdapter-API-Key" and shown["url"] == adapter.url
    shot(page, "scanners")
    page.set_viewport_size(NARROW)
    shot(page, "scanners-narrow")
    page.set_viewport_size(DESKTOP)

    # The listing before any scan, then a scan started from the artifact's page.
    page.goto(f"/ui/repository?name={PROJECT}/app")
    listing = page.get_by_role("table", name=re.compile("Artifacts"))
    expect(listing.get_by_role("columnheader", name="Vulnerabilities")).to_be_visible()
    expect(listing.get_by_text("Not scanned")).to_have_count(3)
    page.goto(artifact_url(images["1.0"]))
    page.get_by_role("tab", name="Vulnerabilities").click()
    expect(page).to_have_url(re.compile(r"tab=vulnerabilities"))
    expect(page.get_by_text("This image has not been scanned yet.")).to_be_visible()
    page.get_by_role("button", name="Scan now").click()
    expect(page.locator("#notices")).to_contain_text(f"Scan of {PROJECT}/app@")
    expect(page.get_by_text("The scan is under way; its findings appear here when it ends.")).to_be_visible()
    findings = page.get_by_role("table", name=re.compile("vulnerabilities shown"))
    expect(findings).to_be_visible(timeout=20_000)  # the page follows the scan to its end
    expect(page.get_by_role("status").filter(has_text="last scanned by Fixture 1.2.3")).to_be_visible()
    expect(page.get_by_text("Report by Fixture 1.2.3 (Portlog tests)")).to_be_visible()
    expect(page.get_by_role("button", name="Rescan")).to_be_enabled()

    # Gravest first; every column the report has; the CVE linked to its advisory.
    assert cell_texts(page, findings, 1) == ["CVE-2023-0001", "CVE-2023-0002", "CVE-2023-0003"]
    expect(findings.get_by_role("columnheader", name="Severity")).to_have_attribute("aria-sort", "descending")
    first = findings.locator("tbody tr").first
    expect(first.get_by_role("link", name="CVE-2023-0001")).to_have_attribute("href", "https://example.com/CVE-2023-0001")
    expect(first).to_contain_text("openssl")
    expect(first).to_contain_text("3.0.2-0ubuntu1.10")
    expect(first).to_contain_text("CVSS 9.8")
    expect(findings.locator("tbody tr").nth(1)).to_contain_text("no fix yet")
    expect(first).not_to_contain_text("TLS handshake")  # cut short…
    first.get_by_role("button", name="More").click()
    expect(first).to_contain_text("TLS handshake")  # …and shown whole on demand
    findings.get_by_role("button", name=re.compile("^Package")).click()
    assert cell_texts(page, findings, 2) == ["bash", "openssl", "zlib"]
    findings.get_by_role("button", name=re.compile("^Package")).click()
    assert cell_texts(page, findings, 2) == ["zlib", "openssl", "bash"]
    findings.get_by_role("button", name=re.compile("^Severity")).click()
    page.get_by_label("Severity", exact=True).select_option("High")
    assert cell_texts(page, findings, 1) == ["CVE-2023-0002"]
    page.get_by_label("Severity", exact=True).select_option("")
    page.get_by_label("Only those with a fix").check()
    assert cell_texts(page, findings, 1) == ["CVE-2023-0001", "CVE-2023-0003"]
    page.get_by_label("Only those with a fix").uncheck()
    shot(page, "artifact-vulnerabilities")
    page.set_viewport_size(NARROW)
    shot(page, "artifact-vulnerabilities-narrow")
    page.set_viewport_size(DESKTOP)

    # Time travel: before the scan nothing was known; back to now, the report again.
    page.get_by_label("Report as of (your local time)").fill("2001-01-01T00:00")
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Showing the report that was known at")).to_be_visible()
    expect(page.get_by_text("No report was known at")).to_be_visible()
    page.get_by_role("link", name="Back to the latest report").click()
    expect(page.get_by_role("table", name=re.compile("vulnerabilities shown"))).to_be_visible()

    # The listing's summary: a bar and the counts per severity, with how many are fixable.
    page.goto(f"/ui/repository?name={PROJECT}/app")
    scanned = listing.get_by_role("row").filter(has=page.get_by_role("link", name=re.compile(images["1.0"][:19])))
    for text in ("Critical 1", "High 1", "Low 1", "3 in all · 2 fixable"):
        expect(scanned.get_by_text(text)).to_be_visible()
    expect(listing.get_by_text("Not scanned")).to_have_count(2)
    listing.get_by_role("button", name=f"Scan {images['2.0'][:19]}… for vulnerabilities").click()
    expect(listing.get_by_text("Not scanned")).to_have_count(1)
    expect(listing.get_by_text("3 in all · 2 fixable")).to_have_count(2, timeout=20_000)  # followed live
    shot(page, "repository-scanned")
    page.set_viewport_size(NARROW)
    shot(page, "repository-scanned-narrow")
    page.set_viewport_size(DESKTOP)

    # Scan all: started, followed to its end, with what it did.
    page.goto("/ui/scanners?tab=scan-all")
    expect(page.get_by_text("Nothing has been scanned this way yet.")).to_be_visible()
    page.get_by_role("button", name="Scan now").click()
    expect(page.locator("#notices")).to_contain_text("Scanning every image")
    latest = page.get_by_role("region", name="Latest run")
    expect(latest.get_by_text("Finished")).to_be_visible(timeout=30_000)
    expect(latest).to_contain_text("3 of 3 images scanned")
    expect(latest).to_contain_text("started by hand")
    page.get_by_role("button", name="Edit schedule").click()
    page.get_by_role("dialog").get_by_label("Frequency").select_option("Daily")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(page.get_by_role("region", name="Schedule").locator("code")).to_have_text("0 0 0 * * *")
    shot(page, "scan-all")
    with ui_server.client() as client:
        assert client.get("/api/v2.0/system/scanAll/schedule").json()["schedule"]["type"] == "Daily"
        assert client.get("/api/v2.0/scans/all/metrics").json()["metrics"]["Success"] == 3
        index = push_index(client, {"amd64": images["1.0"], "arm64": images["2.0"]})

    # An index has no report of its own: its platforms' images, each with its summary and report.
    page.goto(artifact_url(index, "vulnerabilities"))
    platforms = page.get_by_role("table", name="2 platform images")
    expect(platforms).to_be_visible()
    assert cell_texts(page, platforms, 1) == ["linux/amd64", "linux/arm64"]
    expect(platforms.get_by_text("3 in all · 2 fixable")).to_have_count(2)
    platforms.get_by_role("link", name=images["2.0"][:19] + "…").click()
    expect(page).to_have_url(re.compile(f"digest=sha256%3A{images['2.0'][7:]}&tab=vulnerabilities"))
    expect(page.get_by_role("table", name=re.compile("vulnerabilities shown"))).to_be_visible()


def test_project_policies_and_allowlists_from_the_pages(admin_page: Page, ui_server, adapter, images):
    scanner = registered(ui_server, adapter)
    page = admin_page
    # The system allowlist, in the administration area.
    page.goto("/ui/scanners?tab=allowlist")
    page.get_by_label("Add vulnerability IDs").fill("CVE-2023-0003")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("Unsaved changes")).to_be_visible()
    page.get_by_role("button", name="Save the allowlist").click()
    expect(page.locator("#notices")).to_contain_text("Allowlist saved")
    expect(page.get_by_role("table", name="System allowlist: 1 vulnerability")).to_be_visible()

    page.goto(f"/ui/projects/{PROJECT}?tab=settings")
    policy = page.get_by_role("form", name="Vulnerability scanning and pull policies")
    expect(policy.get_by_label("Refuse images with a vulnerability of this severity or higher")).to_be_disabled()
    policy.get_by_label("Scan images automatically when they are pushed").check()
    policy.get_by_label("Prevent vulnerable images from being pulled").check()
    policy.get_by_label("Refuse images with a vulnerability of this severity or higher").select_option("high")
    policy.get_by_label("Allow only images signed with cosign to be pulled").check()
    policy.get_by_role("button", name="Save").click()
    expect(page.locator("#notices")).to_contain_text("Scanning and pull policies saved")

    # The project's allowlist: the system's shown while it is used; then its own, with an expiry.
    allowlist = page.get_by_role("region", name="CVE allowlist")
    expect(allowlist.get_by_label("The system allowlist")).to_be_checked()
    expect(allowlist.get_by_role("table", name="System allowlist: 1 vulnerability")).to_contain_text("CVE-2023-0003")
    allowlist.get_by_label("This project's own allowlist").check()
    allowlist.get_by_label("Add vulnerability IDs").fill("CVE-2023-0001, CVE-2023-0002 bad_id")
    allowlist.get_by_role("button", name="Add", exact=True).click()
    allowlist.get_by_role("button", name="Save the allowlist").click()
    expect(allowlist.get_by_role("alert")).to_contain_text("invalid CVE ID 'bad_id'")  # the API's own message
    allowlist.get_by_role("button", name="Remove bad_id from the allowlist").click()
    allowlist.get_by_label("Never expires").uncheck()
    allowlist.get_by_label("Expires on").fill("2030-01-01")
    allowlist.get_by_role("button", name="Save the allowlist").click()
    expect(page.locator("#notices")).to_contain_text("Allowlist saved")
    allowlist = page.get_by_role("region", name="CVE allowlist")
    expect(allowlist.get_by_label("This project's own allowlist")).to_be_checked()
    expect(allowlist.get_by_role("table", name="Project allowlist: 2 vulnerabilities")).to_be_visible()
    expect(allowlist).to_contain_text("This allowlist expires on")

    # The project's scanner: the candidates, the chosen one saved.
    section = page.get_by_role("region", name="Scanner")
    section.get_by_label("Scanner for this project").select_option(scanner)
    section.get_by_role("button", name="Use this scanner").click()
    expect(page.locator("#notices")).to_contain_text("This project now uses fixture")
    expect(page.get_by_role("region", name="Scanner")).to_contain_text("This project's images are scanned by fixture.")
    shot(page, "project-scanning-settings")
    page.set_viewport_size(NARROW)
    shot(page, "project-scanning-settings-narrow")
    page.set_viewport_size(DESKTOP)

    midnight = page.evaluate("new Date('2030-01-01T00:00:00').getTime() / 1000")
    with ui_server.client() as client:
        project = client.get(f"/api/v2.0/projects/{PROJECT}").json()
        assert {key: project["metadata"][key] for key in (
            "auto_scan", "prevent_vul", "severity", "enable_content_trust_cosign", "enable_content_trust",
            "reuse_sys_cve_allowlist")} == {
            "auto_scan": "true", "prevent_vul": "true", "severity": "high", "enable_content_trust_cosign": "true",
            "enable_content_trust": "false", "reuse_sys_cve_allowlist": "false"}
        assert [item["cve_id"] for item in project["cve_allowlist"]["items"]] == ["CVE-2023-0001", "CVE-2023-0002"]
        assert project["cve_allowlist"]["expires_at"] == midnight
        system = client.get("/api/v2.0/system/CVEAllowlist").json()
        assert [item["cve_id"] for item in system["items"]] == ["CVE-2023-0003"] and system["expires_at"] is None
        assert client.get(f"/api/v2.0/projects/{PROJECT}/scanner").json()["uuid"] == scanner
        # Back to the defaults, so that pulls elsewhere in this module are not refused.
        assert client.put(f"/api/v2.0/projects/{PROJECT}", json={"metadata": {
            "auto_scan": "false", "prevent_vul": "false", "enable_content_trust_cosign": "false"}}).status_code == 200


def test_generate_an_sbom_and_list_its_packages(admin_page: Page, ui_server, adapter, images):
    registered(ui_server, adapter)
    page = admin_page
    page.goto(artifact_url(images["3.0"], "sbom"))
    expect(page.get_by_role("tab", name="SBOM")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text("No SBOM yet.")).to_be_visible()
    page.get_by_role("button", name="Generate SBOM").click()
    expect(page.locator("#notices")).to_contain_text(f"SBOM of {PROJECT}/app@")
    expect(page.get_by_text("The SBOM is being generated")).to_be_visible()
    packages = page.get_by_role("table", name=re.compile("packages shown"))
    expect(packages).to_be_visible(timeout=20_000)
    expect(packages.locator("caption")).to_have_text("4 of 4 packages shown")  # a nested component too
    assert cell_texts(page, packages, 1) == ["libz.so.1", "openssl", "requests", "zlib"]  # by name
    expect(page.get_by_role("status").filter(has_text="generated by Fixture 1.2.3")).to_be_visible()
    # The SBOM is then attached as a referrer (Harbor's SBOM accessory); the tab links to it.
    with ui_server.client() as client:
        accessory = wait_until(lambda: client.get(
            f"/api/v2.0/projects/{PROJECT}/repositories/app/artifacts/{images['3.0']}",
            params={"with_sbom_overview": "true"}).json()["sbom_overview"].get("sbom_digest"), 20)
    page.reload()
    expect(page.get_by_role("link", name=accessory[:19] + "…")).to_be_visible()
    packages.get_by_role("button", name="Package", exact=True).click()
    assert cell_texts(page, packages, 1) == ["zlib", "requests", "openssl", "libz.so.1"]
    packages.get_by_role("button", name="Version", exact=True).click()
    assert cell_texts(page, packages, 2) == ["1.2.11", "1.2.11", "2.31.0", "3.0.2-0ubuntu1"]
    expect(packages.get_by_role("row").filter(has_text="requests")).to_contain_text("pkg:pypi/requests@2.31.0")
    page.get_by_label("Filter packages").fill("pypi")
    assert cell_texts(page, packages, 1) == ["requests"]
    page.get_by_label("Filter packages").fill("")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download (CycloneDX JSON)").click()
    assert download.value.suggested_filename == f"app-{images['3.0'][7:19]}.cdx.json"
    assert json.loads(open(download.value.path(), encoding="utf-8").read()) == adapter.sbom
    shot(page, "artifact-sbom")
    page.set_viewport_size(NARROW)
    shot(page, "artifact-sbom-narrow")
    page.set_viewport_size(DESKTOP)


def test_the_scanning_pages_in_simplified_chinese(admin_page: Page, ui_server, adapter, images):
    registered(ui_server, adapter)
    scanned(ui_server, images["1.0"])
    page = admin_page
    page.goto("/ui/projects")
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("项目")
    pages = [
        ("/ui/scanners", "扫描器"), ("/ui/scanners?tab=scan-all", "最近一次运行"),
        ("/ui/scanners?tab=allowlist", "保存白名单"), (f"/ui/repository?name={PROJECT}/app", "漏洞"),
        (artifact_url(images["1.0"], "vulnerabilities"), "严重程度"), (artifact_url(images["3.0"], "sbom"), "软件包"),
        (f"/ui/projects/{PROJECT}?tab=settings", "漏洞扫描与拉取策略"),
    ]
    for path, expected in pages:
        page.goto(path)
        view = page.locator("#view")
        expect(view.get_by_text(expected).first).to_be_visible()
        expect(view.get_by_text("加载中…")).to_have_count(0)
        expect(view.get_by_text("检查中…")).to_have_count(0)  # the scanners' health has arrived
        text = view.inner_text()
        assert not UNTRANSLATED.findall(text), (path, UNTRANSLATED.findall(text))
        assert page.evaluate(UNLABELLED) == [], path  # every control has a name
    shot(page, "project-scanning-settings-zh-CN")
    page.goto(artifact_url(images["1.0"], "vulnerabilities"))
    expect(page.get_by_role("tab", name="漏洞")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("columnheader", name="严重程度")).to_be_visible()
    expect(page.get_by_text("严重 1")).to_be_visible()
    shot(page, "artifact-vulnerabilities-zh-CN")
    page.goto("/ui/scanners")
    expect(page.get_by_role("heading", level=1)).to_have_text("漏洞扫描")
    shot(page, "scanners-zh-CN")
