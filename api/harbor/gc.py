"""Garbage collection, Harbor's way (/api/v2.0/system/gc…): the history of runs, one run and
its log, and the schedule, where a `Manual` schedule POSTed starts a run at once (as Harbor's
UI and the Terraform provider do). Harbor has no grace period: runs use the configured one
(gc.grace_period_seconds). System administrators only (`garbage-collection`)."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
from starlette.responses import PlainTextResponse, Response

from api.harbor.common import bad_request, body_of, empty, not_found, paged
from api.management.common import Call, json_response, page_params
from api.request_input import by_id
from background.gc_jobs import set_schedule
from domain.cron import CronSchedule
from projections.gc import RunRow

RESOURCE = "garbage-collection"
STATUS = {"running": "Running", "succeeded": "Success", "failed": "Error"}
KINDS = {"manual": "MANUAL", "cli": "MANUAL", "schedule": "SCHEDULE"}
# Harbor's schedule types and the cron each stands for (Harbor's crons have seconds first).
TYPE_CRONS = {"Hourly": "0 0 * * * *", "Daily": "0 0 0 * * *", "Weekly": "0 0 0 * * 0"}


def history_json(row: RunRow) -> dict:
    parameters = {"delete_untagged": row.delete_untagged, "dry_run": row.dry_run,
                  "grace_period_seconds": row.grace_seconds}
    return {"id": row.id, "job_name": "GARBAGE_COLLECTION", "job_kind": KINDS.get(row.trigger, "MANUAL"),
            "job_parameters": orjson.dumps(parameters).decode(), "job_status": STATUS[row.status],
            "schedule": {"type": "Schedule" if row.trigger == "schedule" else "Manual"}, "deleted": False,
            "creation_time": row.started_at, "update_time": row.updated_at}


def list_history(call: Call) -> Response:
    """GC runs, newest first."""
    call.require_system(RESOURCE, "list")
    page, size = page_params(call.request)
    rows, total = call.services.gc.runs((page - 1) * size, size)
    return paged(call.request, [history_json(r) for r in rows], total, page, size)


def get_run(call: Call) -> Response:
    call.require_system(RESOURCE, "read")
    return json_response(history_json(_run(call)))


def run_log(call: Call) -> Response:
    """What the run did, as text."""
    call.require_system(RESOURCE, "read")
    row = _run(call)
    lines = [f"{row.started_at.isoformat()} GC run {row.id} started by {row.actor} ({row.trigger}), "
             f"grace period {row.grace_seconds} s{', dry run' if row.dry_run else ''}",
             f"{row.updated_at.isoformat()} {'would free' if row.dry_run else 'freed'} {row.blobs} blobs, "
             f"{row.bytes} bytes; {row.orphans} orphaned blobs"]
    if row.finished_at:
        lines.append(f"{row.finished_at.isoformat()} {STATUS[row.status]}" + (f": {row.error}" if row.error else ""))
    return PlainTextResponse("\n".join(lines) + "\n")


def get_schedule(call: Call) -> Response:
    call.require_system(RESOURCE, "read")
    row = call.services.gc.schedule()
    kind = next((name for name, cron in TYPE_CRONS.items() if cron == row.cron), "Custom") if row.cron else "None"
    upcoming = CronSchedule.parse(row.cron).next_after(datetime.now(timezone.utc)) if row.cron else None
    return json_response({"schedule": {"type": kind, "cron": row.cron or "", "next_scheduled_time": upcoming},
                          "parameters": {"delete_untagged": row.delete_untagged, "dry_run": row.dry_run},
                          "creation_time": row.updated_at, "update_time": row.updated_at})


def create_schedule(call: Call) -> Response:
    """`schedule.type` Manual starts a run now (201, Location of the run); any other type sets
    the schedule."""
    body = body_of(call)
    kind, cron, parameters = _schedule_of(body)
    if kind == "Manual":
        call.require_system(RESOURCE, "create")
        services = call.services
        run, position = services.gc_jobs.start(services.settings.gc.grace_period_seconds,
                                               bool(parameters.get("dry_run", False)), "manual", call.context,
                                               delete_untagged=bool(parameters.get("delete_untagged", False)))
        call.settle(position)
        row = services.gc.run_by_uuid(str(run.id))
        return empty(201, {"Location": f"{call.request.url.path.rsplit('/', 1)[0]}/{row.id}"})
    return _set(call, cron, parameters, 201)


def update_schedule(call: Call) -> Response:
    _, cron, parameters = _schedule_of(body_of(call))
    return _set(call, cron, parameters, 200)


def _set(call: Call, cron: str | None, parameters: dict, status: int) -> Response:
    call.require_system(RESOURCE, "update")
    services = call.services
    call.settle(set_schedule(services, cron, services.settings.gc.grace_period_seconds,
                             bool(parameters.get("dry_run", False)), bool(parameters.get("delete_untagged", False)),
                             call.context))
    return empty(status)


def _schedule_of(body: dict) -> tuple[str, str | None, dict]:
    schedule, parameters = body.get("schedule"), body.get("parameters") or {}
    if not isinstance(schedule, dict) or not isinstance(parameters, dict):
        raise bad_request("schedule (an object with type, and cron for Custom) is required")
    kind = schedule.get("type")
    if kind in ("Manual", "None"):
        return kind, None, parameters
    if kind in TYPE_CRONS:
        return kind, TYPE_CRONS[kind], parameters
    if kind in ("Custom", "Schedule") and isinstance(schedule.get("cron"), str):
        return kind, str(CronSchedule.parse(schedule["cron"])), parameters
    raise bad_request("schedule type must be Manual, None, Hourly, Daily, Weekly or Custom (with cron)")


def _run(call: Call) -> RunRow:
    text = call.param("gc_id")
    row = by_id(call.services.gc.run, text)
    if row is None:
        raise not_found(f"GC run {text} not found")
    return row
