"""Audit logs (/api/v2.0/audit-logs, /api/v2.0/projects/{project}/logs) from Portlog's audit
read model. Harbor's `operation` is create/update/delete; Portlog's own, finer operation
(`repository.tag_pointed`…) is kept in `operation_description`. Pulls are recorded once per
interval per repository (domain/pulls.py), so a `pull` entry stands for every pull counted in it."""

from __future__ import annotations

from starlette.responses import Response

from api.harbor import queries
from api.harbor.common import Filter, bad_request, paged, parse_q, parse_time, project_of
from api.management.common import Call, page_params
from projections.audit import audit_log

# Portlog operation -> (Harbor operation, Harbor resource type)
OPERATIONS = {
    "repository.created": ("create", "repository"),
    "repository.blob_linked": ("create", "blob"),
    "repository.blob_unlinked": ("delete", "blob"),
    "repository.manifest_pushed": ("create", "artifact"),
    "repository.manifest_deleted": ("delete", "artifact"),
    "repository.tag_pointed": ("create", "tag"),
    "repository.tag_deleted": ("delete", "tag"),
    "repository.pulls_recorded": ("pull", "artifact"),
    "project.created": ("create", "project"),
    "project.recreated": ("create", "project"),
    "project.visibility_changed": ("update", "project"),
    "project.deleted": ("delete", "project"),
    "project.member_added": ("create", "project_member"),
    "project.member_role_changed": ("update", "project_member"),
    "project.member_removed": ("delete", "project_member"),
    "project.immutable_rule_added": ("create", "immutable_tag_rule"),
    "project.immutable_rule_changed": ("update", "immutable_tag_rule"),
    "project.immutable_rule_removed": ("delete", "immutable_tag_rule"),
    "user.created": ("create", "user"),
    "user.recreated": ("create", "user"),
    "user.password_changed": ("update", "user"),
    "user.admin_granted": ("update", "user"),
    "user.admin_revoked": ("update", "user"),
    "user.deleted": ("delete", "user"),
    "user.logins_failed": ("login_failed", "user"),
    "robot.created": ("create", "robot"),
    "robot.recreated": ("create", "robot"),
    "robot.secret_refreshed": ("update", "robot"),
    "robot.permissions_changed": ("update", "robot"),
    "robot.disabled": ("update", "robot"),
    "robot.enabled": ("update", "robot"),
    "robot.deleted": ("delete", "robot"),
    "user.groups_observed": ("update", "user"),
    "user.cli_secret_set": ("update", "user"),
    "configuration.changed": ("update", "configuration"),
    "user_group.created": ("create", "user_group"),
    "user_group.recreated": ("create", "user_group"),
    "user_group.renamed": ("update", "user_group"),
    "user_group.deleted": ("delete", "user_group"),
}


def entry_json(row) -> dict:
    operation, resource_type = OPERATIONS.get(row.operation, (row.operation, row.resource_type))
    return {"id": row.position, "username": row.actor, "resource": row.resource,
            "resource_type": resource_type, "operation": operation,
            "operation_description": row.operation, "operation_result": row.result == "success",
            "op_time": row.occurred_at}


def audit_logs(call: Call) -> Response:
    """The whole trail for system administrators; otherwise that of the projects whose logs
    the caller may read. `q` on username, operation, resource_type, resource, op_time."""
    projects = None
    if not call.principal.system_admin:
        visible = call.services.access.projects(0, 1 << 31, visible_to=call.principal)[0]
        projects = [p.name for p in visible if call.can_project(p.name, "log", "list")]
    return _page(call, projects)


def project_logs(call: Call) -> Response:
    """The trail of one project."""
    return _page(call, [project_of(call, "log", "list").name])


def _page(call: Call, projects: list[str] | None) -> Response:
    call.services.projections.catch_up()  # failed logins are recorded without a wait
    params = call.request.query_params
    page, size = page_params(call.request)
    clauses = [_clause(key, value) for key, value in parse_q(params.get("q")).items()]
    query = queries.audit_query(clauses, projects, params.get("sort"))
    rows, total = queries.page(call.services.db.reader, query, (page - 1) * size, size)
    return paged(call.request, [entry_json(row) for row in rows], total, page, size)


def _clause(key: str, value: Filter):
    columns = {"username": audit_log.c.actor, "resource": audit_log.c.resource}
    if key in columns:
        return value.clause(columns[key])
    if key == "optime":
        return value.clause(audit_log.c.occurred_at, parse_time)
    if key in ("operation", "resourcetype"):
        index = 0 if key == "operation" else 1
        chosen = [op for op, mapped in OPERATIONS.items() if value.test(mapped[index])]
        return audit_log.c.operation.in_(chosen)
    raise bad_request(f"unsupported query key {key!r}; supported: username, operation, resource_type, "
                      "resource, op_time")
