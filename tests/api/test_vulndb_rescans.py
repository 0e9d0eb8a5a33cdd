"""A vulnerability data import rescans the artifacts it names, through the built-in scanner over
real HTTP (a Portlog on a loopback port, as in test_scanner_adapter.py)."""

from __future__ import annotations

import pytest

from adapters.osv_files import osv_file
from background import scan_jobs, vulndb_rescans
from domain.context import RequestContext
from domain.scans import VULNDB, Scan
from scanner.reports import VULNERABILITY_REPORT
from tests.api.test_scanner_adapter import DATA, Portlog, debian_layers, push_image
from tests.support.waiting import wait_until


@pytest.fixture
def portlog(tmp_path, monkeypatch):
    for module, name in ((scan_jobs, "POLL_SECONDS"), (scan_jobs, "MIN_REFRESH_SECONDS"),
                         (scan_jobs, "CHECK_SECONDS"), (vulndb_rescans, "FOLLOW_SECONDS")):
        monkeypatch.setattr(module, name, 0.05)
    server = Portlog(tmp_path)
    yield server
    server.close()


def import_records(portlog: Portlog, source: str, record: str) -> None:
    with osv_file(DATA / "osv" / record) as data:
        _, position = portlog.services.vulnerability_imports.record(
            source, data.chunks(), data.file_name, data.ecosystems, data.records, RequestContext("admin", source))
    portlog.services.projections.wait_for(position)


def summary_of(portlog: Portlog, artifact: str) -> dict | None:
    overview = portlog.http.get(artifact, params={"with_scan_overview": "true"}).json().get("scan_overview")
    return next(iter(overview.values())) if overview else None


def test_an_import_rescans_the_images_whose_packages_it_names_and_no_others(portlog):
    digest, _ = push_image(portlog, "team/web", "v1", debian_layers())
    artifact = f"/api/v2.0/projects/team/repositories/web/artifacts/{digest}"
    assert portlog.http.post(f"{artifact}/scan", json={"scan_type": "vulnerability"}).status_code == 202
    clean = wait_until(lambda: (s := summary_of(portlog, artifact)) and s["scan_status"] == "Success" and s,
                       60, what="the first scan")
    assert clean["summary"]["total"] == 0

    import_records(portlog, "alpine", "ALPINE-CVE-2022-37434.json")  # zlib on Alpine: not in this image
    import_records(portlog, "debian", "DEBIAN-CVE-2023-4911.json")  # glibc on Debian 12: libc6 2.36-9+deb12u1

    def rescanned():
        summary = summary_of(portlog, artifact)
        done = summary and summary["report_id"] != clean["report_id"] and summary["scan_status"] == "Success"
        return summary if done else None

    summary = wait_until(rescanned, 60, what="the rescan")
    assert summary["severity"] == "High" and summary["summary"]["total"] == 1
    report = portlog.http.get(f"{artifact}/additions/vulnerabilities").json()[VULNERABILITY_REPORT]
    assert [(v["id"], v["package"], v["fix_version"]) for v in report["vulnerabilities"]] == [
        ("CVE-2023-4911", "libc6", "2.36-9+deb12u3")]

    requests = [e for e in portlog.services.registry.events.get(Scan.create_id("team/web", digest, "vulnerability"))
                if isinstance(e, Scan.Requested)]
    assert [(e.trigger, e.actor) for e in requests] == [("manual", "admin"), (VULNDB, "admin")]
    assert requests[1].reason.startswith("vulnerability data debian imported (sha256:")
    log = portlog.http.get(f"{artifact}/scan/{summary['report_id']}/log").text
    assert "(vulndb: vulnerability data debian imported" in log
