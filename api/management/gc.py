"""Garbage collection runs and schedule (/api/v1/gc/…), for system administrators."""

from __future__ import annotations

from dataclasses import replace

from starlette.responses import Response

from api.management.common import Call, field, json_response, page_params, paged
from api.management.problems import Problem
from api.request_input import bounded, by_id
from background.gc_jobs import set_schedule
from projections.gc import RunRow, ScheduleRow

MAX_GRACE_SECONDS = 100 * 365 * 24 * 3600  # a cutoff further back than that is before any data


def run_json(row: RunRow) -> dict:
    return {"id": row.id, "number": row.number, "run": row.run, "status": row.status, "trigger": row.trigger,
            "actor": row.actor, "dry_run": row.dry_run, "grace_period_seconds": row.grace_seconds,
            "delete_untagged": row.delete_untagged, "blobs": row.blobs, "bytes": row.bytes,
            "untagged": row.untagged, "orphans": row.orphans, "error": row.error, "started_at": row.started_at,
            "updated_at": row.updated_at, "finished_at": row.finished_at}


def schedule_json(row: ScheduleRow) -> dict:
    return {"cron": row.cron, "grace_period_seconds": row.grace_seconds, "dry_run": row.dry_run,
            "delete_untagged": row.delete_untagged, "updated_at": row.updated_at}


def list_runs(call: Call) -> Response:
    """GC runs, newest first."""
    call.require_system("garbage-collection", "list")
    page, size = page_params(call.request)
    rows, total = call.services.gc.runs((page - 1) * size, size)
    return paged(call.request, [run_json(r) for r in rows], total, page, size)


def start_run(call: Call) -> Response:
    """Start a run (it goes on in the background): `dry_run` only reports what it would free;
    `grace_period_seconds` (default: gc.grace_period_seconds) spares digests unreferenced for
    less; `delete_untagged` first deletes manifests untagged for longer than that."""
    call.require_system("garbage-collection", "create")
    body = call.body if call.body is not None else {}
    services = call.services
    default_grace = services.settings.gc.grace_period_seconds
    dry_run = field(body, "dry_run", bool, False, False)
    grace = _grace(field(body, "grace_period_seconds", int, False, default_grace))
    untagged = field(body, "delete_untagged", bool, False, False)
    run, position = services.gc_jobs.start(grace, dry_run, "manual", call.context, delete_untagged=untagged)
    call.settle(position)
    row = services.gc.run_by_uuid(str(run.id))
    return json_response(run_json(row), 202, {"Location": f"/api/v1/gc/runs/{row.id}"})


def get_run(call: Call) -> Response:
    """One run, with its totals so far."""
    call.require_system("garbage-collection", "read")
    return json_response(run_json(_run(call)))


def get_schedule(call: Call) -> Response:
    """The cron schedule of GC runs (null: manual runs only) and their parameters."""
    call.require_system("garbage-collection", "read")
    row = call.services.gc.schedule()
    if row.updated_at is None:  # never set: what a run started without parameters would use
        row = replace(row, grace_seconds=call.services.settings.gc.grace_period_seconds)
    return json_response(schedule_json(row))


def put_schedule(call: Call) -> Response:
    """Set the schedule: `cron` (5 fields, or Harbor's 6 with seconds; null to stop),
    `grace_period_seconds`, `dry_run`."""
    call.require_system("garbage-collection", "update")
    body = call.body
    cron = field(body, "cron", str, False, None)
    grace = _grace(field(body, "grace_period_seconds", int, False, call.services.settings.gc.grace_period_seconds))
    dry_run = field(body, "dry_run", bool, False, False)
    untagged = field(body, "delete_untagged", bool, False, False)
    call.settle(set_schedule(call.services, cron, grace, dry_run, untagged, call.context))
    return json_response(schedule_json(call.services.gc.schedule()))


def _grace(seconds: int) -> int:
    return bounded(seconds, "grace_period_seconds", 0, MAX_GRACE_SECONDS)


def _run(call: Call) -> RunRow:
    text = call.param("run")
    row = by_id(call.services.gc.run, text)
    if row is None:
        raise Problem(404, "not-found", f"no GC run {text}")
    return row
