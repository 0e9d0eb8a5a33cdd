"""Project quotas (/api/v1/projects/{project}/quota): limits (system administrators set them)
and usage (project members read it)."""

from __future__ import annotations

from starlette.responses import Response

from api.management.common import Call, field, json_response
from api.management.history import parse_as_of
from domain.quotas import DEFAULT_WARNING_PERCENT, QuotaLimits, QuotaUsage


def quota_json(usage: QuotaUsage) -> dict:
    limits = usage.limits
    return {"project": usage.project,
            "limits": {"storage_bytes": limits.storage_bytes, "artifacts": limits.artifacts,
                       "warning_percent": limits.warning_percent},
            "usage": {"storage_bytes": usage.storage_bytes, "artifacts": usage.artifacts}}


def get_quota(call: Call) -> Response:
    """A project's limits (null: unlimited) and usage (each digest counted once); `as_of` (a log
    position or a time): as they were then."""
    project = call.param("project")
    call.require_project(project, "project", "read")
    position = parse_as_of(call, call.request.query_params.get("as_of"))
    if position is not None:
        repositories = call.services.history.repositories_as_of(position, project)
        return json_response(quota_json(call.services.as_of.quota_usage(project, repositories, position)))
    return json_response(quota_json(call.services.quotas.usage(project)))


def set_quota(call: Call) -> Response:
    """Set a project's limits: `storage_bytes`, `artifacts` (null or absent: unlimited),
    `warning_percent` (an event is recorded when a push crosses it; default 85)."""
    call.require_system("quota", "update")
    project = call.param("project")
    call.require_project(project, "project", "read")
    body = call.body
    limits = QuotaLimits(field(body, "storage_bytes", int, False, None), field(body, "artifacts", int, False, None),
                         field(body, "warning_percent", int, False, DEFAULT_WARNING_PERCENT))
    call.settle(call.services.project_rules.set_quota(project, limits, call.context))
    return json_response(quota_json(call.services.quotas.usage(project)))
