"""Projects (/api/v2.0/projects…). Portlog's metadata keys: `public` and the scanning settings
(`auto_scan`, `prevent_vul`, `severity`, `reuse_sys_cve_allowlist`, `enable_content_trust_cosign`,
`enable_content_trust`: domain/scanning_settings.py), returned as Harbor does, in strings; the
other keys Harbor knows (auto_sbom_generation, proxy_*) are accepted and ignored. `cve_allowlist`
is the project's own CVE allowlist (api/harbor/cve_allowlists.py)."""

from __future__ import annotations

from dataclasses import replace

from starlette.responses import Response

from api.harbor.common import (
    PREFIX,
    bad_request,
    body_of,
    empty,
    filter_items,
    harbor_bool,
    paged_list,
    parse_q,
    project_of,
    sort_items,
)
from api.harbor.cve_allowlists import allowlist_json, parse_allowlist
from api.harbor.quotas import quota_json, set_storage_limit
from api.management.common import Call, field, json_response
from api.management.problems import Problem
from api.management.projects import refuse_upstream_change, require_upstream_choice
from domain.cve_allowlist import CveAllowlist
from domain.permissions import HARBOR_ROLE_IDS, Role
from domain.scanning_settings import DEFAULT, FLAGS, ScanningSettings
from domain.severity import parse_severity
from projections.access import ProjectRow

# Most privileged first, for `current_user_role_id`.
ROLE_ORDER = (Role.PROJECT_ADMIN, Role.MAINTAINER, Role.DEVELOPER, Role.GUEST, Role.LIMITED_GUEST)
Q_FIELDS = {"name": "name", "projectid": "project_id", "public": "public"}


def project_json(call: Call, row: ProjectRow) -> dict:
    roles = {grant.role for grant in call.principal.grants.get(row.name, ()) if grant.repository is None}
    role_ids = [HARBOR_ROLE_IDS[role] for role in ROLE_ORDER if role in roles]
    policies = call.services.scanning_policies
    return {
        "project_id": row.id, "name": row.name, "creation_time": row.created_at,
        "update_time": row.updated_at, "deleted": False, "registry_id": _registry_id(call, row),
        "togglable": True,
        "repo_count": call.services.catalog.repository_count(row.name),
        "current_user_role_id": role_ids[0] if role_ids else 0, "current_user_role_ids": role_ids,
        "metadata": {"public": _text(row.public), **scanning_metadata(policies.settings(row.name)),
                     # As Harbor: the id of the project's retention policy (api/harbor/retention.py).
                     **({"retention_id": str(row.id)} if call.services.retention.policy(row.name) else {})},
        "cve_allowlist": allowlist_json(policies.allowlist(row.name), row.id),
    }


def scanning_metadata(settings: ScanningSettings) -> dict[str, str]:
    """The scanning settings as Harbor's metadata has them: strings, the severity in lower case."""
    return {**{flag: _text(getattr(settings, flag)) for flag in FLAGS}, "severity": settings.severity.lower()}


def _text(flag: bool) -> str:
    return "true" if flag else "false"


def list_projects(call: Call) -> Response:
    """Projects the caller can see; `name` (fuzzy), `public`, `q` (name, project_id, public), `sort`."""
    params = call.request.query_params
    if params.get("owner"):
        raise bad_request("the owner filter is not supported: Portlog projects have no owner")
    rows, _ = call.services.access.projects(0, 1 << 31, visible_to=call.principal,
                                             name_contains=params.get("name"))
    items = [{"name": r.name, "project_id": r.id, "public": r.public, "row": r,
              "creation_time": r.created_at, "update_time": r.updated_at} for r in rows]
    if params.get("public") is not None:
        public = harbor_bool(params["public"], "public")
        items = [item for item in items if item["public"] == public]
    items = filter_items(items, parse_q(params.get("q")), Q_FIELDS)
    items = sort_items(items, params.get("sort"), {"name", "project_id", "creation_time", "update_time"})
    return paged_list(call.request, items, lambda item: project_json(call, item["row"]))


def project_exists(call: Call) -> Response:
    """HEAD /projects?project_name=: 200 if the name is taken, 404 if not."""
    name = call.request.query_params.get("project_name")
    if not name:
        raise bad_request("project_name is required")
    return empty(200 if call.services.access.project(name) else 404)


def create_project(call: Call) -> Response:
    """Create a project; its creator becomes its project admin."""
    body = body_of(call)
    call.require_project_creation()
    name = field(body, "project_name", str)
    proxy_registry = _proxied_registry(call, body.get("registry_id"))
    metadata = _metadata(body)
    public = harbor_bool(metadata.get("public"), "metadata.public")
    if public is None:
        public = bool(field(body, "public", bool, False, False))
    settings = _scanning_settings(metadata, DEFAULT, proxy=proxy_registry is not None)
    allowlist = _project_allowlist(body, None)
    owner = call.principal.name if call.principal.kind == "user" else None
    call.settle(call.services.admin.create_project(name, public, call.context, owner=owner,
                                                   proxy_registry=proxy_registry))
    if settings is not None or allowlist is not None:
        call.settle(call.services.scanning_policy.set_project(name, call.context, settings, allowlist))
    call.settle(set_storage_limit(call, name, body.get("storage_limit")))
    row = call.services.access.project(name)
    by_name = call.request.headers.get("x-resource-name-in-location", "").lower() == "true"
    return empty(201, {"Location": f"{PREFIX}/projects/{row.name if by_name else row.id}"})


def _proxied_registry(call: Call, registry_id: object) -> str | None:
    """The endpoint name of a proxy-cache project's `registry_id` (None or 0: not a proxy cache)."""
    if registry_id is None or registry_id == 0:
        return None
    require_upstream_choice(call)
    if not isinstance(registry_id, int) or isinstance(registry_id, bool):
        raise bad_request("registry_id must be the id of a registry endpoint")
    endpoint = call.services.registries.by_id(registry_id)
    if endpoint is None:
        raise bad_request(f"registry {registry_id} not found")
    return endpoint.name


def _registry_id(call: Call, row: ProjectRow) -> int | None:
    endpoint = call.services.registries.by_name(row.proxy_registry) if row.proxy_registry else None
    return endpoint.id if endpoint else None


def get_project(call: Call) -> Response:
    """One project, by name or id."""
    return json_response(project_json(call, project_of(call, "project", "read")))


def update_project(call: Call) -> Response:
    """Change `metadata.public`, the scanning settings (the metadata keys given; the others keep
    their values) and the project's `cve_allowlist`."""
    row = project_of(call, "project", "update")
    body = body_of(call)
    if body.get("registry_id") not in (None, 0, _registry_id(call, row)):
        refuse_upstream_change(call)  # Harbor's clients send the unchanged one back
    metadata = _metadata(body)
    public = harbor_bool(metadata.get("public"), "metadata.public")
    if public is None and isinstance(body.get("public"), bool):
        public = body["public"]
    settings = _scanning_settings(metadata, call.services.scanning_policies.settings(row.name),
                                  proxy=row.proxy_registry is not None)
    allowlist = _project_allowlist(body, row.id)
    if public is not None:
        call.settle(call.services.admin.set_project_public(row.name, public, call.context))
    if settings is not None or allowlist is not None:
        call.settle(call.services.scanning_policy.set_project(row.name, call.context, settings, allowlist))
    return empty()


def _metadata(body: dict) -> dict:
    metadata = body.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object of strings")
    return metadata


def _scanning_settings(metadata: dict, current: ScanningSettings, proxy: bool) -> ScanningSettings | None:
    """`current` with the scanning keys `metadata` gives ("true"/"false"; the severity in any
    case, an empty one left out), None when it gives none. As Harbor, a proxy-cache project
    ignores enable_content_trust."""
    changes = {flag: value for flag in FLAGS
               if (value := harbor_bool(metadata.get(flag), f"metadata.{flag}")) is not None}
    if proxy:
        changes.pop("enable_content_trust", None)
    if metadata.get("severity") not in (None, ""):
        changes["severity"] = parse_severity(metadata["severity"])
    return replace(current, **changes) if changes else None


def _project_allowlist(body: dict, project_id: int | None) -> CveAllowlist | None:
    """The body's `cve_allowlist`, whose project_id is absent, 0 or the project's."""
    raw = body.get("cve_allowlist")
    if raw is None:
        return None
    claimed = raw.get("project_id") if isinstance(raw, dict) else None
    if claimed not in (None, 0) and claimed != project_id:
        raise bad_request(f"project_id in cve_allowlist must be {project_id or 0} but it's {claimed}")
    return parse_allowlist(raw, "cve_allowlist")


def delete_project(call: Call) -> Response:
    """Delete an empty project; its robots go with it, as in the management API."""
    row = project_of(call, "project", "delete")
    services = call.services
    repositories = services.catalog.repository_count(row.name)
    if repositories:
        raise Problem(412, "precondition", f"project {row.name} still holds {repositories} repositories")
    robots = [robot.name for robot in services.access.robots(project=row.name)]
    call.settle(services.admin.delete_project(row.name, call.context, repositories, robots))
    return empty()


def project_summary(call: Call) -> Response:
    """Repository count and member counts per role."""
    row = project_of(call, "project", "read")
    counts = {role: 0 for role in Role}
    for member in call.services.access.members(row.name):
        if member.repository is None:
            counts[Role(member.role)] += 1
    usage = call.services.quotas.usage(row.name)
    return json_response({
        "quota": {key: value for key, value in quota_json(row, usage).items() if key in ("hard", "used")},
        "repo_count": call.services.catalog.repository_count(row.name),
        "project_admin_count": counts[Role.PROJECT_ADMIN], "maintainer_count": counts[Role.MAINTAINER],
        "developer_count": counts[Role.DEVELOPER], "guest_count": counts[Role.GUEST],
        "limited_guest_count": counts[Role.LIMITED_GUEST],
    })


def project_deletable(call: Call) -> Response:
    """Whether the project could be deleted now."""
    row = project_of(call, "project", "read")
    repositories = call.services.catalog.repository_count(row.name)
    message = f"the project still holds {repositories} repositories" if repositories else ""
    return json_response({"deletable": not repositories, "message": message})
