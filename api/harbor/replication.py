"""Replication policies, Harbor's way (/api/v2.0/replication/policies…): `src_registry` or
`dest_registry` (the other is this registry, null), `dest_namespace`,
`dest_namespace_replace_count`, `filters` (name and tag, doublestar, matches / excludes),
`trigger` (manual, scheduled with a cron, event_based), `deletion`, `override`, `enabled`,
`speed`. System administrators only (Harbor's `replication-policy`). Portlog refuses, with a 400,
what it would otherwise silently ignore (label filters, other resource types)."""

from __future__ import annotations

from starlette.responses import Response

from api.harbor.common import bad_request, body_of, empty, filter_items, not_found, paged_list, parse_q, sort_items
from api.harbor.registries import registry_json
from api.management.common import Call, json_response
from domain.cron import CronSchedule
from domain.replication import Filter, PolicySettings
from projections.replication import PolicyRow

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
            "filters": [{"type": f.type, "value": f.pattern, "decoration": "excludes" if f.excluding else "matches"}
                        for f in settings.filters],
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
        raise bad_request("a filter is {type: name|tag, value, decoration: matches|excludes}")
    kind, value = item.get("type"), item.get("value")
    if kind == "resource":
        if value not in ("image", "artifact"):
            raise bad_request("Portlog replicates artifacts (resource filter image or artifact)")
        return Filter("name", "**")
    if kind not in ("name", "tag"):
        raise bad_request(f"filters on {kind!r} are not supported (name and tag are)")
    return Filter(kind, value, DECORATIONS[item.get("decoration", "matches")])


def _registry(call: Call, name: str | None) -> dict | None:
    row = call.services.registries.by_name(name) if name else None
    return registry_json(row) if row else None


def _row(call: Call) -> PolicyRow:
    text = call.param("policy_id")
    row = call.services.replication.policy(int(text)) if text.isdigit() else None
    if row is None:
        raise not_found(f"replication policy {text} not found")
    return row
