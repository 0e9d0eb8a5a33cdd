"""Replication policies, Harbor's way (/api/v2.0/replication/policies…): `src_registry` or
`dest_registry` (the other is this registry, null), `dest_namespace`,
`dest_namespace_replace_count`, `filters` (name and tag, doublestar, matches / excludes; label,
a list of label names, push-based policies only), `trigger` (manual, scheduled with a cron,
event_based), `deletion`, `override`, `enabled`, `speed`. System administrators only (Harbor's
`replication-policy`). Portlog refuses, with a 400, what it would otherwise silently ignore
(label filters on pull-based policies, other resource types)."""

from __future__ import annotations

from uuid import UUID

from starlette.responses import PlainTextResponse, Response

from api.harbor.common import bad_request, body_of, empty, filter_items, not_found, paged_list, parse_q, sort_items
from api.harbor.registries import registry_json
from api.management.common import Call, json_response
from api.request_input import by_id
from domain.cron import CronSchedule
from domain.replication import Filter, PolicySettings
from projections.replication import PolicyRow
from projections.replication_runs import ExecutionRow, TaskRow

RESOURCE = "replication-policy"
DECORATIONS = {"matches": False, "excludes": True}
Q_FIELDS = {"name": "name", "id": "id"}
SORTS = {"id", "name", "creation_time", "update_time"}


def policy_json(call: Call, row: PolicyRow) -> dict:
    settings = row.settings
    return {"id": row.id, "name": row.name, "description": settings.description,
            "src_registry": _registry(call, settings.source), "dest_registry": _registry(call, settings.destination),
            "dest_namespace": settings.destination_namespace,
            "dest_namespace_replace_count": settings.flatten,
            "filters": [_filter_json(f) for f in settings.filters],
            "trigger": {"type": settings.trigger,
                        "trigger_settings": {"cron": settings.cron or ""}},
            "deletion": settings.deletion, "replicate_deletion": settings.deletion, "override": settings.override,
            "enabled": settings.enabled, "speed": settings.bandwidth_kib, "copy_by_chunk": False,
            "creation_time": row.created_at, "update_time": row.updated_at}


def list_policies(call: Call) -> Response:
    """Policies; `name` (fuzzy), `q` (name, id), `sort`."""
    call.require_system(RESOURCE, "list")
    params = call.request.query_params
    items = [policy_json(call, row) for row in call.services.replication.policies()]
    if params.get("name"):
        items = [item for item in items if params["name"] in item["name"]]
    items = filter_items(items, parse_q(params.get("q")), Q_FIELDS)
    return paged_list(call.request, sort_items(items, params.get("sort"), SORTS))


def create_policy(call: Call) -> Response:
    call.require_system(RESOURCE, "create")
    body = body_of(call)
    name = body.get("name")
    call.settle(call.services.policies.add(name, _settings(call, body), call.context))
    row = call.services.replication.by_name(name)
    return empty(201, {"Location": f"{call.request.url.path.rstrip('/')}/{row.id}"})


def get_policy(call: Call) -> Response:
    call.require_system(RESOURCE, "read")
    return json_response(policy_json(call, _row(call)))


def update_policy(call: Call) -> Response:
    """The whole policy again (Harbor's PUT); renaming is refused."""
    call.require_system(RESOURCE, "update")
    row = _row(call)
    body = body_of(call)
    if body.get("name") not in (None, row.name):
        raise bad_request("a replication policy cannot be renamed; create another one")
    call.settle(call.services.policies.update(row.name, _settings(call, body), call.context))
    return empty()


def delete_policy(call: Call) -> Response:
    call.require_system(RESOURCE, "delete")
    row = _row(call)
    call.settle(call.services.policies.delete(row.name, call.context))
    return empty()


def _settings(call: Call, body: dict) -> PolicySettings:
    trigger = body.get("trigger") or {"type": "manual"}
    if not isinstance(trigger, dict):
        raise bad_request("trigger must be {type, trigger_settings: {cron}}")
    cron = (trigger.get("trigger_settings") or {}).get("cron") or None
    speed = body.get("speed", -1)
    return PolicySettings(
        source=_endpoint_name(call, body.get("src_registry")),
        destination=_endpoint_name(call, body.get("dest_registry")),
        destination_namespace=body.get("dest_namespace") or "", flatten=body.get("dest_namespace_replace_count", -1),
        filters=tuple(_filter(item) for item in body.get("filters") or ()), trigger=trigger.get("type", "manual"),
        cron=str(CronSchedule.parse(cron)) if cron else None,
        deletion=body.get("deletion", body.get("replicate_deletion", False)), override=body.get("override", True),
        enabled=body.get("enabled", True), description=body.get("description") or "",
        bandwidth_kib=-1 if speed in (0, None) else speed)


def _endpoint_name(call: Call, value: object) -> str | None:
    """`{id: N}` (Harbor's Registry object) → the endpoint's name; null or id 0 → this registry."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), int):
        raise bad_request("src_registry and dest_registry are {\"id\": N} or null")
    if value["id"] == 0:
        return None
    row = call.services.registries.by_id(value["id"])
    if row is None:
        raise bad_request(f"registry {value['id']} not found")
    return row.name


def _filter(item: object) -> Filter:
    if not isinstance(item, dict) or item.get("decoration", "matches") not in DECORATIONS:
        raise bad_request("a filter is {type: name|tag|label, value, decoration: matches|excludes}")
    kind, value = item.get("type"), item.get("value")
    excluding = DECORATIONS[item.get("decoration", "matches")]
    if kind == "resource":
        if value not in ("image", "artifact"):
            raise bad_request("Portlog replicates artifacts (resource filter image or artifact)")
        return Filter("name", "**")
    if kind == "label":
        return Filter("label", "", excluding, _label_names(value))
    if kind not in ("name", "tag"):
        raise bad_request(f"filters on {kind!r} are not supported (name, tag and label are)")
    return Filter(kind, value, excluding)


def _label_names(value: object) -> tuple[str, ...]:
    """Harbor sends a list of label names; one name alone is taken too."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        raise bad_request("a label filter's value is a list of label names")
    return tuple(names)


def _filter_json(item: Filter) -> dict:
    value = list(item.labels) if item.type == "label" else item.pattern
    return {"type": item.type, "value": value, "decoration": "excludes" if item.excluding else "matches"}


def _registry(call: Call, name: str | None) -> dict | None:
    row = call.services.registries.by_name(name) if name else None
    return registry_json(row) if row else None


def _row(call: Call) -> PolicyRow:
    text = call.param("policy_id")
    row = by_id(call.services.replication.policy, text)
    if row is None:
        raise not_found(f"replication policy {text} not found")
    return row


# Executions and tasks (/api/v2.0/replication/executions…)

TASK_STATUS = {"pending": "Pending", "running": "InProgress", "succeeded": "Succeed", "failed": "Failed",
               "stopped": "Stopped"}


def execution_json(call: Call, row: ExecutionRow) -> dict:
    policy = call.services.replication.by_name(row.policy)
    counts = row.counts
    return {"id": row.id, "policy_id": policy.id if policy else 0, "status": row.status, "status_text": "",
            "trigger": row.trigger, "total": row.total, "succeed": counts.get("succeeded", 0),
            "failed": counts.get("failed", 0), "stopped": counts.get("stopped", 0),
            "in_progress": counts.get("pending", 0) + counts.get("running", 0),
            "start_time": row.started_at, "end_time": row.ended_at}


def task_json(row: TaskRow, execution_id: int) -> dict:
    return {"id": row.id, "execution_id": execution_id, "resource_type": "artifact",
            "src_resource": f"{row.source_repository}:{row.reference}",
            "dst_resource": f"{row.destination_repository}:{row.reference}",
            "operation": "deletion" if row.operation == "delete" else "copy", "job_id": row.task,
            "status": TASK_STATUS[row.status] if row.status != "pending" or not row.retry_at else "Retrying",
            "attempts": row.attempts, "bytes": row.bytes, "duration_ms": row.duration_ms, "error": row.error,
            "start_time": row.started_at, "end_time": row.ended_at}


def start_execution(call: Call) -> Response:
    """`{"policy_id": N}`: run the policy now (201; the tasks run in the background)."""
    call.require_system("replication", "create")
    policy_id = body_of(call).get("policy_id")
    row = call.services.replication.policy(policy_id) if type(policy_id) is int else None  # not a bool
    if row is None:
        raise bad_request(f"replication policy {policy_id} not found")
    execution, position = call.services.replicator.start(row.name, "manual", call.context)
    call.settle(position)
    created = call.services.replication_runs.execution_by_uuid(str(execution))
    return empty(201, {"Location": f"{call.request.url.path.rstrip('/')}/{created.id}"})


def list_executions(call: Call) -> Response:
    """Executions, newest first; `policy_id`, `status`, `trigger`."""
    call.require_system("replication", "list")
    params = call.request.query_params
    policy = None
    if params.get("policy_id"):
        found = by_id(call.services.replication.policy, params["policy_id"])
        if found is None:
            return paged_list(call.request, [])
        policy = found.name
    rows, _ = call.services.replication_runs.executions(policy, 0, 1 << 31)
    items = [execution_json(call, row) for row in rows]
    wanted = {key: params[key] for key in ("status", "trigger") if params.get(key)}
    items = [item for item in items if all(item[key] == value for key, value in wanted.items())]
    return paged_list(call.request, items)


def get_execution(call: Call) -> Response:
    call.require_system("replication", "read")
    return json_response(execution_json(call, _execution(call)))


def stop_execution(call: Call) -> Response:
    """Stop: pending tasks stop at once, running ones at their next blob or chunk."""
    call.require_system("replication", "create")
    row = _execution(call)
    call.settle(call.services.replicator.stop(UUID(row.execution), call.context))
    return empty()


def list_tasks(call: Call) -> Response:
    """The execution's tasks: state, attempts, bytes, duration, last error; `status`."""
    call.require_system("replication", "read")
    row = _execution(call)
    items = [task_json(task, row.id) for task in call.services.replication_runs.tasks(row.execution)]
    status = call.request.query_params.get("status")
    return paged_list(call.request, [i for i in items if status in (None, i["status"])])


def task_log(call: Call) -> Response:
    call.require_system("replication", "read")
    task = _task(call, _execution(call))
    lines = [f"{task.operation} {task.source_repository}:{task.reference} -> {task.destination_repository}",
             f"status {task.status}, attempts {task.attempts}, {task.bytes} bytes"]
    if task.error:
        lines.append(f"last error: {task.error}")
    return PlainTextResponse("\n".join(lines) + "\n")


def retry_task(call: Call) -> Response:
    """Run a failed or stopped task again (Portlog)."""
    call.require_system("replication", "create")
    task = _task(call, _execution(call))
    call.settle(call.services.replicator.retry(UUID(task.task), call.context))
    return empty()


def _task(call: Call, execution: ExecutionRow) -> TaskRow:
    text = call.param("task_id")
    task = by_id(call.services.replication_runs.task, text)
    if task is None or task.execution != execution.execution:
        raise not_found(f"task {text} not found in execution {execution.id}")
    return task


def _execution(call: Call) -> ExecutionRow:
    text = call.param("execution_id")
    row = by_id(call.services.replication_runs.execution, text)
    if row is None:
        raise not_found(f"replication execution {text} not found")
    return row
