"""Webhooks (/api/v1/webhooks…): instance-wide policies, for system administrators, and —
by id — any project's policies, for those the project's role matrix allows
(`notification-policy`); deliveries with every attempt, and redelivery. docs/events.md (Webhooks) tells
what is sent when.

Auth headers are secrets: answers show them masked, and a masked value sent back (a GET
edited and PUT), or none, keeps the header the target at that address had.
"""

from __future__ import annotations

from uuid import UUID

from starlette.responses import Response

from api.management.common import Call, field, json_response, page_params, paged
from api.management.problems import Problem
from api.request_input import by_id
from config.settings import MASK
from domain.webhooks import EVENT_TYPES, PolicySettings, Target, Webhooks
from projections.webhooks import AttemptRow, DeliveryFilter, DeliveryRow, PolicyRow

RESOURCE = "notification-policy"
STATUSES = ("pending", "sending", "retrying", "delivered", "failed")


def masked(header: str) -> str:
    return MASK if header else ""


def unmasked(header: str | None, address: str, current: list[Target]) -> str:
    """A masked header sent back, or none, means "unchanged": the header the target at that
    address had ("" clears it)."""
    if header is not None and header != MASK:
        return header
    return next((t.auth_header for t in current if t.address == address), "")


def webhook_json(row: PolicyRow) -> dict:
    return {"id": row.id, "name": row.name, "project": row.project, "description": row.description,
            "enabled": row.enabled, "event_types": row.event_types,
            "targets": [{"url": t.address, "auth_header": masked(t.auth_header), "payload_format": t.payload_format,
                         "skip_cert_verify": t.skip_cert_verify} for t in row.targets],
            "creator": row.creator, "created_at": row.created_at, "updated_at": row.updated_at}


def delivery_json(row: DeliveryRow, errors: bool) -> dict:
    """`errors`: whether the caller may see why attempts failed (those who manage the policy)."""
    return {"id": row.id, "webhook": row.policy, "project": row.project, "event_position": row.event_position,
            "event_type": row.event_type, "url": row.address, "payload_format": row.payload_format,
            "status": row.status, "attempts": row.attempts, "status_code": row.status_code,
            "latency_ms": row.latency_ms, "last_error": row.last_error if errors else None,
            "first_attempt_at": row.first_attempt_at, "last_attempt_at": row.last_attempt_at,
            "next_attempt_at": row.next_attempt_at,
            "created_at": row.created_at, "updated_at": row.updated_at}


def attempt_json(row: AttemptRow, errors: bool) -> dict:
    return {"attempt": row.attempt, "started_at": row.started_at, "finished_at": row.finished_at,
            "succeeded": row.succeeded, "status_code": row.status_code, "latency_ms": row.latency_ms,
            "error": row.error if errors else None, "dispatcher": row.dispatcher}


# Policies


def list_webhooks(call: Call) -> Response:
    """Instance-wide webhooks, or a project's (`?project=`)."""
    project = call.request.query_params.get("project")
    require_scope(call, project, "list")
    page, size = page_params(call.request)
    rows = call.services.webhooks.policies(project)
    return paged(call.request, [webhook_json(r) for r in rows[(page - 1) * size:page * size]], len(rows), page, size)


def create_webhook(call: Call) -> Response:
    """Create a webhook: instance-wide, or for `project`."""
    project = field(call.body, "project", str, required=False)
    require_scope(call, project, "create")
    policy = create_policy(call, project, webhook_settings(call.body, None))
    return json_response(webhook_json(policy), 201, {"Location": f"/api/v1/webhooks/{policy.id}"})


def get_webhook(call: Call) -> Response:
    """One webhook (auth headers masked)."""
    return json_response(webhook_json(policy_of(call, "read")))


def update_webhook(call: Call) -> Response:
    """Change a webhook; absent fields keep their values."""
    row = policy_of(call, "update")
    return json_response(webhook_json(update_policy(call, row, webhook_settings(call.body, row))))


def delete_webhook(call: Call) -> Response:
    """Delete a webhook; its pending deliveries are given up."""
    row = policy_of(call, "delete")
    call.settle(Webhooks(call.services.registry).delete_policy(UUID(row.policy_id), call.context))
    return Response(status_code=204)


# Deliveries


def list_deliveries(call: Call) -> Response:
    """A webhook's deliveries, newest first (`status`, `event_type`: comma-separated)."""
    row = policy_of(call, "list")
    params = call.request.query_params
    query = DeliveryFilter(row.id, _listed(params.get("status"), STATUSES, "status"),
                           _listed(params.get("event_type"), EVENT_TYPES, "event_type"))
    page, size = page_params(call.request)
    rows, total = call.services.webhooks.deliveries(query, (page - 1) * size, size)
    errors = may_manage(call, row.project)
    return paged(call.request, [delivery_json(r, errors) for r in rows], total, page, size)


def get_delivery(call: Call) -> Response:
    """One delivery with every attempt and the payload it sends."""
    row = delivery_of(call, "list")
    attempts, errors = call.services.webhooks.attempts(row.delivery_id), may_manage(call, row.project)
    return json_response(delivery_json(row, errors) | {
        "payload": row.payload, "attempt_history": [attempt_json(a, errors) for a in attempts]})


def redeliver(call: Call) -> Response:
    """Send a delivery again now (its retry window starts afresh)."""
    row = delivery_of(call, "update")
    call.settle(Webhooks(call.services.registry).request_redelivery(UUID(row.delivery_id), call.context))
    return json_response(delivery_json(call.services.webhooks.delivery(row.id), True), 202)


# Shared with the Harbor surface (api/harbor/webhooks.py)


def require_scope(call: Call, project: str | None, action: str) -> None:
    if project is None:
        call.require_system(RESOURCE, action)
    else:
        call.require_project(project, RESOURCE, action)


def may_manage(call: Call, project: str | None) -> bool:
    """Whether the caller manages the policies (and so sees why deliveries failed)."""
    try:
        require_scope(call, project, "update")
    except Problem:
        return False
    return True


def create_policy(call: Call, project: str | None, settings: PolicySettings) -> PolicyRow:
    _check_name_free(call, project, settings.name, None)
    _check_targets_reachable(call, settings)
    policy_id, position = Webhooks(call.services.registry).create_policy(project, settings, call.context)
    call.settle(position)
    return call.services.webhooks.policy_by_uuid(policy_id)


def update_policy(call: Call, row: PolicyRow, settings: PolicySettings) -> PolicyRow:
    _check_name_free(call, row.project, settings.name, row.id)
    _check_targets_reachable(call, settings)
    call.settle(Webhooks(call.services.registry).update_policy(UUID(row.policy_id), settings, call.context))
    return call.services.webhooks.policy(row.id)


def policy_of(call: Call, action: str, param: str = "webhook") -> PolicyRow:
    value = call.param(param)
    row = by_id(call.services.webhooks.policy, value)
    if row is None:
        raise Problem(404, "not-found", f"webhook {value} not found")
    require_scope(call, row.project, action)
    return row


def delivery_of(call: Call, action: str) -> DeliveryRow:
    value = call.param("delivery")
    row = by_id(call.services.webhooks.delivery, value)
    if row is None:
        raise Problem(404, "not-found", f"delivery {value} not found")
    require_scope(call, row.project, action)
    return row


def _check_name_free(call: Call, project: str | None, name: str, other_than: int | None) -> None:
    if call.services.webhooks.name_taken(project, name, other_than):
        raise Problem(409, "conflict", f"a webhook named {name!r} exists already"
                                       + (f" in project {project}" if project else ""))


def _check_targets_reachable(call: Call, settings: PolicySettings) -> None:
    for target in settings.checked().targets:
        call.require_outbound(target.address)


def webhook_settings(body: object, current: PolicyRow | None) -> PolicySettings:
    """The body of POST and PUT: `url`, `auth_header`, `payload_format`, `skip_cert_verify` for
    one target — or `targets`, a list of such objects — with `name`, `event_types`, `enabled`,
    `description`."""
    def value(name: str, kind: type, default):
        return field(body, name, kind, False, getattr(current, name) if current else default)

    if field(body, "targets", list, required=False) is not None:
        targets = [_target(t, current) for t in body["targets"]]
    elif field(body, "url", str, required=False) is not None:
        targets = [_target(body, current)]
    else:
        targets = current.targets if current else []
    return PolicySettings(value("name", str, None) or _missing("name"), value("event_types", list, []), targets,
                          value("enabled", bool, True), value("description", str, ""))


def _target(raw: object, current: PolicyRow | None) -> Target:
    url = field(raw, "url", str)
    header = unmasked(field(raw, "auth_header", str, False), url, current.targets if current else [])
    return Target(address=url, auth_header=header, payload_format=field(raw, "payload_format", str, False, "Default"),
                  skip_cert_verify=field(raw, "skip_cert_verify", bool, False, False))


def _missing(name: str):
    raise Problem(422, "invalid-input", f"field '{name}' is required", {"field": name})


def _listed(value: str | None, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    chosen = tuple(v for v in (value or "").split(",") if v)
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        raise Problem(422, "invalid-input", f"unknown {name} {unknown[0]!r}; one of: {', '.join(allowed)}")
    return chosen
