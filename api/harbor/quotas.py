"""Project quotas, Harbor's way (/api/v2.0/quotas…): `hard` and `used` with `storage` in bytes
(-1: unlimited) and Portlog's `count` (artifacts) beside it. A quota's id is its project's id.
Reading needs the project's `project:read`; changing it, a system administrator (as in Harbor).
`as_of` (a log position or a time) reads the limits and usage as they were then."""

from __future__ import annotations

from starlette.responses import Response

from api.harbor import as_of
from api.harbor.common import bad_request, body_of, empty, not_found, paged_list, sort_items
from api.management.common import Call, json_response
from api.request_input import MAX_BIGINT, by_id
from domain.quotas import QuotaLimits, QuotaUsage
from projections.access import ProjectRow

UNLIMITED = -1


def quota_json(project: ProjectRow, usage: QuotaUsage) -> dict:
    limits = usage.limits
    return {"id": project.id, "ref": {"id": project.id, "name": project.name, "owner_name": ""},
            "hard": {"storage": _harbor(limits.storage_bytes), "count": _harbor(limits.artifacts)},
            "used": {"storage": usage.storage_bytes, "count": usage.artifacts},
            "creation_time": project.created_at, "update_time": project.updated_at}


def list_quotas(call: Call) -> Response:
    """Quotas of the projects the caller may read; `reference=project&reference_id=`, `sort`."""
    params = call.request.query_params
    if params.get("reference", "project") != "project":
        return paged_list(call.request, [])
    wanted = params.get("reference_id")
    items = []
    for usage in _all_usage(call):
        project = call.services.access.project(usage.project)
        if project and (wanted is None or str(project.id) == wanted) and call.can_project(project.name, "project",
                                                                                         "read"):
            items.append(quota_json(project, usage))
    return paged_list(call.request, sort_items(items, params.get("sort"), {"id", "creation_time", "update_time"}))


def get_quota(call: Call) -> Response:
    project = _project(call)
    call.require_project(project.name, "project", "read")
    position = as_of.position_of(call)
    usage = call.services.quotas.usage(project.name) if position is None \
        else as_of.quota_usage(call, project.name, position)
    return json_response(quota_json(project, usage))


def _all_usage(call: Call) -> list[QuotaUsage]:
    """Every project's usage, now or `as_of` (the projects that exist now)."""
    position = as_of.position_of(call)
    if position is None:
        return [usage for usage, _ in call.services.quotas.all_usage()]
    return [as_of.quota_usage(call, usage.project, position) for usage, _ in call.services.quotas.all_usage()]


def update_quota(call: Call) -> Response:
    """`{"hard": {"storage": bytes}}` (-1: unlimited); `count` limits artifacts."""
    call.require_system("quota", "update")
    project = _project(call)
    hard = body_of(call).get("hard")
    if not isinstance(hard, dict) or not hard:
        raise bad_request("hard (an object with storage and/or count) is required")
    current = call.services.quotas.usage(project.name).limits
    storage = _limit(hard, "storage", current.storage_bytes)
    count = _limit(hard, "count", current.artifacts)
    limits = QuotaLimits(storage, count, current.warning_percent)
    call.settle(call.services.project_rules.set_quota(project.name, limits, call.context))
    return empty()


def set_storage_limit(call: Call, project: str, storage_limit: object) -> int | None:
    """A project created with Harbor's `storage_limit` (heeded from system administrators only,
    as Harbor does)."""
    if storage_limit is None or not call.principal.system_admin:
        return None
    limits = QuotaLimits(_limit({"storage": storage_limit}, "storage", None))
    return call.services.project_rules.set_quota(project, limits, call.context)


def _limit(hard: dict, key: str, current: int | None) -> int | None:
    if key not in hard:
        return current
    value = hard[key]
    if not isinstance(value, int) or isinstance(value, bool) or not UNLIMITED <= value <= MAX_BIGINT:
        raise bad_request(f"hard.{key} must be a whole number of {'bytes' if key == 'storage' else 'artifacts'}, "
                          "or -1 for unlimited")
    return None if value == UNLIMITED else value


def _harbor(limit: int | None) -> int:
    return UNLIMITED if limit is None else limit


def _project(call: Call) -> ProjectRow:
    text = call.param("quota_id")
    project = by_id(call.services.access.project_by_id, text)
    if project is None:
        raise not_found(f"quota {text} not found")
    return project
