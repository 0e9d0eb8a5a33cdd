"""The Harbor vulnerability report and the SBOM report, checked against the adapter spec's
schemas and CycloneDX's own, for an image built from real package databases."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

import orjson
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from scanner.inventory import inventory, wanted
from scanner.layers import read_image_files
from scanner.limits import Deadline, ScanLimits
from scanner.reports import ScannerInfo, sbom_report, vulnerability_report
from scanner.vulndb import OsvIndex, match
from tests.support.layers import Blobs, Symlink, gzip_layer
from tests.support.scanner_spec import spec_errors

DATA = Path(__file__).resolve().parents[2] / "data"
SCANNER = ScannerInfo("Portlog", "Portlog", "0.1.0")
ARTIFACT = {"repository": "team/app", "digest": "sha256:" + "d" * 64, "tag": "v1",
            "mime_type": "application/vnd.oci.image.manifest.v1+json"}
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
SITE = "usr/local/lib/python3.11/site-packages"


def scanned(*layers: dict):
    blobs = Blobs()
    added = [blobs.add(gzip_layer(layer)) for layer in layers]
    added = [type(layer)(layer.digest, layer.size, layer.media_type, f"sha256:{n:064x}") for n, layer in
             enumerate(added, 1)]
    files = read_image_files(added, blobs.open, wanted, ScanLimits(), Deadline(60))
    found = inventory(files)
    return found, match(found.packages, OsvIndex.from_path(DATA / "osv")), added


def vulnerable_image():
    return scanned(
        {"usr/lib/os-release": Path("/usr/lib/os-release").read_bytes(),
         "etc/os-release": Symlink("../usr/lib/os-release"),
         "var/lib/dpkg/status": (DATA / "packages" / "dpkg-status-bookworm-12.1").read_bytes()},
        {f"{SITE}/requests-2.28.1.dist-info/METADATA": (DATA / "packages" / "requests-2.28.1-METADATA").read_bytes(),
         f"{SITE}/urllib3-1.26.18.dist-info/METADATA": (DATA / "packages" / "urllib3-1.26.18-METADATA").read_bytes(),
         "srv/app/node_modules/semver/package.json": (DATA / "packages" / "semver-7.5.1-package.json").read_bytes()})


def test_the_vulnerability_report_lists_each_finding_with_its_layer_and_follows_the_spec():
    _, findings, [os_layer, app_layer] = vulnerable_image()
    report = vulnerability_report(ARTIFACT, SCANNER, findings, [os_layer, app_layer], WHEN)
    assert spec_errors(report, "HarborVulnerabilityReport") == []
    assert (report["generated_at"], report["artifact"], report["scanner"], report["severity"]) == (
        "2026-01-02T03:04:05Z", ARTIFACT, {"name": "Portlog", "vendor": "Portlog", "version": "0.1.0"}, "High")
    assert [(v["id"], v["package"], v["version"], v["fix_version"], v["severity"], v["layer"]["digest"])
            for v in report["vulnerabilities"]] == [
        ("CVE-2022-25883", "semver", "7.5.1", "7.5.2", "Medium", app_layer.digest),
        ("CVE-2023-32681", "requests", "2.28.1", "2.31.0", "Medium", app_layer.digest),
        ("CVE-2024-37891", "urllib3", "1.26.18", "1.26.19", "Medium", app_layer.digest),
        ("CVE-2023-4911", "libc6", "2.36-9+deb12u1", "2.36-9+deb12u3", "High", os_layer.digest),
        ("CVE-2025-9230", "libssl3", "3.0.9-1", "3.0.17-1~deb12u3", "Unknown", os_layer.digest),
        ("CVE-2025-9230", "openssl", "3.0.9-1", "3.0.17-1~deb12u3", "Unknown", os_layer.digest)]
    glibc = report["vulnerabilities"][3]
    assert glibc["layer"] == {"digest": os_layer.digest, "diff_id": os_layer.diff_id}
    assert glibc["preferred_cvss"] == {"score_v3": 7.8, "vector_v3": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}
    assert glibc["vendor_attributes"]["CVSS"] == {
        "osv": {"V3Vector": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "V3Score": 7.8}}
    assert glibc["description"].startswith("A buffer overflow was discovered in the GNU C Library's dynamic loader")
    assert glibc["links"][0] == "https://osv.dev/vulnerability/DEBIAN-CVE-2023-4911"
    requests = report["vulnerabilities"][1]
    assert requests["cwe_ids"] == ["CWE-200"]
    assert requests["vendor_attributes"]["osv_ids"] == ["GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"]
    assert "preferred_cvss" not in report["vulnerabilities"][4]
    orjson.dumps(report)  # plain JSON all the way down


def test_a_clean_image_reports_no_vulnerabilities_and_severity_unknown():
    _, findings, layers = scanned({"etc/os-release": b"ID=alpine\nVERSION_ID=3.19.1\n"})
    report = vulnerability_report(ARTIFACT, SCANNER, findings, layers, WHEN)
    assert (report["severity"], report["vulnerabilities"]) == ("Unknown", [])
    assert spec_errors(report, "HarborVulnerabilityReport") == []


def test_the_sbom_report_wraps_a_valid_cyclonedx_1_5_document_of_every_package():
    found, _, _ = vulnerable_image()
    report = sbom_report(ARTIFACT, SCANNER, found, WHEN, "registry.example:5000",
                         serial=UUID("7b1d6a8e-3f2c-4b53-9d0e-0123456789ab"))
    assert spec_errors(report, "HarborSbomReport") == []
    assert (report["media_type"], report["generated_at"], report["artifact"]) == (
        "application/vnd.cyclonedx+json", "2026-01-02T03:04:05Z", ARTIFACT)
    sbom = report["sbom"]
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(orjson.dumps(sbom).decode()) is None
    assert (sbom["bomFormat"], sbom["specVersion"], sbom["serialNumber"]) == (
        "CycloneDX", "1.5", "urn:uuid:7b1d6a8e-3f2c-4b53-9d0e-0123456789ab")
    image = sbom["metadata"]["component"]
    assert (image["type"], image["name"], image["version"], image["purl"]) == (
        "container", "team/app", ARTIFACT["digest"],
        f"pkg:oci/app@sha256:{'d' * 64}?repository_url=registry.example:5000/team/app")
    assert sbom["metadata"]["tools"]["components"][0]["name"] == "Portlog"
    libraries = sorted((c["name"], c["version"], c["purl"]) for c in sbom["components"] if c["type"] == "library")
    assert libraries == sorted((p.name, p.version, p.purl) for p in found.packages)
    assert len(libraries) == 7
    [os_component] = [c for c in sbom["components"] if c["type"] == "operating-system"]
    assert (os_component["name"], os_component["version"]) == ("debian", "12")
    libc = next(c for c in sbom["components"] if c["name"] == "libc6")
    assert {p["name"]: p["value"] for p in libc["properties"]} == {
        "portlog:layer_digest": found.packages[0].layer, "portlog:path": "var/lib/dpkg/status",
        "portlog:package_type": "os", "portlog:source_name": "glibc"}
    [image_dependencies] = [d for d in sbom["dependencies"] if d["ref"] == "image"]
    assert len(image_dependencies["dependsOn"]) == len(sbom["components"])


def test_the_same_package_installed_twice_is_two_components():
    metadata = (DATA / "packages" / "requests-2.28.1-METADATA").read_bytes()
    found, _, _ = scanned({f"opt/venv-a/{SITE}/requests-2.28.1.dist-info/METADATA": metadata,
                           f"opt/venv-b/{SITE}/requests-2.28.1.dist-info/METADATA": metadata})
    sbom = sbom_report(ARTIFACT, SCANNER, found, WHEN)["sbom"]
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(orjson.dumps(sbom).decode()) is None
    assert len({c["bom-ref"] for c in sbom["components"]}) == 2
