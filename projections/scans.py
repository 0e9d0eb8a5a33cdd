"""Scans read model: per artifact and scan type, the latest scan's status and the latest
completed report's summary; every completed report (the log keeps them all), so that what was
known for a digest at a moment is one indexed query (`as_of`); scan-all runs. The findings
themselves are read from the stored report (blob store, content address), streamed.

`overview(repository, digest, scan_type)` is the contract other parts code against (the pull
policies): its `status` is the latest scan's, everything else comes from the latest *completed*
scan (`completed_at` None: never completed), so a rescan under way does not hide what is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator

import ijson
import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    select,
    tuple_,
    update,
)

from domain.ports import BlobStore
from domain.scans import FINAL, PENDING, RUNNING, VULNERABILITY, Scan, ScanAllRun
from projections.database import Name, ReadModelDatabase, as_utc

metadata = MetaData()
artifacts = Table(
    "scan_artifacts", metadata,
    Column("scan_id", String(36), primary_key=True),
    Column("id", BigInteger, nullable=False),  # the log position of the first request
    Column("repository", Name(255), nullable=False),
    Column("digest", Name(200), nullable=False),
    Column("scan_type", String(20), nullable=False),
    Column("status", String(16), nullable=False),
    Column("report_id", String(36), nullable=False),
    Column("scanner", String(36), nullable=False),
    Column("scanner_name", Text, nullable=False),
    Column("tag", Text),
    Column("trigger", String(16), nullable=False),
    Column("scan_all", String(36)),
    Column("requested_by", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("lease_until", DateTime(timezone=True)),
    Column("error", Text),
    Column("last_report", BigInteger),  # scan_reports.position of the latest Completed
    Index("scan_artifacts_artifact", "repository", "digest", "scan_type", unique=True),
    Index("scan_artifacts_status", "status", "id"),
    Index("scan_artifacts_scan_all", "scan_all", "status"),
)
reports = Table(
    "scan_reports", metadata,
    Column("position", BigInteger, primary_key=True),
    Column("repository", Name(255), nullable=False),
    Column("digest", Name(200), nullable=False),
    Column("scan_type", String(20), nullable=False),
    Column("report_id", String(36), nullable=False),
    Column("report_digest", String(200), nullable=False),
    Column("report_media_type", Text, nullable=False),
    Column("report_size", BigInteger, nullable=False),
    Column("scanner_name", Text, nullable=False),
    Column("scanner_vendor", Text, nullable=False),
    Column("scanner_version", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("summary", Text, nullable=False),  # JSON: severity → count
    Column("fixable", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("cve_ids", Text, nullable=False),  # JSON list
    Column("cve_severities", Text),  # JSON: id → severity
    Column("sbom_digest", String(200)),  # an SBOM report's referrer, once pushed (Scan.SbomAttached)
    Column("started_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True), nullable=False),
    Index("scan_reports_artifact", "repository", "digest", "scan_type", "position"),
)
scan_all_runs = Table(
    "scan_all_runs", metadata,
    Column("uuid", String(36), primary_key=True),
    Column("id", BigInteger, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("actor", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("planned", Boolean, nullable=False),
    Column("total", Integer, nullable=False),
    Column("stopping", Boolean, nullable=False),
)


class ScansProjection:
    name = "scans"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case Scan.Requested():
                self._requested(conn, event, position)
            case Scan.Started():
                self._set(conn, event, status=RUNNING, started_at=event.timestamp, lease_until=event.lease_until,
                          ended_at=None, error=None)
            case Scan.Completed():
                conn.execute(reports.insert().values(
                    position=position, repository=event.repository, digest=event.digest,
                    scan_type=event.scan_type, report_id=event.report_id, report_digest=event.report_digest,
                    report_media_type=event.report_media_type, report_size=event.report_size,
                    scanner_name=event.scanner_name, scanner_vendor=event.scanner_vendor,
                    scanner_version=event.scanner_version, severity=event.severity,
                    summary=orjson.dumps(event.summary).decode(), fixable=event.fixable, total=event.total,
                    cve_ids=orjson.dumps(list(event.cve_ids)).decode(),
                    cve_severities=orjson.dumps(event.cve_severities or {}).decode(), started_at=event.started_at,
                    completed_at=event.timestamp))
                self._set(conn, event, status="Success", ended_at=event.timestamp, last_report=position)
            case Scan.SbomAttached():
                conn.execute(update(reports).where(
                    reports.c.repository == event.repository, reports.c.digest == event.digest,
                    reports.c.scan_type == event.scan_type, reports.c.report_id == event.report_id)
                    .values(sbom_digest=event.sbom_digest))
            case Scan.Failed():
                self._set(conn, event, status="Error", ended_at=event.timestamp, error=event.reason)
            case Scan.Stopped():
                self._set(conn, event, status="Stopped", ended_at=event.timestamp)
            case ScanAllRun.Started():
                conn.execute(scan_all_runs.insert().values(
                    uuid=str(event.originator_id), id=position, trigger=event.trigger, actor=event.actor,
                    started_at=event.timestamp, planned=False, total=0, stopping=False))
            case ScanAllRun.Planned():
                conn.execute(update(scan_all_runs).where(scan_all_runs.c.uuid == str(event.originator_id))
                             .values(planned=True, total=event.total))
            case ScanAllRun.StopRequested():
                conn.execute(update(scan_all_runs).where(scan_all_runs.c.uuid == str(event.originator_id))
                             .values(stopping=True))

    def _requested(self, conn: Connection, event: Scan.Requested, position: int) -> None:
        values = dict(status=PENDING, report_id=event.report_id, scanner=event.scanner,
                      scanner_name=event.scanner_name, tag=event.tag, trigger=event.trigger, scan_all=event.scan_all,
                      requested_by=event.actor, requested_at=event.timestamp, started_at=None, ended_at=None,
                      lease_until=None, error=None)
        key = str(event.originator_id)
        if not conn.execute(update(artifacts).where(artifacts.c.scan_id == key).values(**values)).rowcount:
            conn.execute(artifacts.insert().values(scan_id=key, id=position, repository=event.repository,
                                                   digest=event.digest, scan_type=event.scan_type, **values))

    def _set(self, conn: Connection, event, **values) -> None:
        conn.execute(update(artifacts).where(artifacts.c.scan_id == str(event.originator_id)).values(**values))


@dataclass(frozen=True)
class ScanOverview:
    """An artifact's scan, for listings and policies (see the module's docstring)."""

    status: str  # Harbor's: Pending, Running, Success, Error, Stopped (the latest scan's)
    severity: str  # the highest found (a Harbor severity); "" when never completed
    summary: dict  # severity → count
    fixable: int
    total: int
    scanner: str  # the scanner's name as the adapter gave it (the registration's, before any report)
    report_id: str  # the latest scan's
    completed_at: datetime | None
    cve_ids: tuple[str, ...]
    scan_type: str = VULNERABILITY
    requested_at: datetime | None = None  # the latest scan's
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    scanner_vendor: str = ""
    scanner_version: str = ""
    report_digest: str | None = None  # the latest completed report's bytes (blob store)
    report_media_type: str | None = None
    report_started_at: datetime | None = None  # when the latest completed scan started
    cve_severities: dict = field(default_factory=dict)  # id → its gravest severity (the pull policy's allowlists)
    sbom_digest: str | None = None  # an SBOM scan's referrer in the same repository (Harbor's sbom_digest)


@dataclass(frozen=True)
class ReportRow:
    position: int
    repository: str
    digest: str
    scan_type: str
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
    cve_ids: tuple[str, ...]
    cve_severities: dict
    started_at: datetime | None
    completed_at: datetime
    sbom_digest: str | None = None


@dataclass(frozen=True)
class Finding:
    """One vulnerability of a report (Harbor's VulnerabilityItem)."""

    id: str
    package: str
    version: str
    fix_version: str
    severity: str
    description: str = ""
    links: tuple[str, ...] = ()
    score_v3: float | None = None
    cwe_ids: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DueScan:
    scan_id: str
    repository: str
    digest: str
    scan_type: str


@dataclass(frozen=True)
class ScanAllRunRow:
    uuid: str
    id: int
    trigger: str
    actor: str
    started_at: datetime
    planned: bool
    total: int
    stopping: bool


class ScansView:
    def __init__(self, db: ReadModelDatabase, blobs: BlobStore) -> None:
        self.engine = db.reader
        self.blobs = blobs

    # Overviews

    def overview(self, repository: str, digest: str, scan_type: str = VULNERABILITY) -> ScanOverview | None:
        return self.overviews(repository, [digest], scan_type).get(digest)

    def overviews(self, repository: str, digests: list[str], scan_type: str = VULNERABILITY) -> dict[str, ScanOverview]:
        """digest → overview, for the artifacts of one listing page (one query)."""
        if not digests:
            return {}
        query = select(artifacts, *_REPORT_COLUMNS).select_from(
            artifacts.outerjoin(reports, reports.c.position == artifacts.c.last_report)).where(
            artifacts.c.repository == repository, artifacts.c.digest.in_(digests),
            artifacts.c.scan_type == scan_type)
        with self.engine.connect() as conn:
            return {row.digest: _overview(row) for row in conn.execute(query)}

    # Reports and findings

    def report_as_of(self, repository: str, digest: str, scan_type: str = VULNERABILITY,
                     at: datetime | None = None) -> ReportRow | None:
        """The last completed report of the artifact at or before `at` (None: the latest)."""
        query = select(reports).where(reports.c.repository == repository, reports.c.digest == digest,
                                      reports.c.scan_type == scan_type)
        if at is not None:
            query = query.where(reports.c.completed_at <= at)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(reports.c.position.desc()).limit(1)).first()
        return _report(row) if row else None

    def report_by_id(self, repository: str, digest: str, report_id: str) -> ReportRow | None:
        query = select(reports).where(reports.c.repository == repository, reports.c.digest == digest,
                                      reports.c.report_id == report_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _report(row) if row else None

    def findings(self, repository: str, digest: str, scan_type: str = VULNERABILITY,
                 as_of: datetime | None = None) -> list[Finding]:
        """The vulnerabilities of the artifact's last completed report (at or before `as_of`)."""
        report = self.report_as_of(repository, digest, scan_type, as_of)
        return list(self.findings_of(report.report_digest)) if report else []

    def findings_of(self, report_digest: str) -> Iterator[Finding]:
        """A stored report's vulnerabilities, parsed as they stream from the blob store."""
        with self.blobs.open(report_digest) as stream:
            for item in ijson.items(stream, "vulnerabilities.item", use_float=True):
                finding = finding_of(item)
                if finding is not None:
                    yield finding

    def open_report(self, report_digest: str):
        return self.blobs.open(report_digest)

    # The worker pool's queue

    def due(self, now: datetime, limit: int, busy: set[str]) -> list[DueScan]:
        """Pending scans, and running ones whose lease ran out, oldest request first."""
        query = select(artifacts.c.scan_id, artifacts.c.repository, artifacts.c.digest, artifacts.c.scan_type) \
            .where((artifacts.c.status == PENDING)
                   | and_(artifacts.c.status == RUNNING, artifacts.c.lease_until <= now))
        if busy:
            query = query.where(artifacts.c.scan_id.not_in(sorted(busy)))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(artifacts.c.requested_at, artifacts.c.id).limit(limit)).all()
        return [DueScan(*row) for row in rows]

    def waiting(self, trigger: str) -> int:
        """How many scans asked by that trigger are pending."""
        query = select(func.count()).select_from(artifacts).where(artifacts.c.status == PENDING,
                                                                   artifacts.c.trigger == trigger)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    # Scan all

    def latest_scan_all(self, trigger: str | None = None) -> ScanAllRunRow | None:
        query = select(scan_all_runs)
        if trigger is not None:
            query = query.where(scan_all_runs.c.trigger == trigger)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(scan_all_runs.c.id.desc()).limit(1)).first()
        return ScanAllRunRow(**row._mapping) if row else None

    def scan_all_statuses(self, run: str) -> dict[str, int]:
        """status → how many of the run's scans have it now."""
        query = select(artifacts.c.status, func.count()).where(artifacts.c.scan_all == run) \
            .group_by(artifacts.c.status)
        with self.engine.connect() as conn:
            return dict(conn.execute(query).all())

    def in_progress_of_run(self, run: str) -> list[tuple[str, str, str]]:
        query = select(artifacts.c.repository, artifacts.c.digest, artifacts.c.scan_type).where(
            artifacts.c.scan_all == run, artifacts.c.status.in_((PENDING, RUNNING)))
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def statuses(self, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
        """(repository, digest, scan_type) → the latest scan's status, for those scanned."""
        if not keys:
            return {}
        key = tuple_(artifacts.c.repository, artifacts.c.digest, artifacts.c.scan_type)
        query = select(artifacts.c.repository, artifacts.c.digest, artifacts.c.scan_type, artifacts.c.status) \
            .where(key.in_(keys))
        with self.engine.connect() as conn:
            return {(r, d, t): status for r, d, t, status in conn.execute(query)}


_REPORT_COLUMNS = (reports.c.severity, reports.c.summary, reports.c.fixable, reports.c.total, reports.c.cve_ids,
                   reports.c.cve_severities,
                   reports.c.completed_at, reports.c.scanner_name.label("report_scanner"),
                   reports.c.scanner_vendor, reports.c.scanner_version, reports.c.report_digest,
                   reports.c.report_media_type, reports.c.started_at.label("report_started_at"), reports.c.sbom_digest)


def _overview(row) -> ScanOverview:
    completed = row.completed_at is not None
    return ScanOverview(
        status=row.status, severity=row.severity if completed else "",
        summary=orjson.loads(row.summary) if completed else {}, fixable=row.fixable or 0, total=row.total or 0,
        scanner=row.report_scanner if completed and row.status in FINAL else row.scanner_name,
        report_id=row.report_id, completed_at=as_utc(row.completed_at) if completed else None,
        cve_ids=tuple(orjson.loads(row.cve_ids)) if completed else (), scan_type=row.scan_type,
        requested_at=as_utc(row.requested_at), started_at=_utc(row.started_at), ended_at=_utc(row.ended_at),
        error=row.error, scanner_vendor=row.scanner_vendor or "", scanner_version=row.scanner_version or "",
        report_digest=row.report_digest, report_media_type=row.report_media_type,
        report_started_at=_utc(row.report_started_at),
        cve_severities=orjson.loads(row.cve_severities or "{}") if completed else {},
        sbom_digest=row.sbom_digest if completed else None)


def _report(row) -> ReportRow:
    values = dict(row._mapping)
    values["summary"] = orjson.loads(values["summary"])
    values["cve_ids"] = tuple(orjson.loads(values["cve_ids"]))
    values["cve_severities"] = orjson.loads(values["cve_severities"] or "{}")
    values["completed_at"] = as_utc(values["completed_at"])
    values["started_at"] = _utc(values["started_at"])
    return ReportRow(**values)


def _utc(value) -> datetime | None:
    return as_utc(value) if value is not None else None


def finding_of(item: object) -> Finding | None:
    """A report's vulnerability item as a Finding; None for one that is not an object with an id."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    cvss = item.get("preferred_cvss") if isinstance(item.get("preferred_cvss"), dict) else {}
    score = cvss.get("score_v3")
    links = item.get("links") if isinstance(item.get("links"), list) else []
    cwes = item.get("cwe_ids") if isinstance(item.get("cwe_ids"), list) else []
    return Finding(
        id=item["id"], package=_text(item.get("package")), version=_text(item.get("version")),
        fix_version=_text(item.get("fix_version")), severity=_text(item.get("severity")) or "Unknown",
        description=_text(item.get("description")), links=tuple(str(link) for link in links),
        score_v3=float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
        cwe_ids=tuple(str(cwe) for cwe in cwes))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
