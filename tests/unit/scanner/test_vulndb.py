"""Matching packages against OSV records of real advisories (tests/data/osv): exact findings,
fixed versions and severities, and nothing for the versions that carry the fix."""

from __future__ import annotations

import importlib.metadata
import json
import zipfile
from pathlib import Path

import pytest

from scanner.inventory import Package
from scanner.vulndb import (
    RECORD_BYTES,
    InvalidVulnerabilityData,
    OsvIndex,
    ecosystem_key,
    match,
    read_records,
    record_ecosystems,
    record_severity,
)

OSV = Path(__file__).resolve().parents[2] / "data" / "osv"
INDEX = OsvIndex.from_path(OSV)


def package(ecosystem: str, name: str, version: str, source: str = "", source_version: str = "") -> Package:
    return Package(ecosystem, name, version, f"pkg:generic/{name}@{version}", "sha256:" + "1" * 64,
                   "var/lib/dpkg/status", "os", source, source_version)


def found(*packages: Package, index: OsvIndex = INDEX) -> list[tuple]:
    return [(f.id, f.package.name, f.package.version, f.fix_version, f.severity) for f in match(packages, index)]


def installed_version(command: list[str]) -> str:
    import subprocess

    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_the_glibc_of_debian_12_1_has_looney_tunables_and_this_machines_has_not():
    old = package("Debian:12", "libc6", "2.36-9+deb12u1", "glibc", "2.36-9+deb12u1")
    machine_version = installed_version(["dpkg-query", "-W", "-f", "${source:Version}", "libc6"])
    patched = package("Debian:12", "libc6", machine_version, "glibc", machine_version)
    assert found(old, patched) == [("CVE-2023-4911", "libc6", "2.36-9+deb12u1", "2.36-9+deb12u3", "High")]
    [finding] = match([old], INDEX)
    assert (finding.cvss.score, finding.cvss.vector) == (7.8, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H")
    assert finding.osv_ids == ("DEBIAN-CVE-2023-4911",)
    assert "https://security-tracker.debian.org/tracker/CVE-2023-4911" in finding.links


def test_each_binary_package_of_a_vulnerable_source_package_is_a_finding_without_severity_if_unknown():
    libssl, openssl = (package("Debian:12", name, "3.0.9-1", "openssl", "3.0.9-1") for name in ("libssl3", "openssl"))
    assert found(libssl, openssl) == [("CVE-2025-9230", "libssl3", "3.0.9-1", "3.0.17-1~deb12u3", "Unknown"),
                                      ("CVE-2025-9230", "openssl", "3.0.9-1", "3.0.17-1~deb12u3", "Unknown")]
    fixed = package("Debian:12", "libssl3", "3.0.17-1~deb12u3", "openssl", "3.0.17-1~deb12u3")
    assert found(fixed) == []


def test_a_record_for_another_release_does_not_apply():
    bullseye_fix_on_bookworm = package("Debian:12", "libc6", "2.31-13+deb11u7", "glibc", "2.31-13+deb11u7")
    assert found(bullseye_fix_on_bookworm)[0][3] == "2.36-9+deb12u3"
    assert found(package("Debian:11", "libc6", "2.31-13+deb11u7", "glibc", "2.31-13+deb11u7")) == []
    assert found(package("Debian:11", "libc6", "2.31-13+deb11u6", "glibc", "2.31-13+deb11u6")) == [
        ("CVE-2023-4911", "libc6", "2.31-13+deb11u6", "2.31-13+deb11u7", "High")]


def test_requests_before_2_31_leaks_proxy_credentials_once_though_two_records_say_so():
    old = package("PyPI", "requests", "2.28.1")
    assert found(old) == [("CVE-2023-32681", "requests", "2.28.1", "2.31.0", "Medium")]
    [finding] = match([old], INDEX)
    assert finding.osv_ids == ("GHSA-j8r2-6x86-q33q", "PYSEC-2023-74")
    assert (finding.cvss.score, finding.cwe_ids) == (6.1, ("CWE-200",))
    assert finding.description.startswith("Requests is a HTTP library. Since Requests v2.3.0")
    venv = package("PyPI", "requests", importlib.metadata.version("requests"))
    assert found(venv, package("PyPI", "requests", "2.31.0"), package("PyPI", "requests", "2.2.1")) == []


def test_urllib3_has_a_fix_on_each_of_its_branches():
    assert found(package("PyPI", "urllib3", "1.26.18"), package("PyPI", "urllib3", "2.0.7"),
                 package("PyPI", "urllib3", "1.26.19"), package("PyPI", "urllib3", "2.2.2"),
                 package("PyPI", "urllib3", importlib.metadata.version("urllib3"))) == [
        ("CVE-2024-37891", "urllib3", "1.26.18", "1.26.19", "Medium"),
        ("CVE-2024-37891", "urllib3", "2.0.7", "2.2.2", "Medium")]


def test_semver_as_npm_bundles_it_is_fixed_and_older_ones_are_not():
    bundled = json.loads(Path("/usr/lib/node_modules/npm/node_modules/semver/package.json").read_text())["version"]
    assert found(package("npm", "semver", bundled), package("npm", "semver", "7.5.2"),
                 package("npm", "semver", "7.5.1"), package("npm", "semver", "6.3.0"),
                 package("npm", "semver", "5.7.1")) == [
        ("CVE-2022-25883", "semver", "5.7.1", "5.7.2", "Medium"),
        ("CVE-2022-25883", "semver", "6.3.0", "6.3.1", "Medium"),
        ("CVE-2022-25883", "semver", "7.5.1", "7.5.2", "Medium")]


def test_alpine_zlib_is_matched_by_release_and_origin():
    assert found(package("Alpine:v3.16", "zlib", "1.2.12-r1"), package("Alpine:v3.16", "zlib", "1.2.12-r2"),
                 package("Alpine:v3.19", "zlib", "1.2.12-r1")) == [
        ("CVE-2022-37434", "zlib", "1.2.12-r1", "1.2.12-r2", "Critical")]


def test_pypi_names_are_compared_normalised():
    record = {"id": "PYSEC-TEST-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "Zope.Interface"},
                                                   "ranges": [{"type": "ECOSYSTEM", "events": [
                                                       {"introduced": "0"}, {"fixed": "5.0"}]}]}]}
    assert found(package("PyPI", "zope_interface", "4.7.1"), index=OsvIndex([record])) == [
        ("PYSEC-TEST-1", "zope_interface", "4.7.1", "5.0", "Unknown")]


def test_last_affected_versions_lists_and_withdrawn_records():
    last_affected = {"id": "OSV-TEST-1", "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"},
                                                       "ranges": [{"type": "SEMVER", "events": [
                                                           {"introduced": "1.0.0"}, {"last_affected": "1.3.0"}]}]}]}
    listed = {"id": "OSV-TEST-2", "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"},
                                                "versions": ["0.0.9"]}]}
    withdrawn = {**listed, "id": "OSV-TEST-3", "withdrawn": "2024-01-01T00:00:00Z"}
    index = OsvIndex([last_affected, listed, withdrawn])
    assert found(package("npm", "left-pad", "1.3.0"), package("npm", "left-pad", "1.3.1"),
                 package("npm", "left-pad", "0.0.9"), package("npm", "left-pad", "0.1.0"), index=index) == [
        ("OSV-TEST-2", "left-pad", "0.0.9", "", "Unknown"), ("OSV-TEST-1", "left-pad", "1.3.0", "", "Unknown")]


def test_unsorted_events_and_several_intervals_in_one_range():
    record = {"id": "OSV-TEST-4", "affected": [{"package": {"ecosystem": "PyPI", "name": "pkg"}, "ranges": [
        {"type": "ECOSYSTEM", "events": [{"fixed": "2.0"}, {"introduced": "3.0"}, {"introduced": "0"},
                                         {"fixed": "3.5"}]}]}]}
    index = OsvIndex([record])
    assert found(*(package("PyPI", "pkg", v) for v in ("1.0", "2.0", "2.9", "3.0", "3.4.9", "3.5")), index=index) == [
        ("OSV-TEST-4", "pkg", "1.0", "2.0", "Unknown"), ("OSV-TEST-4", "pkg", "3.0", "3.5", "Unknown"),
        ("OSV-TEST-4", "pkg", "3.4.9", "3.5", "Unknown")]


def test_unreadable_versions_match_nothing_rather_than_everything():
    record = {"id": "OSV-TEST-5", "affected": [{"package": {"ecosystem": "PyPI", "name": "pkg"}, "ranges": [
        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version!"}]}]}]}
    assert found(package("PyPI", "pkg", "1.0"), package("PyPI", "pkg", "¯\\_(ツ)_/¯"),
                 index=OsvIndex([record])) == []


@pytest.mark.parametrize(("severity", "specific", "expected"), [
    ([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"}], {}, "None"),
    ([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}], {}, "Low"),
    ([{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}], {},
     "Critical"),
    ([{"type": "CVSS_V3", "score": "not a vector"}], {"severity": "HIGH"}, "High"),
    ([], {"severity": "MODERATE"}, "Medium"),
    ([], {"urgency": "unimportant"}, "Low"),
    ([{"type": "Ubuntu", "score": "medium"}], {}, "Medium"),
    ([], {"urgency": "not yet assigned"}, "Unknown"),
])
def test_severity_from_cvss_else_the_records_own_word(severity, specific, expected):
    record = {"id": "X", "severity": severity, "database_specific": specific}
    assert record_severity(record, {})[0] == expected


def test_records_load_from_a_directory_a_zip_and_a_json_list(tmp_path):
    from_directory = {record["id"] for _, record in read_records(OSV)}
    assert from_directory == {p.stem for p in OSV.glob("*.json")}
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in OSV.glob("*.json"):
            zipped.write(path, path.name)
    assert {record["id"] for _, record in read_records(archive)} == from_directory
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([json.loads(p.read_text()) for p in sorted(OSV.glob("*.json"))]))
    assert {record["id"] for _, record in read_records(listing)} == from_directory
    ecosystems = [e for _, record in read_records(listing) for e in sorted(record_ecosystems(record))]
    assert sorted(ecosystems) == ["Alpine:v3.16", "Debian:11", "Debian:12", "Debian:12", "PyPI", "PyPI", "PyPI",
                                  "npm"]


def test_a_zip_member_expanding_past_the_bound_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("huge.json", b" " * (RECORD_BYTES + 10))
    with pytest.raises(InvalidVulnerabilityData, match="huge.json is larger than 16 MiB"):
        list(read_records(archive))


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "bad.json: not valid JSON"),
    (b'{"summary": "no id"}', "bad.json: not an OSV record"),
    (b'{"id": "X", "affected": {"package": {}}}', "X has a malformed 'affected' list"),
])
def test_malformed_data_is_refused_saying_where(tmp_path, content, message):
    (tmp_path / "bad.json").write_bytes(content)
    with pytest.raises(InvalidVulnerabilityData, match=message):
        list(read_records(tmp_path))


@pytest.mark.parametrize(("ecosystem", "key"), [
    ("Debian:12", "Debian:12"), ("Ubuntu:22.04:LTS", "Ubuntu:22.04"), ("Ubuntu:Pro:18.04:LTS", None),
    ("Alpine:v3.19", "Alpine:v3.19"), ("PyPI", "PyPI"), ("npm", "npm"), ("Go", None), (None, None)])
def test_ecosystems_matched(ecosystem, key):
    assert ecosystem_key(ecosystem) == key
