"""Scanner registrations and scans: the decisions of their aggregates, and how their events look
to subscribers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adapters.cloudevents import cloudevent
from adapters.scanner_client import ScannerError, authorization_headers, capability_for, check_metadata
from domain.context import RequestContext
from domain.errors import ConflictError, InvalidInputError
from domain.event_catalog import describe
from domain.scanners import ForbiddenChangeError, ScannerRegistration, ScannerSettings
from domain.scans import MAX_ATTEMPTS, Scan, ScanResult
from domain.webhooks import WEBHOOK_TYPES

CTX = RequestContext("alice", "r1")
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
DIGEST = "sha256:" + "a" * 64


def new_scan() -> Scan:
    scan = Scan.create("team/app", DIGEST, "vulnerability", CTX)
    scan.request("uuid-1", "Trivy", "v1", "application/vnd.oci.image.manifest.v1+json", "manual", CTX)
    return scan


def result() -> ScanResult:
    return ScanResult("sha256:" + "b" * 64, "application/vnd.security.vulnerability.report; version=1.1", 10,
                      "Trivy", "Aqua", "0.50", "High", {"High": 1}, 1, 1, ("CVE-1",))


def test_a_scan_runs_requested_claimed_completed():
    scan = new_scan()
    assert scan.status == "Pending" and scan.due(NOW)
    scan.claim("w1", NOW, 60, CTX)
    assert scan.status == "Running" and not scan.due(NOW)
    scan.complete(scan.report_id, result(), CTX)
    completed = scan.pending_events[-1]
    assert scan.status == "Success" and completed.cve_ids == ["CVE-1"] and completed.tag == "v1"
    assert completed.requested_by == "alice" and completed.started_at is not None


def test_one_scan_at_a_time_and_a_new_one_after():
    scan = new_scan()
    with pytest.raises(ConflictError):
        scan.request("uuid-1", "Trivy", None, "m", "manual", CTX)
    first = scan.report_id
    scan.claim("w1", NOW, 60, CTX)
    scan.fail(first, "boom", CTX)
    second = scan.request("uuid-1", "Trivy", None, "m", "manual", CTX)
    assert second != first and scan.status == "Pending"
    with pytest.raises(ConflictError):
        scan.fail(first, "a late outcome of the old scan", CTX)


def test_a_push_asks_once_whichever_follower_sees_it():
    scan = Scan.create("team/app", DIGEST, "vulnerability", CTX)
    assert scan.request("u", "T", None, "m", "event", CTX, trigger_position=7) is not None
    scan.claim("w", NOW, 60, CTX)
    scan.complete(scan.report_id, result(), CTX)
    assert scan.request("u", "T", None, "m", "event", CTX, trigger_position=7) is None
    assert scan.request("u", "T", None, "m", "event", CTX, trigger_position=9) is not None


def test_a_dead_workers_scan_is_claimed_again_until_it_fails():
    scan = new_scan()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert scan.claim(f"w{attempt}", NOW + timedelta(seconds=100 * attempt), 60, CTX) == attempt
        with pytest.raises(ConflictError):
            scan.claim("other", NOW + timedelta(seconds=100 * attempt + 1), 60, CTX)  # lease held
    with pytest.raises(ConflictError):
        scan.claim("last", NOW + timedelta(days=1), 60, CTX)
    assert scan.status == "Error" and "started 3 times" in scan.pending_events[-1].reason


def test_a_stopped_scan_takes_no_outcome():
    scan = new_scan()
    scan.claim("w", NOW, 60, CTX)
    assert scan.stop(CTX) and scan.status == "Stopped"
    with pytest.raises(ConflictError):
        scan.complete(scan.report_id, result(), CTX)
    assert not scan.stop(CTX)


@pytest.mark.parametrize("settings", [
    ScannerSettings("ftp://x"), ScannerSettings("http://"), ScannerSettings("http://h?x=1"),
    ScannerSettings("http://u:p@h"), ScannerSettings("http://h", auth="Digest", access_credential="x"),
    ScannerSettings("http://h", auth="Basic"), ScannerSettings("http://h", disabled="yes"),
    ScannerSettings("http://h", description="x" * 2000),
])
def test_bad_registrations_are_refused(settings):
    with pytest.raises(InvalidInputError):
        ScannerRegistration.create("s", settings, CTX)


def test_the_built_in_registration_cannot_change():
    registration = ScannerRegistration.create("Portlog", ScannerSettings("http://h/scanner", auth="Bearer"), CTX,
                                              immutable=True)
    with pytest.raises(ForbiddenChangeError):
        registration.update("Portlog", ScannerSettings("http://other"), CTX)
    with pytest.raises(ForbiddenChangeError):
        registration.delete(CTX)
    registration.refresh("http://h:6000/scanner", CTX)
    assert registration.settings.url == "http://h:6000/scanner"


def test_the_default_cannot_be_deactivated():
    registration = ScannerRegistration.create("s", ScannerSettings("http://h"), CTX)
    with pytest.raises(ConflictError):
        registration.update("s", ScannerSettings("http://h", disabled=True), CTX, is_default=True)


def test_scan_events_for_subscribers():
    scan = new_scan()
    scan.claim("w", NOW, 60, CTX)
    scan.complete(scan.report_id, result(), RequestContext("scanner:Trivy", "r"))
    public = describe(scan.pending_events[-1])
    assert (public.type, public.kind, public.project, public.repository) == (
        "scan.completed", "scan", "team", "team/app")
    assert public.data["summary"] == {"High": 1} and public.data["scanner_name"] == "Trivy"
    assert cloudevent(5, public, "portlog")["type"] == "io.portlog.scan.completed"
    assert WEBHOOK_TYPES["scan.completed"] == ("SCANNING_COMPLETED",)
    created = describe(ScannerRegistration.create(
        "s", ScannerSettings("http://h", auth="Bearer", access_credential="sealed-secret"), CTX).pending_events[0])
    assert created.type == "scanner.created" and "access_credential" not in created.data


def test_adapter_metadata_is_checked_and_capabilities_chosen():
    docker = "application/vnd.docker.distribution.manifest.v2+json"
    with pytest.raises(ScannerError):
        check_metadata({"scanner": {"name": "x"}, "capabilities": []})
    with pytest.raises(ScannerError):
        check_metadata({"scanner": {"name": "x", "vendor": "v", "version": "1"}, "capabilities": [
            {"consumes_mime_types": [docker], "produces_mime_types": ["text/plain"]}]})
    old = check_metadata({"scanner": {"name": "x", "vendor": "v", "version": "1"}, "capabilities": [
        {"consumes_mime_types": [docker], "produces_mime_types": [
            "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"]}]})
    chosen = capability_for(old, "vulnerability", docker)
    assert chosen.report_media_type.endswith("harbor+json; version=1.0") and not chosen.typed
    assert capability_for(old, "sbom", docker) is None
    assert authorization_headers("Basic", "u:p") == {"Authorization": "Basic dTpw"}
    assert authorization_headers("X-ScannerAdapter-API-Key", "k") == {"X-ScannerAdapter-API-Key": "k"}
