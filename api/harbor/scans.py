"""Scans, Harbor's way: scan an artifact, stop it, its log, its vulnerabilities
(`…/additions/vulnerabilities`), its SBOM (`…/additions/sbom`), the scan overview of artifact
listings (`with_scan_overview`, `with_sbom_overview`), and "scan all"
(/api/v2.0/system/scanAll…, /api/v2.0/scans/…/metrics). A request only records what is asked
(`Scan.Requested`): the scan itself runs in the background (background/scan_jobs.py), so no
request waits for a scanner.

Portlog's addition: `as_of=<time>` on `…/additions/vulnerabilities` (and `…/additions/sbom`)
answers the report that was known for the digest at that moment (the last one completed at or
before it)."""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import chain
from uuid import UUID

import ijson
import orjson
from sqlalchemy import select
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from adapters.scanner_client import HARBOR_NATIVE_REPORT, VULNERABILITY_REPORT
from api.harbor import queries
from api.harbor.common import bad_request, body_of, empty, not_found, parse_time
from api.management.common import Call, json_response
from api.management.problems import Problem
from background.sbom_referrers import HARBOR_SBOM, NoSbom, sbom_document
from background.scan_jobs import IMAGE_MANIFESTS, INDEXES, start_scan_all, stop_scan_all
from domain.cron import CronSchedule
from domain.errors import ConflictError
from domain.scans import FINAL, MANUAL, SBOM, SUCCESS, VULNERABILITY, Scan, ScanAllSchedule, check_scan_type
from projections.references import references
from projections.scans import ScanOverview

VULNERABILITY_REPORTS = (VULNERABILITY_REPORT, HARBOR_NATIVE_REPORT)
STATUSES = ("Pending", "Running", "Success", "Error", "Stopped")
# Harbor's schedule types and the cron each stands for (Harbor's crons have seconds first), as GC's.
TYPE_CRONS = {"Hourly": "0 0 * * * *", "Daily": "0 0 0 * * *", "Weekly": "0 0 0 * * 0"}
SCAN_ALL = "scan-all"


# Scanning one artifact


def scan_artifact(call: Call) -> Response:
    """`{"scan_type": "vulnerability"|"sbom"}` (optional: vulnerability); 202 once recorded. An
    index's image manifests are scanned each (as Harbor walks an index)."""
    scan_type = _scan_type(call, required=False)
    project, name = queries.repository_of(call, "sbom" if scan_type == SBOM else "scan", "create")
    row = queries.artifact_of(call, name)
    registration = call.services.scanner_registrations.of_project(project.name)
    if registration is None:
        raise Problem(412, "precondition-failed", f"no available scanner for project {project.name}")
    if registration.disabled:
        raise Problem(412, "precondition-failed", f"scanner {registration.name} is deactivated")
    targets = _scan_targets(call, name, row)
    if not targets:
        raise bad_request(f"the configured scanner {registration.name} does not support scanning artifact with "
                          f"mime type {row.media_type}")
    reference = call.param("reference")
    tag = None if reference.startswith("sha256:") else reference
    position, conflicts = None, []
    for digest, media_type in targets:
        try:
            position = call.services.scan_requests.request(
                name, digest, scan_type, registration.uuid, registration.name,
                tag if digest == row.digest else None, media_type, MANUAL, call.context) or position
        except ConflictError as error:
            conflicts.append(error)
    if len(conflicts) == len(targets):
        raise conflicts[0]
    call.settle(position)
    return empty(202)


def stop_scan(call: Call) -> Response:
    """`{"scan_type": …}`; 202 (a scan no longer in progress stays as it ended)."""
    scan_type = _scan_type(call, required=True)
    _, name = queries.repository_of(call, "sbom" if scan_type == SBOM else "scan", "stop")
    row = queries.artifact_of(call, name)
    position = None
    for digest, _ in _scan_targets(call, name, row) or [(row.digest, row.media_type)]:
        if call.services.scan_requests.get(name, digest, scan_type) is not None:
            position = call.services.scan_requests.stop(name, digest, scan_type, call.context) or position
        elif digest == row.digest:
            raise bad_request(f"no scan job for artifact digest={row.digest}")
    call.settle(position)
    return empty(202)


def scan_log(call: Call) -> Response:
    """What the scan with that report id did, as text, from its events."""
    _, name = queries.repository_of(call, "scan", "read")
    row = queries.artifact_of(call, name)
    report_id = call.param("report_id")
    lines = []
    for digest, _ in _scan_targets(call, name, row) or [(row.digest, row.media_type)]:
        for scan_type in (VULNERABILITY, SBOM):
            events = call.services.registry.events.get(Scan.create_id(name, digest, scan_type))
            lines += [_log_line(event) for event in events if getattr(event, "report_id", None) == report_id]
    if not lines:
        raise not_found(f"report with uuid {report_id} does not exist")
    return PlainTextResponse("\n".join(lines) + "\n")


def vulnerabilities(call: Call) -> Response:
    """The artifact's vulnerability report keyed by its media type (Harbor's shape), the first
    of `X-Accept-Vulnerabilities` that is one; `{}` when it was never scanned."""
    _, name = queries.repository_of(call, "artifact", "read")
    row = queries.artifact_of(call, name)
    as_of = call.request.query_params.get("as_of")
    report = call.services.scans.report_as_of(name, row.digest, VULNERABILITY, parse_time(as_of) if as_of else None)
    accepted = [media for media in _accepted(call) if media in VULNERABILITY_REPORTS]
    if report is None or not accepted:
        return json_response({})
    key = report.report_media_type if report.report_media_type in accepted else accepted[0]
    return _report_response(call, key, report.report_digest)


def sbom(call: Call) -> Response:
    """The SBOM, as JSON. On Harbor's SBOM accessory (the referrer an SBOM scan pushes,
    background/sbom_referrers.py) its one layer, as Harbor serves it; on the scanned artifact
    itself (Portlog's addition, which works before the accessory is there, or when its push was
    refused) the document of its last completed SBOM scan, streamed out of the stored report,
    `as_of=<time>` as for vulnerabilities. 404 when there is none."""
    _, name = queries.repository_of(call, "artifact", "read")
    row = queries.artifact_of(call, name)
    if row.artifact_type == HARBOR_SBOM:
        return _accessory_sbom(call, name, row)
    as_of = call.request.query_params.get("as_of")
    report = call.services.scans.report_as_of(name, row.digest, SBOM, parse_time(as_of) if as_of else None)
    if report is not None:
        chunks = sbom_document(call.services.blobs, report.report_digest)
        try:
            first = next(chunks)
        except NoSbom:
            pass
        else:
            media_type = _report_media_type(call, report.report_digest)
            return StreamingResponse(chain([first], chunks), media_type=media_type)
    raise not_found(f"no SBOM of {name}@{row.digest}" + (f" as of {as_of}" if as_of else ""))


def _accessory_sbom(call: Call, name: str, row) -> Response:
    """Harbor's SBOM accessory holds its document as its only layer."""
    layers = orjson.loads(call.services.manifests.read(row.digest)).get("layers") or []
    if len(layers) != 1 or not isinstance(layers[0], dict) or not isinstance(layers[0].get("digest"), str):
        raise not_found(f"the SBOM of {name}@{row.digest} is not found")
    return StreamingResponse(call.services.blobs.read(layers[0]["digest"]), media_type=HARBOR_SBOM)


def _report_media_type(call: Call, report_digest: str) -> str:
    """The SBOM report's `media_type` (the document's format), when it names a JSON one."""
    with call.services.blobs.open(report_digest) as stream:
        found = next(ijson.items(stream, "media_type"), None)
    return found if isinstance(found, str) and found.endswith("+json") else "application/json"


def _report_response(call: Call, key: str, digest: str) -> Response:
    """`{"<media type>": <the stored report>}`, streamed from the blob store."""
    blobs = call.services.blobs

    def body():
        yield b'{"' + key.encode() + b'":'
        yield from blobs.read(digest)
        yield b"}"

    return StreamingResponse(body(), media_type="application/json")


def _accepted(call: Call) -> list[str]:
    header = call.request.headers.get("x-accept-vulnerabilities")
    if not header:
        return list(VULNERABILITY_REPORTS)
    # Media types carry `; version=…`: split on the commas between them only.
    return [part.strip() for part in header.split(",") if part.strip()]


# The overview in artifact listings (api/harbor/repositories.py)


def overviews_json(call: Call, name: str, rows: list) -> dict[str, dict]:
    """digest → {"scan_overview": …, "sbom_overview": …} as asked by the listing's parameters."""
    params = call.request.query_params
    wanted = [(scan_type, key) for scan_type, key, flag in (
        (VULNERABILITY, "scan_overview", "with_scan_overview"), (SBOM, "sbom_overview", "with_sbom_overview"))
        if params.get(flag, "false").lower() == "true"]
    if not wanted or not rows:
        return {}
    children = _children(call, name, [row.digest for row in rows if row.media_type in INDEXES])
    digests = [row.digest for row in rows] + [child for found in children.values() for child in found]
    found: dict[str, dict] = {row.digest: {} for row in rows}
    for scan_type, key in wanted:
        overviews = call.services.scans.overviews(name, digests, scan_type)
        for row in rows:
            parts = [overviews[d] for d in [row.digest, *children.get(row.digest, [])] if d in overviews]
            if parts:
                found[row.digest][key] = scan_overview_json(parts) if scan_type == VULNERABILITY \
                    else sbom_overview_json(parts[0], name)
    return found


def scan_overview_json(parts: list[ScanOverview]) -> dict:
    """Harbor's ScanOverview: the report's media type → NativeReportSummary (an index's children
    merged, as Harbor merges them)."""
    summaries = [native_summary(part) for part in parts]
    merged = summaries[0] if len(summaries) == 1 else _merge(summaries)
    media_type = next((p.report_media_type for p in parts if p.status == SUCCESS and p.report_media_type),
                      VULNERABILITY_REPORT)
    return {media_type: merged}


def native_summary(overview: ScanOverview) -> dict:
    success = overview.status == SUCCESS
    start = overview.started_at or overview.requested_at
    end = overview.ended_at if overview.status in FINAL else None
    return {"report_id": overview.report_id, "scan_status": overview.status,
            "severity": overview.severity if success else "",
            "duration": max(int((end - start).total_seconds()), 0) if start and end else 0,
            "summary": {"total": overview.total, "fixable": overview.fixable, "summary": overview.summary}
            if success else None,
            "start_time": start, "end_time": end, "complete_percent": 100 if success else 0,
            "scanner": {"name": overview.scanner, "vendor": overview.scanner_vendor,
                        "version": overview.scanner_version}}


def sbom_overview_json(overview: ScanOverview, repository: str) -> dict:
    summary = native_summary(overview)
    found = {key: summary[key] for key in ("start_time", "end_time", "scan_status", "report_id", "duration",
                                           "scanner")}
    if overview.sbom_digest:  # Harbor's: where the SBOM accessory is
        found["sbom_digest"] = overview.sbom_digest
        found["sbom_repository"] = repository
    return found


_SEVERITY_ORDER = ("None", "Unknown", "Negligible", "Low", "Medium", "High", "Critical")
_STATUS_ORDER = ("Running", "Pending", "Error", "Stopped", "Success")  # the merged status: the first one present


def _merge(summaries: list[dict]) -> dict:
    status = next(s for s in _STATUS_ORDER if any(part["scan_status"] == s for part in summaries))
    done = [part for part in summaries if part["summary"]]
    counts: dict[str, int] = {}
    for part in done:
        for severity, count in part["summary"]["summary"].items():
            counts[severity] = counts.get(severity, 0) + count
    severity = max((part["severity"] for part in done), key=_rank, default="")
    starts = [part["start_time"] for part in summaries if part["start_time"]]
    ends = [part["end_time"] for part in summaries if part["end_time"]]
    return {"report_id": ",".join(part["report_id"] for part in summaries), "scan_status": status,
            "severity": severity if status == SUCCESS else "",
            "duration": max(int((max(ends) - min(starts)).total_seconds()), 0) if starts and ends else 0,
            "summary": {"total": sum(p["summary"]["total"] for p in done),
                        "fixable": sum(p["summary"]["fixable"] for p in done), "summary": counts}
            if status == SUCCESS else None,
            "start_time": min(starts) if starts else None, "end_time": max(ends) if ends else None,
            "complete_percent": 100 * len(done) // len(summaries), "scanner": summaries[-1]["scanner"]}


def _rank(severity: str) -> int:
    return _SEVERITY_ORDER.index(severity) if severity in _SEVERITY_ORDER else 0


# Scan all


def get_scan_all_schedule(call: Call) -> Response:
    _require_scan_all(call, "read")
    schedule = call.services.registry.load(ScanAllSchedule.ID)
    cron = schedule.cron if schedule else None
    kind = next((name for name, text in TYPE_CRONS.items() if text == cron), "Custom") if cron else "None"
    upcoming = CronSchedule.parse(cron).next_after(datetime.now(timezone.utc)) if cron else None
    return json_response({"schedule": {"type": kind, "cron": cron or "", "next_scheduled_time": upcoming}})


def create_scan_all_schedule(call: Call) -> Response:
    """`schedule.type` Manual starts a scan of everything now (409 while one runs); None does
    nothing; another type sets the schedule (412 when there is one: Harbor asks to remove it first)."""
    kind, cron = _schedule_of(body_of(call))
    _require_scan_all(call, "create")
    if kind == "None":
        return empty(201)
    if kind == "Manual":
        latest = call.services.scans.latest_scan_all("manual")
        if latest is not None and _ongoing(call, latest):
            raise Problem(409, "conflict", "a previous scan all job already exists and is still running")
        _, position = start_scan_all(call.services, "manual", call.context)
        call.settle(position)
        return empty(201)
    schedule = call.services.registry.load(ScanAllSchedule.ID)
    if schedule is not None and schedule.cron:
        raise Problem(412, "precondition-failed", "fail to set schedule for scan all as always had one, "
                                                  "please delete it firstly then to re-schedule")
    call.settle(_set_schedule(call, cron))
    return empty(201)


def update_scan_all_schedule(call: Call) -> Response:
    kind, cron = _schedule_of(body_of(call))
    _require_scan_all(call, "update")
    if kind == "Manual":
        raise bad_request(f"fail to update scan all schedule as wrong schedule type: {kind}")
    call.settle(_set_schedule(call, cron))
    return empty()


def stop_scan_all_job(call: Call) -> Response:
    _require_scan_all(call, "stop")
    latest = call.services.scans.latest_scan_all()
    if latest is None:
        raise bad_request("no scan all job is found currently")
    call.settle(stop_scan_all(call.services, UUID(latest.uuid), call.context))
    return empty(202)


def scan_all_metrics(call: Call) -> Response:
    """Harbor's Stats of the latest scan all."""
    _require_scan_all(call, "read")
    return json_response(_stats(call, call.services.scans.latest_scan_all()))


def scheduled_scan_all_metrics(call: Call) -> Response:
    _require_scan_all(call, "read")
    return json_response(_stats(call, call.services.scans.latest_scan_all("schedule")))


def _stats(call: Call, run) -> dict:
    if run is None:
        return {"total": 0, "completed": 0, "ongoing": False}
    counts = call.services.scans.scan_all_statuses(run.uuid)
    metrics = {status: counts.get(status, 0) for status in STATUSES}
    total = sum(metrics.values())
    completed = metrics["Success"] + metrics["Error"] + metrics["Stopped"]
    return {"total": total, "completed": completed, "metrics": metrics,
            "ongoing": not run.planned or total != completed, "trigger": run.trigger.title()}


def _ongoing(call: Call, run) -> bool:
    return _stats(call, run)["ongoing"] and not run.stopping


def _require_scan_all(call: Call, action: str) -> None:
    call.require_system(SCAN_ALL, action)
    if call.services.scanner_registrations.default() is None:
        raise Problem(412, "precondition-failed", "no scanner is configured, it's not possible to scan")


def _schedule_of(body: dict) -> tuple[str, str | None]:
    schedule = body.get("schedule")
    if not isinstance(schedule, dict):
        raise bad_request("schedule (an object with type, and cron for Custom) is required")
    kind = schedule.get("type")
    if kind in ("Manual", "None"):
        return kind, None
    if kind in TYPE_CRONS:
        return kind, TYPE_CRONS[kind]
    if kind in ("Custom", "Schedule") and isinstance(schedule.get("cron"), str):
        return kind, str(CronSchedule.parse(schedule["cron"]))
    raise bad_request("schedule type must be Manual, None, Hourly, Daily, Weekly or Custom (with cron)")


def _set_schedule(call: Call, cron: str | None) -> int | None:
    ctx = call.context
    return call.services.registry.update(ScanAllSchedule.ID, lambda schedule: schedule.set(cron, ctx),
                                         create=lambda: ScanAllSchedule.create(ctx))


# Helpers


def _scan_type(call: Call, required: bool) -> str:
    body = call.body if isinstance(call.body, dict) else {}
    value = body.get("scan_type")
    if value is None:
        if required:
            raise bad_request("scan_type (vulnerability or sbom) is required")
        return VULNERABILITY
    return check_scan_type(value)


def _scan_targets(call: Call, name: str, row) -> list[tuple[str, str]]:
    """(digest, media type) of what scanning the artifact scans: itself (an image manifest), or
    an index's image manifests."""
    if row.media_type in IMAGE_MANIFESTS:
        return [(row.digest, row.media_type)]
    if row.media_type not in INDEXES:
        return []
    catalog = call.services.catalog
    children = [catalog.manifest_by_digest(name, child) for child in _children(call, name, [row.digest])[row.digest]]
    return [(child.digest, child.media_type) for child in children
            if child is not None and child.media_type in IMAGE_MANIFESTS]


def _children(call: Call, name: str, digests: list[str]) -> dict[str, list[str]]:
    if not digests:
        return {}
    query = select(references.c.manifest_digest, references.c.target_digest).where(
        references.c.repository == name, references.c.manifest_digest.in_(digests),
        references.c.role == "manifest").order_by(references.c.manifest_digest, references.c.ordinal)
    found: dict[str, list[str]] = {digest: [] for digest in digests}
    with call.services.db.reader.connect() as conn:
        for parent, child in conn.execute(query):
            found[parent].append(child)
    return found


def _log_line(event) -> str:
    when = event.timestamp.isoformat()
    match event:
        case Scan.Requested():
            return (f"{when} {event.scan_type} scan of {event.repository}@{event.digest} requested by {event.actor} "
                    f"({event.trigger}{': ' + event.reason if event.reason else ''}), scanner {event.scanner_name}")
        case Scan.Started():
            return f"{when} started by worker {event.worker} (attempt {event.attempt})"
        case Scan.Completed():
            summary = ", ".join(f"{severity}: {count}" for severity, count in sorted(event.summary.items()))
            return (f"{when} completed by {event.scanner_name} {event.scanner_version}: {event.total} "
                    f"vulnerabilities ({summary or 'none'}), {event.fixable} fixable; severity {event.severity}; "
                    f"report {event.report_digest}")
        case Scan.SbomAttached():
            return f"{when} SBOM pushed as a referrer of the artifact by {event.actor}: {event.sbom_digest}"
        case Scan.SbomNotAttached():
            return f"{when} SBOM not attached: {event.reason}"
        case Scan.Failed():
            return f"{when} failed: {event.reason}"
        case Scan.Stopped():
            return f"{when} stopped by {event.actor}"
    return f"{when} {type(event).__name__}"

