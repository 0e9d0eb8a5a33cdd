"""The vulnerability policy and the exemptions of the pull checks, on real manifest documents.

Scan results reach the checks through a port (domain/pull_checks.py ScanResults); here a small
class of the test implements it. The signature check reads the catalog: tests/api covers it on
manifests pushed through the registry API."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from domain.cve_allowlist import CveAllowlist
from domain.errors import InvalidInputError, PolicyViolationError
from domain.manifests import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, parse_manifest
from domain.pull_checks import (
    COSIGN_SIGNATURE,
    COSIGN_SIMPLE_SIGNING,
    NOTATION_SIGNATURE,
    Pull,
    VulnerabilityPolicy,
    exempt,
)
from domain.scanning_settings import ScanningSettings

NOW = 1_800_000_000
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
POLICY = "'Prevent images with vulnerability severity of \"{}\" or higher from running.'"


def descriptor(media_type: str, n: int, **extra) -> dict:
    return {"mediaType": media_type, "digest": f"sha256:{n:064x}", "size": 10 + n, **extra}


def manifest(config_type: str = OCI_CONFIG, layers: tuple[str, ...] = (GZIP_LAYER,), media_type: str = OCI_MANIFEST,
             **extra) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "config": descriptor(config_type, 1),
                       "layers": [descriptor(kind, i + 2) for i, kind in enumerate(layers)], **extra}).encode()


def pull_of(data: bytes, content_type: str = OCI_MANIFEST, reference: str = "v1", **settings) -> Pull:
    parsed = parse_manifest(data, content_type)
    pull = Pull("team/app", reference, parsed.digest, parsed.media_type, parsed.artifact_type,
                lambda: json.loads(data))
    pull.settings = ScanningSettings(**settings)
    return pull


@dataclass(frozen=True)
class Overview:
    status: str = "Success"
    severity: str = "None"
    summary: dict = None
    cve_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class OverviewWithSeverities(Overview):
    cve_severities: dict = None


class Scans:
    """The scan results port, answered from a dict digest -> overview."""

    def __init__(self, overviews: dict) -> None:
        self.overviews = overviews
        self.asked: list[tuple] = []

    def overview(self, repository: str, digest: str, scan_type: str = "vulnerability"):
        self.asked.append((repository, digest, scan_type))
        return self.overviews.get(digest)


IMAGE = manifest()


def findings(severity: str, **counts_and_ids) -> Overview:
    ids = counts_and_ids.pop("ids", ())
    return Overview(severity=severity, summary=counts_and_ids, cve_ids=tuple(ids))


def check(pull: Pull, overview=None, allowlist: CveAllowlist = CveAllowlist()) -> None:
    scans = Scans({pull.digest: overview} if overview is not None else {})
    VulnerabilityPolicy(scans, lambda project: allowlist, clock=lambda: NOW).check(pull)


def refusal(pull: Pull, overview=None, allowlist: CveAllowlist = CveAllowlist()) -> PolicyViolationError:
    with pytest.raises(PolicyViolationError) as refused:
        check(pull, overview, allowlist)
    return refused.value


def test_an_image_never_scanned_is_refused_in_harbors_words():
    error = refusal(pull_of(IMAGE, prevent_vul=True, severity="High"))
    assert error.message == (
        "current image without vulnerability scanning cannot be pulled due to configured policy in "
        + POLICY.format("High") + " To continue with pull, please contact your project administrator for help.")
    assert error.detail["scan_status"] is None


@pytest.mark.parametrize("status", ["Pending", "Running", "Error", "Stopped"])
def test_an_image_whose_scan_did_not_succeed_is_refused(status):
    error = refusal(pull_of(IMAGE, prevent_vul=True), Overview(status=status))
    assert error.message == (
        f"current image with \"{status}\" status of vulnerability scanning cannot be pulled due to configured "
        f"policy in {POLICY.format('Low')} To continue with pull, please contact your project administrator for help.")


def test_findings_below_the_severity_pass():
    check(pull_of(IMAGE, prevent_vul=True, severity="High"), findings("Medium", Medium=2, Low=5, ids=["CVE-1-1"]))


@pytest.mark.parametrize("severity, expected", [("High", "3 vulnerabilities"), ("Critical", "3 vulnerabilities")])
def test_findings_at_or_above_the_severity_are_refused(severity, expected):
    overview = findings(severity, **{severity: 1}, Low=2, ids=["CVE-2024-1", "CVE-2024-2", "CVE-2024-3"])
    error = refusal(pull_of(IMAGE, prevent_vul=True, severity="High"), overview)
    assert error.message == (
        f"current image with {expected} cannot be pulled due to configured policy in {POLICY.format('High')} "
        "To continue with pull, please contact your project administrator to exempt matched vulnerabilities "
        "through configuring the CVE allowlist.")
    assert error.detail["severity"] == severity and error.detail["vulnerabilities"] == 3
    assert error.detail["cve_ids"] == ["CVE-2024-1", "CVE-2024-2", "CVE-2024-3"]


def test_one_finding_is_one_vulnerability():
    error = refusal(pull_of(IMAGE, prevent_vul=True), findings("Low", Low=1, ids=["CVE-2024-9"]))
    assert error.message.startswith("current image with 1 vulnerability cannot be pulled")


def test_a_clean_scan_passes_even_at_the_lowest_threshold():
    check(pull_of(IMAGE, prevent_vul=True, severity="none"), Overview(severity="None", summary={}))


def test_a_threshold_of_none_takes_findings_of_unknown_severity_as_harbor():
    refusal(pull_of(IMAGE, prevent_vul=True, severity="None"), findings("Unknown", Unknown=1, ids=["CVE-1-2"]))
    check(pull_of(IMAGE, prevent_vul=True, severity="Low"), findings("Unknown", Unknown=1, ids=["CVE-1-2"]))


def test_a_severity_the_scanner_invented_counts_as_the_gravest():
    refusal(pull_of(IMAGE, prevent_vul=True, severity="Critical"), findings("Apocalyptic", Apocalyptic=1, ids=["X-1"]))


def test_allowlisted_findings_pass():
    overview = findings("Critical", Critical=1, High=1, ids=["CVE-2024-1", "CVE-2024-2"])
    allowlist = CveAllowlist(("CVE-2024-1", "CVE-2024-2", "CVE-2020-7"))
    check(pull_of(IMAGE, prevent_vul=True), overview, allowlist)


def test_an_expired_allowlist_exempts_nothing():
    overview = findings("Critical", Critical=1, ids=["CVE-2024-1"])
    refusal(pull_of(IMAGE, prevent_vul=True), overview, CveAllowlist(("CVE-2024-1",), expires_at=NOW))
    refusal(pull_of(IMAGE, prevent_vul=True), overview, CveAllowlist(("CVE-2024-1",), expires_at=NOW - 1))
    check(pull_of(IMAGE, prevent_vul=True), overview, CveAllowlist(("CVE-2024-1",), expires_at=NOW + 1))


def test_what_the_allowlist_leaves_is_judged_by_its_own_severity_when_the_scan_says_it():
    overview = OverviewWithSeverities(
        severity="Critical", summary={"Critical": 1, "Low": 2}, cve_ids=("CVE-2024-1", "CVE-2024-2", "CVE-2024-3"),
        cve_severities={"CVE-2024-1": "Critical", "CVE-2024-2": "Low", "CVE-2024-3": "Low"})
    allowlist = CveAllowlist(("CVE-2024-1",))
    check(pull_of(IMAGE, prevent_vul=True, severity="Medium"), overview, allowlist)
    error = refusal(pull_of(IMAGE, prevent_vul=True, severity="Low"), overview, allowlist)
    assert error.detail == {**error.detail, "severity": "Low", "vulnerabilities": 2,
                            "cve_ids": ["CVE-2024-2", "CVE-2024-3"]}


def test_without_severities_per_id_what_the_allowlist_leaves_is_taken_at_the_reports_highest():
    overview = findings("Critical", Critical=1, Low=1, ids=["CVE-2024-1", "CVE-2024-2"])
    error = refusal(pull_of(IMAGE, prevent_vul=True, severity="High"), overview, CveAllowlist(("CVE-2024-1",)))
    assert (error.detail["vulnerabilities"], error.detail["cve_ids"]) == (1, ["CVE-2024-2"])


def test_without_prevent_vul_nothing_is_asked():
    scans = Scans({})
    VulnerabilityPolicy(scans, lambda project: CveAllowlist()).check(pull_of(IMAGE, severity="Low"))
    assert scans.asked == []


def test_the_scan_asked_for_is_the_artifacts_vulnerability_scan():
    pull = pull_of(IMAGE, prevent_vul=True)
    scans = Scans({pull.digest: Overview(summary={})})
    VulnerabilityPolicy(scans, lambda project: CveAllowlist()).check(pull)
    assert scans.asked == [("team/app", pull.digest, "vulnerability")]


@pytest.mark.parametrize("data, content_type", [
    (manifest(DOCKER_CONFIG, ("application/vnd.docker.image.rootfs.diff.tar.gzip",), DOCKER_MANIFEST), DOCKER_MANIFEST),
    (manifest(layers=("application/vnd.oci.image.layer.v1.tar",)), OCI_MANIFEST),
    (manifest(layers=("application/vnd.oci.image.layer.v1.tar+zstd",)), OCI_MANIFEST),
    (manifest(layers=("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",)), OCI_MANIFEST),
    (manifest(layers=(GZIP_LAYER,), artifactType="application/spdx+json"), OCI_MANIFEST),  # a runnable image
])
def test_images_with_a_filesystem_are_checked(data, content_type):
    refusal(pull_of(data, content_type, prevent_vul=True))


@pytest.mark.parametrize("data, content_type", [
    (manifest("application/vnd.cncf.helm.config.v1+json",
              ("application/vnd.cncf.helm.chart.content.v1.tar+gzip",)), OCI_MANIFEST),
    (manifest(layers=(COSIGN_SIMPLE_SIGNING,)), OCI_MANIFEST),  # cosign's tag-scheme signature
    (manifest("application/vnd.oci.empty.v1+json", ("application/spdx+json",),
              artifactType="application/spdx+json"), OCI_MANIFEST),
    (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [descriptor(OCI_MANIFEST, 9, platform={"os": "linux", "architecture": "amd64"})]}
                ).encode(), OCI_INDEX),
])
def test_charts_signatures_sboms_and_indexes_are_not_checked(data, content_type):
    check(pull_of(data, content_type, prevent_vul=True))


@pytest.mark.parametrize("data", [
    manifest("application/vnd.oci.empty.v1+json", ("application/octet-stream",), artifactType=COSIGN_SIGNATURE),
    manifest("application/vnd.oci.empty.v1+json", ("application/jose+json",), artifactType=NOTATION_SIGNATURE),
    manifest(layers=(COSIGN_SIMPLE_SIGNING, COSIGN_SIMPLE_SIGNING)),
])
def test_signatures_are_exempt_from_every_check(data):
    assert exempt(pull_of(data, prevent_vul=True, enable_content_trust_cosign=True))


def test_a_signature_type_on_an_image_with_a_filesystem_exempts_nothing():
    disguised = manifest(layers=(GZIP_LAYER,), artifactType=NOTATION_SIGNATURE)
    assert not exempt(pull_of(disguised, prevent_vul=True))
    assert not exempt(pull_of(manifest(layers=(COSIGN_SIMPLE_SIGNING, GZIP_LAYER)), prevent_vul=True))


def test_scanners_and_signing_tools_are_exempt_and_nobody_else():
    pull = pull_of(IMAGE, prevent_vul=True)
    assert not exempt(pull)
    pull.scanner = True
    assert exempt(pull)
    pull.scanner, pull.signing_tool = False, lambda: True
    assert exempt(pull)


@pytest.mark.parametrize("allowlist, message", [
    (CveAllowlist(("not a cve",)), "invalid CVE ID"),
    (CveAllowlist(("CVE-2024-1", "CVE-2024-1")), "duplicate CVE ID in allowlist: CVE-2024-1"),
    (CveAllowlist(("",)), "invalid CVE ID"),
    (CveAllowlist(("CVE-" + "1" * 80,)), "invalid CVE ID"),
    (CveAllowlist(tuple(f"CVE-2024-{i}" for i in range(1001))), "at most 1000"),
    (CveAllowlist((), expires_at=-1), "expires_at"),
    (CveAllowlist((), expires_at="tomorrow"), "expires_at"),
    (CveAllowlist((), expires_at=True), "expires_at"),
    (CveAllowlist((), expires_at=10 ** 12), "expires_at"),
    (CveAllowlist("CVE-2024-1"), "must be a list"),
    (CveAllowlist((42,)), "invalid CVE ID"),
])
def test_allowlists_are_checked(allowlist, message):
    with pytest.raises(InvalidInputError) as refused:
        allowlist.checked()
    assert message in refused.value.message


def test_allowlist_ids_are_trimmed_and_any_advisory_scheme_is_taken():
    ids = (" CVE-2019-10164 ", "GHSA-8r8j-xvfj-36f9", "PYSEC-2023-74", "RUSTSEC-2020-0001", "GO-2022-0001")
    assert CveAllowlist(ids, 0).checked() == CveAllowlist(tuple(i.strip() for i in ids), 0)
