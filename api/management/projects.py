"""Projects and their members (/api/v1/projects…). A project shows and takes its visibility, its
scanning settings (`scanning`: domain/scanning_settings.py) and its own CVE allowlist
(`cve_allowlist`: {"items": [ids], "expires_at": Unix seconds or null})."""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn

from starlette.responses import Response

from api.management.common import Call, field, json_response, page_params, paged
from api.management.problems import Problem
from domain.cve_allowlist import CveAllowlist
from domain.permissions import Role
from domain.scanning_settings import DEFAULT, NAMES, ScanningSettings
from projections.access import GroupRow, MemberRow, ProjectRow


def project_json(call: Call, row: ProjectRow) -> dict:
    policies = call.services.scanning_policies
    allowlist = policies.allowlist(row.name)
    return {"name": row.name, "public": row.public, "created_at": row.created_at,
            "updated_at": row.updated_at, "proxy_cache_registry": row.proxy_registry,
            "scanning": policies.settings(row.name).fields(),
            "cve_allowlist": (allowlist.allowlist if allowlist else CveAllowlist()).fields()}


def member_json(row: MemberRow, group: GroupRow | None = None) -> dict:
    """A group member's principal is the group's key (its DN lower-cased, or its OIDC name);
    `group` adds the group's id, name and type."""
    shown = {"kind": row.kind, "principal": row.principal, "role": row.role,
             "repository": row.repository, "since": row.since}
    if group is not None:
        shown["group"] = {"id": group.id, "name": group.name, "group_type": group.group_type}
    return shown


def list_projects(call: Call) -> Response:
    """Projects the caller can see (public ones, and those they are a member of)."""
    page, size = page_params(call.request)
    rows, total = call.services.access.projects(
        (page - 1) * size, size, visible_to=call.principal, name_contains=call.request.query_params.get("name"))
    return paged(call.request, [project_json(call, r) for r in rows], total, page, size)


def create_project(call: Call) -> Response:
    """Create a project; its creator becomes its project admin. `proxy_cache_registry`, the name
    of a registry endpoint, makes it a proxy-cache project of that registry; `scanning` (any of
    its settings) and `cve_allowlist` are optional."""
    call.require_project_creation()
    name, public = field(call.body, "name", str), field(call.body, "public", bool, False, False)
    upstream = field(call.body, "proxy_cache_registry", str, False)
    if upstream is not None:
        require_upstream_choice(call)
    settings, allowlist = _scanning(call, DEFAULT), _allowlist(call)
    owner = call.principal.name if call.principal.kind == "user" else None
    call.settle(call.services.admin.create_project(name, public, call.context, owner=owner,
                                                   proxy_registry=upstream))
    if settings is not None or allowlist is not None:
        call.settle(call.services.scanning_policy.set_project(name, call.context, settings, allowlist))
    return json_response(project_json(call, call.services.access.project(name)), 201,
                         {"Location": f"/api/v1/projects/{name}"})


def get_project(call: Call) -> Response:
    """One project."""
    name = call.param("project")
    call.require_project(name, "project", "read")
    return json_response(project_json(call, call.services.access.project(name)))


def update_project(call: Call) -> Response:
    """Change a project's visibility, scanning settings (those given) or CVE allowlist."""
    name = call.param("project")
    call.require_project(name, "project", "update")
    upstream = field(call.body, "proxy_cache_registry", str, False)
    if upstream is not None and upstream != call.services.access.project(name).proxy_registry:
        refuse_upstream_change(call)
    public = field(call.body, "public", bool, False)
    settings = _scanning(call, call.services.scanning_policies.settings(name))
    allowlist = _allowlist(call)
    if public is None and settings is None and allowlist is None:
        raise Problem(422, "invalid-input", "nothing to change: give public, scanning or cve_allowlist")
    if public is not None:
        call.settle(call.services.admin.set_project_public(name, public, call.context))
    if settings is not None or allowlist is not None:
        call.settle(call.services.scanning_policy.set_project(name, call.context, settings, allowlist))
    return json_response(project_json(call, call.services.access.project(name)))


def _scanning(call: Call, current: ScanningSettings) -> ScanningSettings | None:
    """`current` with the settings the body's `scanning` object gives (checked), None without one."""
    given = field(call.body, "scanning", dict, False)
    if given is None:
        return None
    unknown = sorted(set(given) - set(NAMES))
    if unknown:
        raise Problem(422, "invalid-input", f"unknown scanning setting {unknown[0]!r}", {"settings": list(NAMES)})
    return replace(current, **given).checked()


def _allowlist(call: Call) -> CveAllowlist | None:
    given = field(call.body, "cve_allowlist", dict, False)
    if given is None:
        return None
    unknown = sorted(set(given) - {"items", "expires_at"})
    if unknown:
        raise Problem(422, "invalid-input", f"unknown cve_allowlist field {unknown[0]!r}")
    return CveAllowlist(given.get("items") or (), given.get("expires_at")).checked()


def delete_project(call: Call) -> Response:
    """Delete an empty project (its robots go with it)."""
    name = call.param("project")
    call.require_project(name, "project", "delete")
    services = call.services
    robots = [robot.name for robot in services.access.robots(project=name)]
    call.settle(services.admin.delete_project(name, call.context, services.catalog.repository_count(name), robots))
    return Response(status_code=204)


def require_upstream_choice(call: Call) -> None:
    call.require_system("proxy-cache", "create")


def refuse_upstream_change(call: Call) -> NoReturn:
    """403 to those who may not choose an upstream; to the others, that it cannot change."""
    require_upstream_choice(call)
    raise Problem(422, "invalid-input", "a project's upstream is chosen when it is created and never changes")


def list_members(call: Call) -> Response:
    """Members of a project, with their roles (and the repository of a repository grant)."""
    name = call.param("project")
    call.require_project(name, "member", "list")
    access = call.services.access
    return json_response([member_json(m, access.group_by_key(m.principal) if m.kind == "group" else None)
                          for m in access.members(name)])


def set_member(call: Call) -> Response:
    """Add a member, or change their role. `repository` limits the grant to one repository."""
    name, username = call.param("project"), call.param("username")
    call.require_project(name, "member", "update")
    role = _role(field(call.body, "role", str))
    call.require_role_grantable(name, role)
    repository = field(call.body, "repository", str, required=False)
    call.settle(call.services.admin.set_member(name, username, role, repository, call.context))
    return list_members(call)


def remove_member(call: Call) -> Response:
    """Remove a member (`?repository=` for a repository grant)."""
    name, username = call.param("project"), call.param("username")
    call.require_project(name, "member", "delete")
    repository = call.request.query_params.get("repository") or None
    call.settle(call.services.admin.remove_member(name, username, repository, call.context))
    return Response(status_code=204)


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise Problem(422, "invalid-input", f"unknown role {value!r}",
                      {"roles": [r.value for r in Role]}) from None
