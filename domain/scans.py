"""Scans of artifacts by a scanner registration (domain/scanners.py), as events. Topic
`domain.scans:<Aggregate>.<Event>`; a public schema (fields only added, with defaults).

One `Scan` aggregate per (repository, digest, scan type), id
`uuid5("/scans/<repository>@<digest>/<scan_type>")`; each new scan of the artifact is a new
`Requested` on it, so its history stays: the log answers "what was known for this digest at
moment T" (the last `Completed` at or before T). A scan moves pending (Requested) → running
(Started: claimed by a worker, with a lease) → Completed | Failed | Stopped. A claim is
recorded at the version the worker loaded, so two workers never run one scan; a scan whose
worker died is claimed again once its lease ran out (up to MAX_ATTEMPTS times).

`Completed` carries the content digest of the report (its bytes are in the blob store, at their
content address, never in the event), the scanner as the adapter named itself, the summary and
every CVE id found. Outcome events repeat what webhooks and audit need (tag, who asked, when it
started), so each one is whole on its own.

`ScanAllRun` is one "scan all" (Harbor's), `ScanAllSchedule` its cron schedule.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import ConflictError, InvalidInputError, NotFoundError

VULNERABILITY, SBOM = "vulnerability", "sbom"
SCAN_TYPES = (VULNERABILITY, SBOM)
# Harbor's scan statuses (its job statuses), as its API shows them.
PENDING, RUNNING, SUCCESS, ERROR, STOPPED = "Pending", "Running", "Success", "Error", "Stopped"
FINAL = (SUCCESS, ERROR, STOPPED)
# What started a scan (Harbor's execution triggers, lower case).
MANUAL, EVENT, SCAN_ALL = "manual", "event", "scan_all"
VULNDB = "vulndb"  # a vulnerability data import naming one of the artifact's packages
MAX_ATTEMPTS = 3  # claims of one scan whose workers died before recording an outcome
MAX_REASON_LENGTH = 2000
MAX_TAG_LENGTH = 128


def check_scan_type(value: object) -> str:
    if value not in SCAN_TYPES:
        raise InvalidInputError(f"scan_type must be one of {', '.join(SCAN_TYPES)}", {"scan_type": value})
    return value


@dataclass(frozen=True)
class ScanResult:
    """What a completed scan found (its report summarised)."""

    report_digest: str
    report_media_type: str
    report_size: int
    scanner_name: str = ""
    scanner_vendor: str = ""
    scanner_version: str = ""
    severity: str = "None"  # the highest found (Harbor's severities)
    summary: dict = field(default_factory=dict)  # severity → count
    fixable: int = 0
    total: int = 0
    cve_ids: tuple[str, ...] = ()
    cve_severities: dict = field(default_factory=dict)  # id → its gravest severity in the report


class Scan(Aggregate):
    class Event(Aggregate.Event):
        repository: str
        digest: str
        scan_type: str
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: Scan) -> None:
            pass

    class Created(Event, Aggregate.Created):
        """The artifact's first scan request (a `Requested` follows in the same change)."""

    class Requested(Event):
        """`scanner`: the registration's uuid; `trigger`: manual | event | scan_all; `scan_all`: the
        scan-all run it belongs to; `trigger_position`: the log position of the push that asked
        for it (auto-scan), so that followers in several processes ask once; `reason`: why, in
        words (the vulnerability data import that asked for it)."""

        report_id: str
        scanner: str
        scanner_name: str
        tag: str | None
        mime_type: str
        trigger: str
        scan_all: str | None = None
        trigger_position: int | None = None
        reason: str = ""

        def apply(self, scan: Scan) -> None:
            scan.status, scan.report_id, scan.attempts = PENDING, self.report_id, 0
            scan.scanner, scan.scanner_name, scan.tag = self.scanner, self.scanner_name, self.tag
            scan.mime_type, scan.requested_by, scan.scan_all = self.mime_type, self.actor, self.scan_all
            scan.started_at = scan.lease_until = None
            if self.trigger_position is not None:
                scan.trigger_position = self.trigger_position

    class Started(Event):
        """The claim: whoever records this at the version it loaded runs the scan."""

        report_id: str
        attempt: int
        worker: str
        lease_until: datetime

        def apply(self, scan: Scan) -> None:
            scan.status, scan.attempts, scan.lease_until = RUNNING, self.attempt, self.lease_until
            scan.started_at = self.timestamp

    class Completed(Event):
        report_id: str
        report_digest: str
        report_media_type: str
        report_size: int
        scanner_name: str
        scanner_vendor: str
        scanner_version: str
        severity: str
        summary: dict
        fixable: int
        total: int
        cve_ids: list
        started_at: datetime | None
        tag: str | None = None
        requested_by: str = ""
        # id → its gravest severity: an allowlist that exempts some ids leaves the others' severity
        cve_severities: dict | None = None

        def apply(self, scan: Scan) -> None:
            scan.status = SUCCESS

    class Failed(Event):
        report_id: str
        reason: str
        scanner_name: str
        started_at: datetime | None
        tag: str | None = None
        requested_by: str = ""

        def apply(self, scan: Scan) -> None:
            scan.status = ERROR

    class SbomAttached(Event):
        """The completed SBOM scan's CycloneDX document is a referrer of the artifact:
        `sbom_digest`, the manifest pushed into the same repository (Harbor's `sbom_digest`)."""

        report_id: str
        sbom_digest: str

    class SbomNotAttached(Event):
        """The SBOM could not be pushed as a referrer (a quota, a policy): the report stays."""

        report_id: str
        reason: str

    class Stopped(Event):
        report_id: str
        scanner_name: str
        started_at: datetime | None
        tag: str | None = None
        requested_by: str = ""

        def apply(self, scan: Scan) -> None:
            scan.status = STOPPED

    def __init__(self, repository: str, digest: str, scan_type: str) -> None:
        self.repository, self.digest, self.scan_type = repository, digest, scan_type
        self.status: str | None = None
        self.report_id = ""
        self.scanner, self.scanner_name, self.tag, self.mime_type = "", "", None, ""
        self.requested_by = ""
        self.scan_all: str | None = None
        self.attempts = 0
        self.started_at: datetime | None = None
        self.lease_until: datetime | None = None
        self.trigger_position: int | None = None

    @staticmethod
    def create_id(repository: str, digest: str, scan_type: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/scans/{repository}@{digest}/{scan_type}")

    @classmethod
    def create(cls, repository: str, digest: str, scan_type: str, ctx: RequestContext) -> Scan:
        return cls._create(cls.Created, id=cls.create_id(repository, digest, check_scan_type(scan_type)),
                           repository=repository, digest=digest, scan_type=scan_type, **ctx.event_fields())

    @property
    def in_progress(self) -> bool:
        return self.status in (PENDING, RUNNING)

    def request(self, scanner: str, scanner_name: str, tag: str | None, mime_type: str, trigger: str,
                ctx: RequestContext, scan_all: str | None = None, trigger_position: int | None = None,
                report_id: str | None = None, reason: str = "") -> str | None:
        """Asks for a new scan; returns its report id (None: the push at `trigger_position` asked
        already). ConflictError while one is pending or running."""
        if trigger_position is not None and self.trigger_position is not None \
                and trigger_position <= self.trigger_position:
            return None
        if self.in_progress:
            raise ConflictError(f"a scan of {self.repository}@{self.digest} is {self.status.lower()} already",
                                {"report_id": self.report_id})
        report_id = report_id or str(uuid4())
        self._trigger(self.Requested, ctx, report_id=report_id, scanner=scanner, scanner_name=scanner_name,
                      tag=(tag or None) and tag[:MAX_TAG_LENGTH], mime_type=mime_type, trigger=trigger,
                      scan_all=scan_all, trigger_position=trigger_position, reason=reason[:MAX_REASON_LENGTH])
        return report_id

    def due(self, now: datetime) -> bool:
        if self.status == PENDING:
            return True
        return self.status == RUNNING and self.lease_until is not None and self.lease_until <= now

    def claim(self, worker: str, now: datetime, lease_seconds: float, ctx: RequestContext) -> int:
        """Takes the scan for one attempt; ConflictError when it is not due. A scan whose workers
        died MAX_ATTEMPTS times fails instead (and ConflictError is raised after recording it)."""
        if not self.due(now):
            raise ConflictError("the scan is not due", {"status": self.status})
        if self.attempts >= MAX_ATTEMPTS:
            self.fail(self.report_id, f"the scan was started {self.attempts} times and its worker stopped "
                                      "each time before it ended", ctx)
            raise ConflictError("the scan failed: too many attempts", {"report_id": self.report_id})
        attempt = self.attempts + 1
        self._trigger(self.Started, ctx, report_id=self.report_id, attempt=attempt, worker=worker,
                      lease_until=now + timedelta(seconds=lease_seconds))
        return attempt

    def complete(self, report_id: str, result: ScanResult, ctx: RequestContext) -> None:
        self._check_running(report_id)
        self._trigger(self.Completed, ctx, report_id=report_id, report_digest=result.report_digest,
                      report_media_type=result.report_media_type, report_size=result.report_size,
                      scanner_name=result.scanner_name, scanner_vendor=result.scanner_vendor,
                      scanner_version=result.scanner_version, severity=result.severity,
                      summary=dict(result.summary), fixable=result.fixable, total=result.total,
                      cve_ids=list(result.cve_ids), cve_severities=dict(result.cve_severities),
                      **self._outcome_fields())

    def fail(self, report_id: str, reason: str, ctx: RequestContext) -> None:
        self._check_running(report_id, pending_too=True)
        self._trigger(self.Failed, ctx, report_id=report_id, reason=reason[:MAX_REASON_LENGTH],
                      scanner_name=self.scanner_name, **self._outcome_fields())

    def record_sbom_referrer(self, report_id: str, sbom_digest: str | None, reason: str,
                             ctx: RequestContext) -> None:
        """What became of the completed report's referrer: pushed (`sbom_digest`) or not (`reason`)."""
        if self.status != SUCCESS or report_id != self.report_id:
            raise ConflictError("the scan was superseded meanwhile", {"report_id": report_id})
        if sbom_digest is not None:
            self._trigger(self.SbomAttached, ctx, report_id=report_id, sbom_digest=sbom_digest)
        else:
            self._trigger(self.SbomNotAttached, ctx, report_id=report_id, reason=reason[:MAX_REASON_LENGTH])

    def stop(self, ctx: RequestContext) -> bool:
        """Stops a pending or running scan (its worker notices and records nothing more); False
        when none is in progress."""
        if not self.in_progress:
            return False
        self._trigger(self.Stopped, ctx, report_id=self.report_id, scanner_name=self.scanner_name,
                      **self._outcome_fields())
        return True

    def _check_running(self, report_id: str, pending_too: bool = False) -> None:
        allowed = (RUNNING, PENDING) if pending_too else (RUNNING,)
        if self.status not in allowed or report_id != self.report_id:
            raise ConflictError("the scan was stopped or superseded meanwhile", {"report_id": report_id})

    def _outcome_fields(self) -> dict:
        return {"started_at": self.started_at, "tag": self.tag, "requested_by": self.requested_by}

    def _trigger(self, event_class, ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, repository=self.repository, digest=self.digest, scan_type=self.scan_type,
                           **ctx.event_fields(), **fields)


class ScanAllRun(Aggregate):
    """One "scan all": every artifact asked to be scanned, each a `Scan.Requested` naming the run."""

    class Event(Aggregate.Event):
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: ScanAllRun) -> None:
            pass

    class Started(Event, Aggregate.Created):
        trigger: str  # manual | schedule

    class Planned(Event):
        """Every scan of the run is requested: `total` of them."""

        total: int

        def apply(self, run: ScanAllRun) -> None:
            run.planned, run.total = True, self.total

    class StopRequested(Event):
        def apply(self, run: ScanAllRun) -> None:
            run.stopping = True

    def __init__(self, trigger: str) -> None:
        self.trigger = trigger
        self.planned, self.total, self.stopping = False, 0, False

    @staticmethod
    def scheduled_id(slot: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/scans/all/schedule/{slot}")

    @classmethod
    def start(cls, trigger: str, ctx: RequestContext, run_id: UUID | None = None) -> ScanAllRun:
        return cls._create(cls.Started, id=run_id or uuid4(), trigger=trigger, **ctx.event_fields())

    def plan(self, total: int, ctx: RequestContext) -> None:
        self.trigger_event(self.Planned, total=total, **ctx.event_fields())

    def request_stop(self, ctx: RequestContext) -> None:
        if not self.stopping:
            self.trigger_event(self.StopRequested, **ctx.event_fields())


class ScanAllSchedule(Aggregate):
    """The instance's one scan-all schedule: a cron expression (None: none)."""

    class Event(Aggregate.Event):
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: ScanAllSchedule) -> None:
            pass

    class Created(Event, Aggregate.Created):
        pass

    class Set(Event):
        cron: str | None

        def apply(self, schedule: ScanAllSchedule) -> None:
            schedule.cron = self.cron

    ID = uuid5(NAMESPACE_URL, "/scans/all/schedule")

    def __init__(self) -> None:
        self.cron: str | None = None

    @classmethod
    def create(cls, ctx: RequestContext) -> ScanAllSchedule:
        return cls._create(cls.Created, id=cls.ID, **ctx.event_fields())

    def set(self, cron: str | None, ctx: RequestContext) -> None:
        if cron != self.cron:
            self.trigger_event(self.Set, cron=cron, **ctx.event_fields())


class ScanRequests:
    """Commands on scans; each returns the log position its events reached."""

    def __init__(self, app) -> None:
        self.app = app

    def request(self, repository: str, digest: str, scan_type: str, scanner: str, scanner_name: str,
                tag: str | None, mime_type: str, trigger: str, ctx: RequestContext, scan_all: str | None = None,
                trigger_position: int | None = None, reason: str = "") -> int | None:
        def change(scan: Scan) -> None:
            scan.request(scanner, scanner_name, tag, mime_type, trigger, ctx, scan_all, trigger_position,
                         reason=reason)

        return self.app.update(Scan.create_id(repository, digest, check_scan_type(scan_type)), change,
                               create=lambda: Scan.create(repository, digest, scan_type, ctx))

    def claim(self, scan_id: UUID, worker: str, now: datetime, lease_seconds: float,
              ctx: RequestContext) -> tuple[Scan, int | None]:
        """The scan as claimed (raises ConflictError when another worker was first, or it is not
        due); saved at the version loaded, so a concurrent claim fails."""
        scan: Scan | None = self.app.load(scan_id)
        if scan is None:
            raise NotFoundError("scan not found", {"scan": str(scan_id)})
        try:
            scan.claim(worker, now, lease_seconds, ctx)
        except ConflictError:
            if scan.pending_events:  # failed for too many attempts: that is recorded
                self.app.save(scan)
            raise
        return scan, self.app.save(scan)[-1].notification.id

    def complete(self, scan_id: UUID, report_id: str, result: ScanResult, ctx: RequestContext) -> int | None:
        return self.app.update(scan_id, lambda scan: scan.complete(report_id, result, ctx))

    def fail(self, scan_id: UUID, report_id: str, reason: str, ctx: RequestContext) -> int | None:
        return self.app.update(scan_id, lambda scan: scan.fail(report_id, reason, ctx))

    def record_sbom_referrer(self, scan_id: UUID, report_id: str, sbom_digest: str | None, reason: str,
                             ctx: RequestContext) -> int | None:
        return self.app.update(scan_id, lambda scan: scan.record_sbom_referrer(report_id, sbom_digest, reason, ctx))

    def stop(self, repository: str, digest: str, scan_type: str, ctx: RequestContext) -> int | None:
        """Stops the artifact's scan in progress, if any; NotFoundError when it was never scanned."""
        return self.app.update(Scan.create_id(repository, digest, check_scan_type(scan_type)),
                               lambda scan: scan.stop(ctx), missing=lambda: NotFoundError(
                                   f"no scan of {repository}@{digest}", {"repository": repository}))

    def get(self, repository: str, digest: str, scan_type: str) -> Scan | None:
        return self.app.load(Scan.create_id(repository, digest, scan_type))
