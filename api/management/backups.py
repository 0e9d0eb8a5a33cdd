"""Backups and their schedule (/api/v1/backups/…), for system administrators (docs/operations.md,
Backups). A destination is a directory on the server or an s3:// URL; its credentials are never
answered, recorded or logged, and an S3 server is reached through the outbound guard."""

from __future__ import annotations

from starlette.responses import Response

from api.management.common import Call, field, json_response, page_params, paged
from api.management.problems import Problem
from api.request_input import by_id
from background.backups import set_schedule
from projections.backups import BackupRow, ScheduleRow

MAX_DESTINATION_LENGTH = 4096


def backup_json(row: BackupRow) -> dict:
    return {"id": row.id, "backup": row.backup, "status": row.status, "trigger": row.trigger, "actor": row.actor,
            "destination": row.destination, "incremental": row.incremental,
            "started_position": row.started_position, "position": row.position, "blob_count": row.blob_count,
            "bytes": row.bytes, "copied_blobs": row.copied_blobs, "copied_bytes": row.copied_bytes,
            "log_events": row.log_events, "log_digest": row.log_digest, "reason": row.reason,
            "started_at": row.started_at, "finished_at": row.finished_at}


def schedule_json(row: ScheduleRow) -> dict:
    return {"cron": row.cron, "destination": row.destination, "incremental": row.incremental,
            "updated_at": row.updated_at}


def list_backups(call: Call) -> Response:
    """Backups, newest first."""
    call.require_system("backup", "list")
    page, size = page_params(call.request)
    rows, total = call.services.backups.backups((page - 1) * size, size)
    return paged(call.request, [backup_json(r) for r in rows], total, page, size)


def start_backup(call: Call) -> Response:
    """Start a backup (it goes on in the background) to `destination` (a directory on the server,
    or s3://ACCESS:SECRET@HOST:PORT/BUCKET[/PREFIX]?secure=false); `incremental` copies only the
    blobs the backup already there lacks."""
    call.require_system("backup", "create")
    body = call.body if call.body is not None else {}
    destination = _destination(field(body, "destination", str))
    incremental = field(body, "incremental", bool, False, False)
    backup, position = call.services.backup_jobs.start(destination, incremental, "manual", call.context)
    call.settle(position)
    row = call.services.backups.backup_by_uuid(str(backup.id))
    return json_response(backup_json(row), 202, {"Location": f"/api/v1/backups/{row.id}"})


def get_backup(call: Call) -> Response:
    """One backup: running, or what it copied (position, blobs, bytes), or why it failed."""
    call.require_system("backup", "read")
    text = call.param("backup")
    row = by_id(call.services.backups.backup, text)
    if row is None:
        raise Problem(404, "not-found", f"no backup {text}")
    return json_response(backup_json(row))


def get_schedule(call: Call) -> Response:
    """The cron schedule of backups (null: none), where to (without credentials) and how."""
    call.require_system("backup", "read")
    return json_response(schedule_json(call.services.backups.schedule()))


def put_schedule(call: Call) -> Response:
    """Set the schedule: `cron` (5 fields, or 6 with seconds; null to stop), `destination`,
    `incremental`."""
    call.require_system("backup", "update")
    body = call.body
    cron = field(body, "cron", str, False, None)
    destination = _destination(field(body, "destination", str, False, None))
    incremental = field(body, "incremental", bool, False, False)
    call.settle(set_schedule(call.services, cron, destination, incremental, call.context))
    return json_response(schedule_json(call.services.backups.schedule()))


def _destination(text: str | None) -> str | None:
    if text is not None and len(text) > MAX_DESTINATION_LENGTH:
        raise Problem(422, "invalid-input", f"a destination has at most {MAX_DESTINATION_LENGTH} characters",
                      {"field": "destination"})
    return text
