"""Projects and their members (/api/v1/projects…)."""

from __future__ import annotations

from typing import NoReturn

from starlette.responses import Response

from api.management.common import Call, field, json_response, page_params, paged
from api.management.problems import Problem
from domain.permissions import Role
from projections.access import MemberRow, ProjectRow


def project_json(row: ProjectRow) -> dict:
    return {"name": row.name, "public": row.public, "created_at": row.created_at,
            "updated_at": row.updated_at, "proxy_cache_registry": row.proxy_registry}


def member_json(row: MemberRow) -> dict:
    return {"kind": row.kind, "principal": row.principal, "role": row.role,
            "repository": row.repository, "since": row.since}


def list_projects(call: Call) -> Response:
    """Projects the caller can see (public ones, and those they are a member of)."""
    page, size = page_params(call.request)
    rows, total = call.services.access.projects(
        (page - 1) * size, size, visible_to=call.principal, name_contains=call.request.query_params.get("name"))
    return paged(call.request, [project_json(r) for r in rows], total, page, size)


def create_project(call: Call) -> Response:
    """Create a project; its creator becomes its project admin. `proxy_cache_registry`, the name
    of a registry endpoint, makes it a proxy-cache project of that registry."""
    call.require_system("project", "create")
    name, public = field(call.body, "name", str), field(call.body, "public", bool, False, False)
    upstream = field(call.body, "proxy_cache_registry", str, False)
    if upstream is not None:
        require_upstream_choice(call)
    owner = call.principal.name if call.principal.kind == "user" else None
    call.settle(call.services.admin.create_project(name, public, call.context, owner=owner,
                                                   proxy_registry=upstream))
    return json_response(project_json(call.services.access.project(name)), 201,
                         {"Location": f"/api/v1/projects/{name}"})


def get_project(call: Call) -> Response:
    """One project."""
    name = call.param("project")
    call.require_project(name, "project", "read")
    return json_response(project_json(call.services.access.project(name)))


def update_project(call: Call) -> Response:
    """Change a project's visibility."""
    name = call.param("project")
    call.require_project(name, "project", "update")
    upstream = field(call.body, "proxy_cache_registry", str, False)
    if upstream is not None and upstream != call.services.access.project(name).proxy_registry:
        refuse_upstream_change(call)
    public = field(call.body, "public", bool)
    call.settle(call.services.admin.set_project_public(name, public, call.context))
    return json_response(project_json(call.services.access.project(name)))


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
    return json_response([member_json(m) for m in call.services.access.members(name)])


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
