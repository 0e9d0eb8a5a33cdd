"""Scanning end to end with real clients against a live `portlog serve`: `portlog vulndb import`
of the real OSV advisories in tests/data/osv, an image built offline with a Debian 12 dpkg
database and a Python distribution, pushed with skopeo into an `auto_scan` + `prevent_vul`
project. The built-in scanner (through its HTTP adapter at /scanner) scans it without a request,
the pull is refused with Harbor's 412 until the CVEs are allowlisted."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.images import build_image_layout
from tests.support.server import REPO_ROOT
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

PROJECT = "scanning"
ARTIFACTS = f"/api/v2.0/projects/{PROJECT}/repositories/app/artifacts"
VULNERABILITY_REPORT = "application/vnd.security.vulnerability.report; version=1.1"
DPKG_STATUS = b"""Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u1
Description: GNU C Library: Shared libraries

"""
OS_RELEASE = b"""PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""
REQUESTS_METADATA = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.30.0\nSummary: Python HTTP for Humans.\n"
# What tests/data/osv says of those packages: (id, package, installed, fixed, severity).
EXPECTED = [("CVE-2023-32681", "requests", "2.30.0", "2.31.0", "Medium"),
            ("CVE-2023-4911", "libc6", "2.36-9+deb12u1", "2.36-9+deb12u3", "High")]
REFUSED = ("current image with 2 vulnerabilities cannot be pulled due to configured policy in 'Prevent images "
           "with vulnerability severity of \"High\" or higher from running.' To continue with pull, please contact "
           "your project administrator to exempt matched vulnerabilities through configuring the CVE allowlist.")


def skopeo(env: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture(scope="module")
def skopeo_env(live_server, tmp_path_factory) -> dict:
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(tmp_path_factory.mktemp("auth") / "auth.json")}
    login = skopeo(env, "login", "--tls-verify=false", "-u", "admin", "-p",
                   live_server.admin_creds.split(":", 1)[1], live_server.host)
    assert login.returncode == 0, login.stderr
    return env


def test_a_vulnerable_push_is_scanned_on_its_own_and_pulled_only_once_allowlisted(live_server, skopeo_env,
                                                                                  tmp_path):
    imported = subprocess.run(
        [sys.executable, "-m", "cli", "vulndb", "import", str(REPO_ROOT / "tests" / "data" / "osv"),
         "--source", "osv-test", "--data-dir", str(live_server.data_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert '"osv-test"' in imported.stdout

    http = live_server.client()
    created = http.post("/api/v2.0/projects", json={"project_name": PROJECT, "metadata": {
        "auto_scan": "true", "prevent_vul": "true", "severity": "high"}})
    assert created.status_code == 201, created.text

    image = build_image_layout(tmp_path / "image", "1.0", extra_files={
        "etc/os-release": OS_RELEASE, "var/lib/dpkg/status": DPKG_STATUS,
        "usr/lib/python3/dist-packages/requests-2.30.0.dist-info/METADATA": REQUESTS_METADATA})
    target = f"docker://{live_server.host}/{PROJECT}/app:1.0"
    started = time.monotonic()
    pushed = skopeo(skopeo_env, "copy", "--dest-tls-verify=false", f"oci:{image.layout}:1.0", target)
    push_seconds = time.monotonic() - started
    assert pushed.returncode == 0, pushed.stderr
    artifact = f"{ARTIFACTS}/{image.manifest_digest}"

    def summary() -> dict | None:
        overview = http.get(artifact, params={"with_scan_overview": "true"}).json().get("scan_overview")
        return next(iter(overview.values())) if overview else None

    at_push = summary()  # the push answered before the scan ended: the scan is not on its path
    assert at_push is None or at_push["scan_status"] in ("Pending", "Running")
    done = wait_until(lambda: (s := summary()) and s["scan_status"] in ("Success", "Error") and s, 60,
                      what="the scan on push")
    assert (done["scan_status"], done["scanner"]["name"], done["severity"]) == ("Success", "Portlog", "High"), \
        http.get(f"{artifact}/scan/{done['report_id']}/log").text
    report = http.get(f"{artifact}/additions/vulnerabilities").json()[VULNERABILITY_REPORT]
    found = sorted((v["id"], v["package"], v["version"], v["fix_version"], v["severity"])
                   for v in report["vulnerabilities"])
    assert found == EXPECTED
    requested = http.get(f"{artifact}/scan/{done['report_id']}/log").text
    assert "(event)" in requested and "requested by admin" in requested

    pulled_to = f"oci:{tmp_path / 'pulled'}:1.0"
    refused = skopeo(skopeo_env, "copy", "--src-tls-verify=false", target, pulled_to)
    assert refused.returncode != 0 and "current image with 2 vulnerabilities cannot be pulled" in refused.stderr
    manifest = httpx.get(f"{live_server.url}/v2/{PROJECT}/app/manifests/1.0", auth=live_server.admin_auth,
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert manifest.status_code == 412
    assert manifest.json()["errors"][0]["message"] == REFUSED

    allowlist = {"metadata": {"reuse_sys_cve_allowlist": "false"},  # the project's own, as Harbor's UI sets it
                 "cve_allowlist": {"items": [{"cve_id": cve} for cve, *_ in EXPECTED]}}
    assert http.put(f"/api/v2.0/projects/{PROJECT}", json=allowlist).status_code == 200
    allowed = skopeo(skopeo_env, "copy", "--src-tls-verify=false", target, pulled_to)
    assert allowed.returncode == 0, allowed.stderr
    print(f"skopeo push {push_seconds:.2f} s; scanned on push in {done['duration']} s")


def test_the_sbom_is_a_referrer_of_the_image(live_server, skopeo_env, tmp_path):
    http = live_server.client()
    image = build_image_layout(tmp_path / "image", "1.0", text="sbom", extra_files={
        "etc/os-release": OS_RELEASE, "var/lib/dpkg/status": DPKG_STATUS})
    pushed = skopeo(skopeo_env, "copy", "--dest-tls-verify=false", f"oci:{image.layout}:1.0",
                    f"docker://{live_server.host}/team/sbom:1.0")
    assert pushed.returncode == 0, pushed.stderr
    artifact = f"/api/v2.0/projects/team/repositories/sbom/artifacts/{image.manifest_digest}"
    assert http.post(f"{artifact}/scan", json={"scan_type": "sbom"}).status_code == 202
    overview = wait_until(lambda: (o := http.get(artifact, params={"with_sbom_overview": "true"}).json()
                                   .get("sbom_overview")) and "sbom_digest" in o and o, 60, what="the SBOM")
    assert (overview["scan_status"], overview["sbom_repository"]) == ("Success", "team/sbom")

    referrers = http.get(f"/v2/team/sbom/referrers/{image.manifest_digest}").json()["manifests"]
    assert [(r["digest"], r["artifactType"]) for r in referrers] == [
        (overview["sbom_digest"], "application/vnd.goharbor.harbor.sbom.v1")]
    manifest = http.get(f"/v2/team/sbom/manifests/{overview['sbom_digest']}",
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
    document = http.get(f"/v2/team/sbom/blobs/{manifest['layers'][0]['digest']}").json()
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.5"
    assert {(c["name"], c.get("version")) for c in document["components"]} >= {("libc6", "2.36-9+deb12u1")}
