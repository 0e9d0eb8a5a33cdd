"""Scans as background jobs, never on the request path: a request or a push only records
`Scan.Requested`; these workers do the rest.

* `run_scans`: a bounded pool (SCAN_WORKERS at a time per process) taking requested scans from the
  read model — pending ones, and running ones whose lease ran out (a worker that died, a node
  restarted) — and claiming each on its `Scan` aggregate, so several processes and nodes never
  run one scan twice. A scan asks the registration's adapter (the project's scanner, or the
  default) through adapters/scanner_client.py: its metadata, a scan request with a short-lived
  pull token for the one repository, then the report, polled (302 + Refresh-After) until it comes
  or SCAN_TIMEOUT_SECONDS pass. The report streams into the blob store (capped), is summarised as
  it streams back, and `Completed` records its digest and summary; anything else records `Failed`
  with the reason. A stuck adapter holds one pool thread, never a push or a pull.
* `follow_for_auto_scan`: follows the log from a durable position of its own and records a
  `Scan.Requested` for each image manifest pushed into a project whose `auto_scan` is on (read
  through `services.auto_scan_enabled`, config/bootstrap.py). The request names the push's log
  position, so followers in several processes ask once.
* `start_scan_all` / `stop_scan_all`: Harbor's "scan all", every image manifest of every repository.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable
from uuid import UUID

import ijson
from eventsourcing.persistence import IntegrityError

from adapters.scanner_client import (
    CYCLONEDX,
    SCAN_REQUEST_V1_0,
    SCAN_REQUEST_V1_1,
    NotReady,
    ScannerError,
    capability_for,
)
from api.tokens import Scope
from background.sbom_referrers import attach_sbom
from background.webhook_dispatcher import DispatchPosition, FromHeadPosition, events_after, follow_from
from domain.context import RequestContext
from domain.errors import ConflictError, NotFoundError
from domain.pull_checks import SCANNER_PULL
from domain.repository import Repository
from domain.scans import (
    EVENT,
    RUNNING,
    SBOM,
    SCAN_ALL,
    VULNERABILITY,
    Scan,
    ScanAllRun,
    ScanResult,
)

log = logging.getLogger("portlog.scans")

SCAN_WORKERS = 2  # scans run at once by each process
POLL_SECONDS = 1.0
SCAN_TIMEOUT_SECONDS = 30 * 60  # a scan without a report by then fails
LEASE_MARGIN_SECONDS = 120  # a claim outlives its scan's timeout by this much
PULL_TOKEN_SECONDS = 300  # the adapter's pull token: one repository, pull (a scanner's: past the pull policies)
CHECK_SECONDS = 1.0  # while waiting for a report: how often a stop or this process's end is noticed
MIN_REFRESH_SECONDS = 1.0  # between two polls of a report, whatever Refresh-After says
FOLLOW_SECONDS = 1.0
FOLLOW_BATCH = 500
REPORTS_UPLOAD_NAME = "_scan-reports"  # what the blob store's upload metadata names (no repository)
IMAGE_MANIFESTS = ("application/vnd.oci.image.manifest.v1+json",
                   "application/vnd.docker.distribution.manifest.v2+json")
INDEXES = ("application/vnd.oci.image.index.v1+json",
           "application/vnd.docker.distribution.manifest.list.v2+json")
# Harbor's severities ranked as it ranks them (an unknown word counts as Unknown here).
SEVERITY_RANK = {"Unknown": 0, "None": 0, "Negligible": 1, "Low": 2, "Medium": 3, "High": 4, "Critical": 5}


class ScanFailed(Exception):
    """The scan ended without a report; the message is the reason recorded."""


class ScanAbandoned(Exception):
    """Stopped or superseded meanwhile, or this process is stopping: nothing more is recorded
    (a stopping process's claim runs out and another worker takes the scan)."""


# The pool


def run_scans(services, stop: threading.Event) -> None:
    """A scan that ends wakes the pool at once; a stop too."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    running: set[str] = set()
    lock = threading.Lock()
    wake = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), wake.set()), name="portlog-scans-stop", daemon=True).start()
    with ThreadPoolExecutor(SCAN_WORKERS, thread_name_prefix="portlog-scan") as pool:
        while not stop.is_set():
            wake.wait(POLL_SECONDS)
            wake.clear()
            if stop.is_set():
                break
            try:
                with lock:
                    free, busy = SCAN_WORKERS - len(running), set(running)
                if free <= 0:
                    continue
                services.projections.catch_up()
                for due in services.scans.due(datetime.now(timezone.utc), free, busy):
                    with lock:
                        running.add(due.scan_id)
                    pool.submit(_run, services, due.scan_id, worker, running, lock, stop, wake)
            except Exception:
                log.exception("requested scans could not be picked up")


def _run(services, scan_id: str, worker: str, running: set[str], lock: threading.Lock,
         stop: threading.Event, wake: threading.Event) -> None:
    try:
        outcome = run_scan(services, UUID(scan_id), worker, stop.is_set)
        log.info("scan %s: %s", scan_id, outcome)
    except Exception:
        log.exception("scan %s could not run", scan_id)
    finally:
        with lock:
            running.discard(scan_id)
        wake.set()


def run_scan(services, scan_id: UUID, worker: str, interrupted: Callable[[], bool] = lambda: False) -> str:
    """Claims the scan and runs it to its outcome; returns what happened."""
    claim_ctx = RequestContext("system", f"scan-worker:{worker}")
    lease = SCAN_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS
    try:
        scan, position = services.scan_requests.claim(scan_id, worker, datetime.now(timezone.utc), lease, claim_ctx)
    except (ConflictError, IntegrityError, NotFoundError):
        return "taken"
    ctx = RequestContext(f"scanner:{scan.scanner_name}", scan.report_id)
    try:
        result = Scanning(services, scan, interrupted).run()
    except ScanAbandoned as why:
        return f"abandoned: {why}"
    except ScanFailed as failure:
        reason = str(failure)
        return _record(services, lambda: services.scan_requests.fail(scan_id, scan.report_id, reason, ctx),
                       f"failed: {reason}")
    except Exception as error:  # a bug or the storage: recorded, so the scan does not stay running
        log.exception("scan %s failed unexpectedly", scan_id)
        reason = f"{type(error).__name__}: {error}"
        return _record(services, lambda: services.scan_requests.fail(scan_id, scan.report_id, reason, ctx),
                       f"failed: {reason}")
    outcome = _record(services, lambda: services.scan_requests.complete(scan_id, scan.report_id, result, ctx),
                      "completed")
    if outcome == "completed" and scan.scan_type == SBOM:
        services.projections.wait_for(attach_sbom(services, scan, result.report_digest))
    return outcome


def _record(services, record: Callable[[], int | None], outcome: str) -> str:
    try:
        services.projections.wait_for(record())
    except (ConflictError, IntegrityError):
        return "superseded (stopped meanwhile)"
    return outcome


class Scanning:
    """One attempt at one scan, through the adapter of the scan's registration."""

    def __init__(self, services, scan: Scan, interrupted: Callable[[], bool]) -> None:
        self.services, self.scan, self.interrupted = services, scan, interrupted
        self.deadline = time.monotonic() + SCAN_TIMEOUT_SECONDS

    def run(self) -> ScanResult:
        registration = self._registration()
        with adapter_of(self.services, registration) as adapter:
            metadata = self._call(adapter.metadata)
            capability = capability_for(metadata, self.scan.scan_type, self.scan.mime_type)
            if capability is None:
                raise ScanFailed(f"the scanner {registration.name} cannot make a {self.scan.scan_type} report of "
                                 f"an artifact of type {self.scan.mime_type}")
            request = self._scan_request(registration, capability)
            media_type = SCAN_REQUEST_V1_1 if capability.typed else SCAN_REQUEST_V1_0
            adapter_scan = self._call(lambda: adapter.submit(request, media_type))
            stored = self._poll(adapter, adapter_scan, capability.report_media_type)
        return summarise(self.services.blobs, stored, capability.report_media_type, self.scan.scan_type, metadata)

    def _registration(self):
        try:
            registration = self.services.scanners.get(self.scan.scanner)
        except NotFoundError:
            raise ScanFailed(f"the scanner registration {self.scan.scanner_name} was deleted") from None
        if registration.settings.disabled:
            raise ScanFailed(f"the scanner {registration.name} is deactivated")
        return registration

    def _scan_request(self, registration, capability) -> dict:
        token, _ = self.services.tokens.issue(
            f"scanner:{registration.name}", [Scope("repository", self.scan.repository, ("pull", SCANNER_PULL))],
            lifetime_seconds=PULL_TOKEN_SECONDS)
        request = {
            "registry": {"url": registry_url(self.services.settings, registration.settings.use_internal_addr),
                         "authorization": f"Bearer {token}"},
            "artifact": {"repository": self.scan.repository, "digest": self.scan.digest, "tag": self.scan.tag or "",
                         "mime_type": self.scan.mime_type},
        }
        if capability.typed:
            parameters = {"sbom_media_types": [CYCLONEDX]} if self.scan.scan_type == SBOM else None
            request["enabled_capabilities"] = [{"type": self.scan.scan_type,
                                                "produces_mime_types": [capability.report_media_type],
                                                "parameters": parameters}]
        return request

    def _poll(self, adapter, adapter_scan: str, media_type: str) -> StoredReport:
        sbom_type = CYCLONEDX if self.scan.scan_type == SBOM else None
        while True:
            self._check_still_ours()
            upload = ReportUpload(self.services.blobs)
            try:
                answer = self._call(lambda: adapter.report(adapter_scan, media_type, upload.write, sbom_type))
            except BaseException:
                upload.cancel()
                raise
            if not isinstance(answer, NotReady):
                return upload.finish()
            upload.cancel()
            self._wait(max(answer.refresh_after, MIN_REFRESH_SECONDS))

    def _wait(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            if time.monotonic() > self.deadline:
                break
            if self.interrupted():
                raise ScanAbandoned("this process is stopping")
            time.sleep(min(left, CHECK_SECONDS))
        if time.monotonic() > self.deadline:
            raise ScanFailed(f"no report within {SCAN_TIMEOUT_SECONDS} s")

    def _check_still_ours(self) -> None:
        if self.interrupted():
            raise ScanAbandoned("this process is stopping")
        current = self.services.registry.load(self.scan.id)
        if current is None or current.status != RUNNING or current.report_id != self.scan.report_id:
            raise ScanAbandoned("stopped or superseded")

    def _call(self, call):
        if time.monotonic() > self.deadline:
            raise ScanFailed(f"no report within {SCAN_TIMEOUT_SECONDS} s")
        try:
            return call()
        except ScannerError as error:
            raise ScanFailed(error.message) from None


def adapter_of(services, registration):
    """A client of a registration's adapter, with its credential opened."""
    settings = registration.settings
    return services.scanner_client(settings.url, settings.auth, services.scanners.credential(registration.uuid),
                                   settings.skip_cert_verify)


def registry_url(settings, internal: bool) -> str:
    """Where the adapter pulls from: the external URL unless the registration asks for the
    internal address (Harbor's `use_internal_addr`), or none is configured."""
    if settings.external_url and not internal:
        return settings.external_url
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}"


# The report, into the blob store


@dataclass(frozen=True)
class StoredReport:
    digest: str
    size: int


class ReportUpload:
    """A report's bytes streamed to their content address (the upload starts with the first byte)."""

    def __init__(self, blobs) -> None:
        self.blobs = blobs
        self.upload_id: str | None = None
        self.writer = None
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if self.writer is None:
            self.upload_id = self.blobs.start_upload(REPORTS_UPLOAD_NAME).upload_id
            self.writer = self.blobs.upload_writer(self.upload_id)
        self.writer.write(chunk)
        self.hash.update(chunk)
        self.size += len(chunk)

    def finish(self) -> StoredReport:
        if self.writer is None:
            raise ScanFailed("the adapter sent an empty report")
        self.writer.commit()
        digest = f"sha256:{self.hash.hexdigest()}"
        self.blobs.complete_upload(self.upload_id, digest)
        return StoredReport(digest, self.size)

    def cancel(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.blobs.cancel_upload(self.upload_id)
            self.writer = None


def summarise(blobs, stored: StoredReport, media_type: str, scan_type: str, metadata: dict) -> ScanResult:
    """The stored report read back as it streams: checked to be a JSON object, its scanner and,
    for a vulnerability report, the severity summary (Harbor's) and the CVE ids."""
    scanner, severities, fixable, ids = dict(metadata["scanner"]), {}, 0, {}
    try:
        with blobs.open(stored.digest) as stream:
            for where, item in _report_parts(stream):
                if where == "scanner" and isinstance(item, dict):
                    scanner.update({k: v for k, v in item.items() if isinstance(v, str) and v})
                elif where == "vulnerabilities.item" and isinstance(item, dict) and scan_type == VULNERABILITY:
                    severity = item.get("severity") if item.get("severity") in SEVERITY_RANK else "Unknown"
                    severities[severity] = severities.get(severity, 0) + 1
                    fixable += bool(item.get("fix_version"))
                    if isinstance(item.get("id"), str) and item["id"]:
                        known = ids.get(item["id"][:200], severity)
                        ids[item["id"][:200]] = max(known, severity, key=SEVERITY_RANK.__getitem__)
    except ijson.JSONError as error:
        raise ScanFailed(f"the report is not valid JSON: {error}") from None
    overall = "None" if scan_type == VULNERABILITY else ""
    for severity in severities:  # Harbor's way: Unknown alone leaves it None
        if SEVERITY_RANK[severity] > SEVERITY_RANK.get(overall, 0):
            overall = severity
    return ScanResult(report_digest=stored.digest, report_media_type=media_type, report_size=stored.size,
                      scanner_name=str(scanner.get("name", ""))[:200],
                      scanner_vendor=str(scanner.get("vendor", ""))[:200],
                      scanner_version=str(scanner.get("version", ""))[:200], severity=overall, summary=severities,
                      fixable=fixable, total=sum(severities.values()), cve_ids=tuple(sorted(ids)),
                      cve_severities=dict(sorted(ids.items())))


def _report_parts(stream):
    """(prefix, object) for the report's `scanner` and each `vulnerabilities` item, parsed as the
    bytes stream; the whole document must be one JSON object."""
    events = ijson.parse(stream, use_float=True)
    first = next(events, None)
    if first is None or first[1] != "start_map":
        raise ScanFailed("the report is not a JSON object")
    builder, building = None, None
    for prefix, event, value in events:
        if builder is None and event == "start_map" and prefix in ("scanner", "vulnerabilities.item"):
            builder, building = ijson.ObjectBuilder(), prefix
        if builder is not None:
            builder.event(event, value)
            if event == "end_map" and prefix == building:
                yield building, builder.value
                builder = None


# Auto-scan


class AutoScanPosition(FromHeadPosition):
    """Pushes from before auto-scan existed are not scanned all at once on an upgrade."""

    NAME = "auto_scan"


def follow_for_auto_scan(services, stop: threading.Event) -> None:
    follow_from(AutoScanPosition, lambda position: request_auto_scans(services, position),
                services, stop, FOLLOW_SECONDS, "auto-scan", log)


def request_auto_scans(services, position: DispatchPosition) -> None:
    """Asks for a scan of each image manifest pushed into an auto-scan project since `position`
    (never beyond what the read models applied: the scanner a project uses is read from them)."""
    start = position.get()
    readable = services.projections.positions().get("scanners", 0)
    if readable <= start:
        return
    events, reached = events_after(services.registry, start, readable, FOLLOW_BATCH)
    for at, event in events:
        if isinstance(event, Repository.ManifestPushed) and scannable(event.media_type, event.subject) \
                and services.auto_scan_enabled(event.repository.split("/", 1)[0]):
            _auto_scan(services, event, at)
    position.advance(reached)


def scannable(media_type: str, subject: str | None) -> bool:
    """An image manifest, not an accessory (a signature, an SBOM: they have a subject)."""
    return media_type in IMAGE_MANIFESTS and subject is None


def _auto_scan(services, pushed: Repository.ManifestPushed, position: int) -> None:
    project = pushed.repository.split("/", 1)[0]
    registration = services.scanner_registrations.of_project(project)
    if registration is None or registration.disabled:
        return
    tag = _tag_pushed_with(services, pushed)
    try:
        services.scan_requests.request(pushed.repository, pushed.digest, VULNERABILITY, registration.uuid,
                                       registration.name, tag, pushed.media_type, EVENT,
                                       RequestContext(pushed.actor, pushed.request_id, pushed.source),
                                       trigger_position=position)
    except ConflictError:
        pass  # a scan of it is under way already


def _tag_pushed_with(services, pushed) -> str | None:
    after = services.registry.events.get(pushed.originator_id, gt=pushed.originator_version, limit=1)
    following = next(iter(after), None)
    if isinstance(following, Repository.TagPointed) and following.digest == pushed.digest:
        return following.tag
    return None


# Scan all


def start_scan_all(services, trigger: str, ctx: RequestContext, run_id: UUID | None = None,
                   background: bool = True) -> tuple[ScanAllRun, int]:
    """Records the run's start and asks, on a thread of its own (the request answers at once),
    for a vulnerability scan of every image manifest of every repository."""
    run = ScanAllRun.start(trigger, ctx, run_id)
    position = services.registry.save(run)[-1].notification.id
    if background:
        threading.Thread(target=_plan_scan_all, args=(services, run.id, ctx), name="portlog-scan-all",
                         daemon=True).start()
    else:
        _plan_scan_all(services, run.id, ctx)
    return run, position


def _plan_scan_all(services, run_id: UUID, ctx: RequestContext) -> None:
    requested = 0
    try:
        for repository, digest, media_type, tag in _image_manifests(services.catalog):
            run: ScanAllRun = services.registry.load(run_id)
            if run.stopping:
                break
            registration = services.scanner_registrations.of_project(repository.split("/", 1)[0])
            if registration is None or registration.disabled:
                continue
            try:
                services.scan_requests.request(repository, digest, VULNERABILITY, registration.uuid, registration.name,
                                               tag, media_type, SCAN_ALL, ctx, scan_all=str(run_id))
                requested += 1
            except ConflictError:
                pass  # under way already
    except Exception:
        log.exception("scan all %s could not request every scan", run_id)
    finally:
        services.projections.wait_for(services.registry.update(run_id, lambda run: run.plan(requested, ctx)))


def _image_manifests(catalog):
    after = ("", "")
    while page := catalog.image_manifests(IMAGE_MANIFESTS, after):
        yield from page
        after = page[-1][:2]


def stop_scan_all(services, run_id: UUID, ctx: RequestContext) -> int | None:
    """Records the stop and stops every scan of the run still pending or running."""
    position = services.registry.update(run_id, lambda run: run.request_stop(ctx))
    services.projections.wait_for(position)
    for repository, digest, scan_type in services.scans.in_progress_of_run(str(run_id)):
        position = services.scan_requests.stop(repository, digest, scan_type, ctx) or position
    return position
