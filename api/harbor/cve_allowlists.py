"""CVE allowlists in Harbor's shape: the system's (/api/v2.0/system/CVEAllowlist: every signed-in
principal reads it, system administrators set it) and a project's own (`cve_allowlist` in the
project JSON, api/harbor/projects.py). Harbor's JSON: {"id", "project_id" (0: the system's),
"expires_at" (Unix seconds, null: never), "items": [{"cve_id"}], "creation_time", "update_time"}."""

from __future__ import annotations

from starlette.responses import Response

from api.harbor.common import bad_request, body_of, empty
from api.management.common import Call, json_response
from domain.cve_allowlist import CveAllowlist
from projections.scanning_policies import AllowlistRow


def allowlist_json(row: AllowlistRow | None, project_id: int) -> dict:
    """A list never set is empty, with id 0 and no times."""
    allowlist = row.allowlist if row else CveAllowlist()
    return {"id": row.id if row else 0, "project_id": project_id, "expires_at": allowlist.expires_at,
            "items": [{"cve_id": cve} for cve in allowlist.items],
            "creation_time": row.created_at if row else None, "update_time": row.updated_at if row else None}


def parse_allowlist(raw: object, what: str = "the allowlist") -> CveAllowlist:
    """Harbor's CVEAllowlist JSON as a checked allowlist (ids, count, expiry); 400 otherwise."""
    if not isinstance(raw, dict):
        raise bad_request(f"{what} must be an object with items and expires_at")
    items = raw.get("items")
    if items is None:
        items = []
    if not isinstance(items, list) or not all(isinstance(item, dict) and "cve_id" in item for item in items):
        raise bad_request(f"the items of {what} must be a list of objects with a cve_id")
    return CveAllowlist(tuple(item["cve_id"] for item in items), raw.get("expires_at")).checked()


def get_system_allowlist(call: Call) -> Response:
    """The system's CVE allowlist, for any signed-in principal (as Harbor)."""
    return json_response(allowlist_json(call.services.scanning_policies.system_allowlist(), 0))


def put_system_allowlist(call: Call) -> Response:
    """Replace the system's CVE allowlist (system administrators)."""
    call.require_system("cve-allowlist", "update")
    body = body_of(call)
    if body.get("project_id") not in (None, 0):
        raise bad_request("the system allowlist has project_id 0")
    allowlist = parse_allowlist(body, "the system allowlist")
    call.settle(call.services.scanning_policy.set_system_allowlist(allowlist, call.context))
    return empty()
