"""Webhook policies of a project (/api/v2.0/projects/{project_name_or_id}/webhook/…), with
Harbor's paths and fields. Deliveries appear as Harbor's executions, each with one task (a
delivery is one event sent to one target). Auth headers are shown masked; a masked value sent
back, or none, keeps the target's header. Permissions are Harbor's: project admins manage policies, maintainers
list them."""

from __future__ import annotations

from uuid import UUID

from starlette.responses import PlainTextResponse, Response

from api.harbor.common import (
    bad_request,
    body_of,
    empty,
    filter_items,
    not_found,
    paged,
    paged_list,
    parse_q,
    project_of,
    sort_items,
)
from api.management.common import Call, field, json_response, page_params
from api.management.webhooks import RESOURCE, create_policy, masked, may_manage, unmasked, update_policy
from api.request_input import by_id
from domain.webhooks import EVENT_TYPES, PAYLOAD_FORMATS, TARGET_TYPES, PolicySettings, Target, Webhooks
from projections.access import ProjectRow
from projections.webhooks import AttemptRow, DeliveryFilter, DeliveryRow, PolicyRow

Q_FIELDS = {"name": "name", "id": "id", "enabled": "enabled"}
SORTS = {"name", "id", "creation_time", "update_time"}
HARBOR_STATUS = {"pending": "Pending", "sending": "Running", "retrying": "Pending", "delivered": "Success",
                 "failed": "Error"}


def policy_json(project: ProjectRow, row: PolicyRow) -> dict:
    return {"id": row.id, "name": row.name, "description": row.description, "project_id": project.id,
            "targets": [{"type": t.type, "address": t.address, "auth_header": masked(t.auth_header),
                         "skip_cert_verify": t.skip_cert_verify, "payload_format": t.payload_format}
                        for t in row.targets],
            "event_types": row.event_types, "creator": row.creator, "creation_time": row.created_at,
            "update_time": row.updated_at, "enabled": row.enabled}


# Policies


def list_policies(call: Call) -> Response:
    """A project's webhook policies; `q` (name, id, enabled), `sort` (name, id, creation_time, update_time)."""
    project = project_of(call, RESOURCE, "list")
    params = call.request.query_params
    items = [policy_json(project, row) for row in call.services.webhooks.policies(project.name)]
    items = filter_items(items, parse_q(params.get("q")), Q_FIELDS)
    return paged_list(call.request, sort_items(items, params.get("sort"), SORTS))


def create_webhook_policy(call: Call) -> Response:
    """Create a policy: `name`, `event_types`, `targets` [{type, address, auth_header, payload_format,
    skip_cert_verify}], `enabled` (default true), `description`."""
    project = project_of(call, RESOURCE, "create")
    policy = create_policy(call, project.name, policy_settings(body_of(call), None))
    return empty(201, {"Location": f"{call.request.url.path.rstrip('/')}/{policy.id}"})


def get_webhook_policy(call: Call) -> Response:
    """One policy."""
    project = project_of(call, RESOURCE, "read")
    return json_response(policy_json(project, _policy(call, project)))


def update_webhook_policy(call: Call) -> Response:
    """Change a policy; absent fields keep their values."""
    project = project_of(call, RESOURCE, "update")
    row = _policy(call, project)
    update_policy(call, row, policy_settings(body_of(call), row))
    return empty()


def delete_webhook_policy(call: Call) -> Response:
    """Delete a policy; its pending deliveries are given up."""
    project = project_of(call, RESOURCE, "delete")
    row = _policy(call, project)
    call.settle(Webhooks(call.services.registry).delete_policy(UUID(row.policy_id), call.context))
    return empty()


def supported_event_types(call: Call) -> Response:
    """Event types, notify types and payload formats policies may use."""
    project_of(call, RESOURCE, "read")
    return json_response({"event_type": list(EVENT_TYPES), "notify_type": list(TARGET_TYPES),
                          "payload_formats": [{"notify_type": t, "formats": list(PAYLOAD_FORMATS)}
                                              for t in TARGET_TYPES]})


def last_triggers(call: Call) -> Response:
    """Per policy and event type: when it last fired."""
    project = project_of(call, RESOURCE, "read")
    rows = call.services.webhooks.policies(project.name)
    fired = call.services.webhooks.last_triggers([row.id for row in rows])
    return json_response([{"policy_name": row.name, "event_type": event_type, "enabled": row.enabled,
                           "creation_time": row.created_at, "last_trigger_time": fired.get((row.id, event_type))}
                          for row in rows for event_type in row.event_types])


def policy_settings(body: dict, current: PolicyRow | None) -> PolicySettings:
    def value(name: str, kind: type, default):
        return field(body, name, kind, False, getattr(current, name) if current else default)

    name = value("name", str, None)
    if not name:
        raise bad_request("name is required")
    raw_targets = field(body, "targets", list, required=False)
    targets = [_target(raw, current) for raw in raw_targets] if raw_targets is not None \
        else (current.targets if current else [])
    return PolicySettings(name, value("event_types", list, []), targets, value("enabled", bool, True),
                          value("description", str, ""))


def _target(raw: object, current: PolicyRow | None) -> Target:
    if not isinstance(raw, dict):
        raise bad_request("each target is an object with type, address, auth_header, payload_format")
    address = field(raw, "address", str)
    header = unmasked(field(raw, "auth_header", str, False), address, current.targets if current else [])
    return Target(address=address, auth_header=header, type=field(raw, "type", str, False, "") or "http",
                  payload_format=field(raw, "payload_format", str, False, "") or "Default",
                  skip_cert_verify=field(raw, "skip_cert_verify", bool, False, False))


def _policy(call: Call, project: ProjectRow) -> PolicyRow:
    value = call.param("policy_id")
    row = by_id(call.services.webhooks.policy, value)
    if row is None or row.project != project.name:
        raise not_found(f"webhook policy {value} of project {project.name} not found")
    return row


# Executions (deliveries) and their tasks


def execution_json(row: DeliveryRow, errors: bool) -> dict:
    """`errors`: whether the caller may see why attempts failed (those who manage the policy)."""
    status = HARBOR_STATUS[row.status]
    counts = {f"{name}_task_count": int(status == harbor) for name, harbor in
              (("success", "Success"), ("error", "Error"), ("pending", "Pending"), ("running", "Running"))}
    return {"id": row.id, "vendor_type": "WEBHOOK", "vendor_id": row.policy, "status": status,
            "status_message": _status_message(row, errors), "trigger": "EVENT",
            "metrics": {"task_count": 1, "stopped_task_count": 0, "scheduled_task_count": 0, **counts},
            "extra_attrs": {"event_type": row.event_type, "payload": row.payload},
            "start_time": row.first_attempt_at or row.created_at, "end_time": _end_time(row)}


def task_json(row: DeliveryRow, errors: bool) -> dict:
    return {"id": row.id, "execution_id": row.id, "status": HARBOR_STATUS[row.status],
            "status_message": _status_message(row, errors), "run_count": row.attempts,
            "extra_attrs": {"event_type": row.event_type, "address": row.address, "status_code": row.status_code,
                            "latency_ms": row.latency_ms, "next_attempt_at": row.next_attempt_at},
            "creation_time": row.created_at, "update_time": row.updated_at,
            "start_time": row.first_attempt_at, "end_time": _end_time(row)}


def list_executions(call: Call) -> Response:
    """A policy's executions (deliveries), newest first."""
    project = project_of(call, RESOURCE, "list")
    policy = _policy(call, project)
    page, size = page_params(call.request)
    rows, total = call.services.webhooks.deliveries(DeliveryFilter(policy.id), (page - 1) * size, size)
    errors = may_manage(call, project.name)
    return paged(call.request, [execution_json(row, errors) for row in rows], total, page, size)


def list_tasks(call: Call) -> Response:
    """The one task of an execution."""
    row = _execution(call)
    return paged_list(call.request, [task_json(row, may_manage(call, row.project))])


def task_log(call: Call) -> Response:
    """Every attempt of a task, one line each."""
    row = _execution(call)
    if call.param("task_id") != str(row.id):
        raise not_found(f"task {call.param('task_id')} not found")
    errors = may_manage(call, row.project)
    lines = [_attempt_line(attempt, errors) for attempt in call.services.webhooks.attempts(row.delivery_id)]
    return PlainTextResponse("".join(lines))


def _execution(call: Call) -> DeliveryRow:
    project = project_of(call, RESOURCE, "list")
    policy = _policy(call, project)
    value = call.param("execution_id")
    row = by_id(call.services.webhooks.delivery, value)
    if row is None or row.policy != policy.id:
        raise not_found(f"execution {value} of webhook policy {policy.id} not found")
    return row


def _status_message(row: DeliveryRow, errors: bool) -> str:
    reason = f" ({row.last_error})" if errors and row.last_error else ""
    if row.status == "retrying":
        return f"attempt {row.attempts} failed{reason}; next attempt at {row.next_attempt_at}"
    return (row.last_error or "") if errors and row.status == "failed" else ""


def _end_time(row: DeliveryRow):
    return row.updated_at if row.status in ("delivered", "failed") else None


def _attempt_line(attempt: AttemptRow, errors: bool) -> str:
    outcome = "in progress" if attempt.finished_at is None else (
        f"HTTP {attempt.status_code}" if attempt.status_code is not None else "no answer")
    error = f": {attempt.error}" if errors and attempt.error else ""
    return f"{attempt.started_at} attempt {attempt.attempt}: {outcome} after {attempt.latency_ms} ms{error}\n"
