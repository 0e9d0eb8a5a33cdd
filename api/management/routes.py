"""Every management route in one table, and the OpenAPI 3 document generated from it."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.management import (
    backups,
    deletion,
    events,
    gc,
    history,
    immutability,
    log_stream,
    projects,
    quotas,
    restore,
    retention,
    robots,
    users,
    webhooks,
)
from api.management.common import endpoint, json_response

V1 = "/api/v1"

# path, method, handler, tag, allows anonymous callers, request body schema name
ROUTES = [
    (f"{V1}/projects", "GET", projects.list_projects, "projects", True, None),
    (f"{V1}/projects", "POST", projects.create_project, "projects", False, "ProjectCreate"),
    (f"{V1}/projects/{{project}}", "GET", projects.get_project, "projects", True, None),
    (f"{V1}/projects/{{project}}", "PATCH", projects.update_project, "projects", False, "ProjectUpdate"),
    (f"{V1}/projects/{{project}}", "DELETE", projects.delete_project, "projects", False, None),
    (f"{V1}/projects/{{project}}/members", "GET", projects.list_members, "members", False, None),
    (f"{V1}/projects/{{project}}/members/{{username}}", "PUT", projects.set_member, "members", False, "Member"),
    (f"{V1}/projects/{{project}}/members/{{username}}", "DELETE", projects.remove_member, "members", False, None),
    (f"{V1}/projects/{{project}}/immutable-tag-rules", "GET", immutability.list_rules, "immutability", False, None),
    (f"{V1}/projects/{{project}}/immutable-tag-rules", "POST", immutability.create_rule, "immutability", False,
     "ImmutableTagRule"),
    (f"{V1}/projects/{{project}}/immutable-tag-rules/{{rule}}", "GET", immutability.get_rule, "immutability", False,
     None),
    (f"{V1}/projects/{{project}}/immutable-tag-rules/{{rule}}", "PUT", immutability.update_rule, "immutability",
     False, "ImmutableTagRule"),
    (f"{V1}/projects/{{project}}/immutable-tag-rules/{{rule}}", "DELETE", immutability.delete_rule, "immutability",
     False, None),
    (f"{V1}/users", "GET", users.list_users, "users", False, None),
    (f"{V1}/users", "POST", users.create_user, "users", False, "UserCreate"),
    (f"{V1}/users/current", "GET", users.current_user, "users", False, None),
    (f"{V1}/users/{{username}}", "GET", users.get_user, "users", False, None),
    (f"{V1}/users/{{username}}", "DELETE", users.delete_user, "users", False, None),
    (f"{V1}/users/{{username}}/password", "PUT", users.change_password, "users", False, "PasswordChange"),
    (f"{V1}/users/{{username}}/admin", "PUT", users.set_admin, "users", False, "AdminFlag"),
    (f"{V1}/robots", "GET", robots.list_robots, "robots", False, None),
    (f"{V1}/robots", "POST", robots.create_robot, "robots", False, "RobotCreate"),
    (f"{V1}/robots/{{robot}}", "GET", robots.get_robot, "robots", False, None),
    (f"{V1}/robots/{{robot}}", "PATCH", robots.update_robot, "robots", False, "RobotUpdate"),
    (f"{V1}/robots/{{robot}}", "DELETE", robots.delete_robot, "robots", False, None),
    (f"{V1}/robots/{{robot}}/secret", "POST", robots.refresh_secret, "robots", False, None),
    (f"{V1}/robots/{{robot}}/history", "GET", history.robot_as_of, "history", False, None),
    (f"{V1}/projects/{{project}}/members/history", "GET", history.members_as_of, "history", False, None),
    (f"{V1}/projects/{{project}}/permissions", "GET", history.who_could, "history", False, None),
    (f"{V1}/repositories", "GET", history.list_repositories, "repositories", True, None),
    (f"{V1}/repositories/{{name:path}}/tags/{{tag}}/history", "GET", history.tag_history, "history", True, None),
    (f"{V1}/repositories/{{name:path}}/tags/{{tag}}/restore", "POST", history.restore_tag, "history", False,
     "Restore"),
    (f"{V1}/repositories/{{name:path}}/tags/{{tag}}/undelete", "POST", deletion.undelete_tag, "repositories",
     False, "Undelete"),
    (f"{V1}/repositories/{{name:path}}/tags", "GET", history.list_tags, "repositories", True, None),
    (f"{V1}/repositories/{{name:path}}/undelete", "POST", deletion.undelete_repository, "repositories", False,
     None),
    (f"{V1}/repositories/{{name:path}}/restore", "POST", restore.restore_repository, "history", False,
     "PointInTimeRestore"),
    (f"{V1}/repositories/{{name:path}}", "DELETE", deletion.delete_repository, "repositories", False, None),
    (f"{V1}/projects/{{project}}/deleted-repositories", "GET", deletion.deleted_repositories, "repositories",
     False, None),
    (f"{V1}/projects/{{project}}/undelete", "POST", deletion.undelete_project, "projects", False, None),
    (f"{V1}/projects/{{project}}/restore", "POST", restore.restore_project, "history", False, "PointInTimeRestore"),
    (f"{V1}/projects/{{project}}/quota", "GET", quotas.get_quota, "quotas", False, None),
    (f"{V1}/projects/{{project}}/quota", "PUT", quotas.set_quota, "quotas", False, "Quota"),
    (f"{V1}/projects/{{project}}/retention", "GET", retention.get_policy, "retention", False, None),
    (f"{V1}/projects/{{project}}/retention", "PUT", retention.put_policy, "retention", False, "RetentionPolicy"),
    (f"{V1}/projects/{{project}}/retention", "DELETE", retention.delete_policy, "retention", False, None),
    (f"{V1}/projects/{{project}}/retention/runs", "GET", retention.list_runs, "retention", False, None),
    (f"{V1}/projects/{{project}}/retention/runs", "POST", retention.start_run, "retention", False, "RetentionRun"),
    (f"{V1}/projects/{{project}}/retention/runs/{{run}}", "GET", retention.get_run, "retention", False, None),
    (f"{V1}/gc/runs", "GET", gc.list_runs, "gc", False, None),
    (f"{V1}/gc/runs", "POST", gc.start_run, "gc", False, "GcRun"),
    (f"{V1}/gc/runs/{{run}}", "GET", gc.get_run, "gc", False, None),
    (f"{V1}/gc/schedule", "GET", gc.get_schedule, "gc", False, None),
    (f"{V1}/gc/schedule", "PUT", gc.put_schedule, "gc", False, "GcSchedule"),
    (f"{V1}/backups", "GET", backups.list_backups, "backups", False, None),
    (f"{V1}/backups", "POST", backups.start_backup, "backups", False, "Backup"),
    (f"{V1}/backups/schedule", "GET", backups.get_schedule, "backups", False, None),
    (f"{V1}/backups/schedule", "PUT", backups.put_schedule, "backups", False, "BackupSchedule"),
    (f"{V1}/backups/{{backup}}", "GET", backups.get_backup, "backups", False, None),
    (f"{V1}/audit-logs", "GET", history.audit_logs, "audit", False, None),
    (f"{V1}/events", "GET", events.list_events, "events", False, None),
    (f"{V1}/log/events", "GET", log_stream.stream_events, "followers", False, None),
    (f"{V1}/log/blobs/{{digest}}", "GET", log_stream.get_blob, "followers", False, None),
    (f"{V1}/follow", "GET", log_stream.follow_status, "followers", False, None),
    (f"{V1}/webhooks", "GET", webhooks.list_webhooks, "webhooks", False, None),
    (f"{V1}/webhooks", "POST", webhooks.create_webhook, "webhooks", False, "Webhook"),
    (f"{V1}/webhooks/deliveries/{{delivery}}", "GET", webhooks.get_delivery, "webhooks", False, None),
    (f"{V1}/webhooks/deliveries/{{delivery}}/redeliver", "POST", webhooks.redeliver, "webhooks", False, None),
    (f"{V1}/webhooks/{{webhook}}", "GET", webhooks.get_webhook, "webhooks", False, None),
    (f"{V1}/webhooks/{{webhook}}", "PUT", webhooks.update_webhook, "webhooks", False, "Webhook"),
    (f"{V1}/webhooks/{{webhook}}", "DELETE", webhooks.delete_webhook, "webhooks", False, None),
    (f"{V1}/webhooks/{{webhook}}/deliveries", "GET", webhooks.list_deliveries, "webhooks", False, None),
]

_STR, _BOOL, _INT = {"type": "string"}, {"type": "boolean"}, {"type": "integer"}
SCHEMAS = {
    "ProjectCreate": {"type": "object", "required": ["name"], "properties": {
        "name": _STR, "public": _BOOL, "proxy_cache_registry": _STR,
        "scanning": {"$ref": "#/components/schemas/ScanningSettings"},
        "cve_allowlist": {"$ref": "#/components/schemas/CveAllowlist"}}},
    "ProjectUpdate": {"type": "object", "description": "at least one of the properties", "properties": {
        "public": _BOOL, "scanning": {"$ref": "#/components/schemas/ScanningSettings"},
        "cve_allowlist": {"$ref": "#/components/schemas/CveAllowlist"}}},
    "ScanningSettings": {"type": "object", "description": "those given change, the others keep theirs", "properties": {
        "auto_scan": _BOOL, "prevent_vul": _BOOL, "reuse_sys_cve_allowlist": _BOOL,
        "enable_content_trust_cosign": _BOOL, "enable_content_trust": _BOOL,
        "severity": {"enum": ["unknown", "none", "low", "medium", "high", "critical"],
                     "description": "any letter case; answered as Harbor writes it (Low)"}}},
    "CveAllowlist": {"type": "object", "properties": {
        "items": {"type": "array", "items": {**_STR, "description": "a vulnerability id: CVE-2019-10164"}},
        "expires_at": {"type": ["integer", "null"], "description": "Unix seconds; null: never"}}},
    "Member": {"type": "object", "required": ["role"], "properties": {
        "role": {"enum": ["project_admin", "maintainer", "developer", "guest", "limited_guest"]},
        "repository": {"type": "string", "description": "limit the grant to one repository"}}},
    "UserCreate": {"type": "object", "required": ["username", "password"], "properties": {
        "username": _STR, "password": _STR, "email": _STR, "system_admin": _BOOL}},
    "PasswordChange": {"type": "object", "required": ["password"],
                       "properties": {"password": _STR, "old_password": _STR}},
    "AdminFlag": {"type": "object", "required": ["system_admin"], "properties": {"system_admin": _BOOL}},
    "Undelete": {"type": "object", "properties": {
        "digest": {"type": "string", "description": "the manifest to point the tag at (default: its last)"}}},
    "Quota": {"type": "object", "properties": {
        "storage_bytes": {"type": ["integer", "null"], "description": "null: unlimited"},
        "artifacts": {"type": ["integer", "null"], "description": "null: unlimited"},
        "warning_percent": {**_INT, "description": "1-100, default 85"}}},
    "RetentionPolicy": {"type": "object", "required": ["rules"], "properties": {
        "cron": {"type": ["string", "null"]},
        "rules": {"type": "array", "items": {"type": "object", "required": ["template"], "properties": {
            "template": {"enum": ["latestPushedK", "latestPulledN", "nDaysSinceLastPush", "nDaysSinceLastPull",
                                  "always"]},
            "param": {**_INT, "description": "K, N or days"}, "repositories": _STR, "tags": _STR,
            "exclude_repositories": _BOOL, "exclude_tags": _BOOL, "untagged": _BOOL, "disabled": _BOOL}}}}},
    "RetentionRun": {"type": "object", "properties": {
        "dry_run": _BOOL, "as_of": {"description": "dry runs: a log position or ISO 8601 time"}}},
    "GcRun": {"type": "object", "properties": {"dry_run": _BOOL, "grace_period_seconds": _INT,
                                               "delete_untagged": _BOOL}},
    "GcSchedule": {"type": "object", "properties": {
        "cron": {"type": ["string", "null"], "description": "5 fields, or 6 with seconds first; null: manual only"},
        "grace_period_seconds": _INT, "dry_run": _BOOL, "delete_untagged": _BOOL}},
    "Backup": {"type": "object", "required": ["destination"], "properties": {
        "destination": {**_STR, "description": "a directory on the server, or s3://ACCESS:SECRET@HOST:PORT/BUCKET"
                                               "[/PREFIX]?secure=false"},
        "incremental": {**_BOOL, "description": "copy only blobs the backup at the destination lacks"}}},
    "BackupSchedule": {"type": "object", "properties": {
        "cron": {"type": ["string", "null"], "description": "5 fields, or 6 with seconds first; null: none"},
        "destination": _STR, "incremental": _BOOL}},
    "Permission": {"type": "object", "required": ["project", "resource", "action"],
                   "properties": {"project": _STR, "resource": _STR, "action": _STR}},
    "RobotCreate": {"type": "object", "required": ["name", "permissions"], "properties": {
        "name": _STR, "project": _STR, "description": _STR,
        "duration_days": {**_INT, "description": "-1 or absent: never expires"},
        "permissions": {"type": "array", "items": {"$ref": "#/components/schemas/Permission"}}}},
    "RobotUpdate": {"type": "object", "properties": {
        "disabled": _BOOL,
        "permissions": {"type": "array", "items": {"$ref": "#/components/schemas/Permission"}}}},
    "Restore": {"type": "object", "required": ["as_of"], "properties": {
        "as_of": {"description": "log position (integer) or ISO 8601 time"}}},
    "PointInTimeRestore": {"type": "object", "required": ["as_of"], "properties": {
        "as_of": {"description": "log position (integer) or ISO 8601 time"},
        "dry_run": {**_BOOL, "description": "list the changes without recording them (default false)"}}},
    "Webhook": {"type": "object", "required": ["name", "event_types", "url"], "properties": {
        "name": _STR, "project": {**_STR, "description": "absent: instance-wide"}, "url": _STR,
        "auth_header": {**_STR, "description": "sent as Authorization; shown masked"},
        "payload_format": {"enum": ["Default", "CloudEvents"]}, "skip_cert_verify": _BOOL,
        "event_types": {"type": "array", "items": _STR}, "enabled": _BOOL, "description": _STR}},
    "ImmutableTagRule": {"type": "object", "properties": {
        "repositories": {**_STR, "description": "doublestar pattern on the name without the project; default **"},
        "tags": {**_STR, "description": "doublestar pattern; required on creation"},
        "exclude_repositories": _BOOL, "exclude_tags": _BOOL, "disabled": _BOOL, "priority": _INT}},
    "Problem": {"type": "object", "properties": {
        "type": _STR, "title": _STR, "status": _INT, "detail": _STR, "instance": _STR}},
}


def management_routes() -> list[Route]:
    routes = [Route(path, endpoint(handler, anonymous), methods=[method])
              for path, method, handler, _, anonymous, _ in ROUTES]
    return routes + [Route(f"{V1}/openapi.json", openapi_document, methods=["GET"])]


def openapi_document(request: Request) -> Response:
    return json_response(build_openapi())


def build_openapi() -> dict:
    paths: dict[str, dict] = {}
    for path, method, handler, tag, anonymous, schema in ROUTES:
        operation = {
            "operationId": handler.__name__, "tags": [tag],
            "summary": (handler.__doc__ or "").strip().splitlines()[0],
            "parameters": [{"name": p, "in": "path", "required": True, "schema": _STR}
                           for p in re.findall(r"{(\w+)(?::\w+)?}", path)],
            "responses": {"default": {"description": "problem details", "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                "2XX": {"description": "success"}},
        }
        if not anonymous:
            operation["security"] = [{"basic": []}, {"bearer": []}]
        if schema:
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{schema}"}}}}
        paths.setdefault(path.replace(":path}", "}"), {})[method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "Portlog management API", "version": "1"},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
