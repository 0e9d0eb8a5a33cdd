"""Project members (/api/v2.0/projects/{project_name_or_id}/members…): users with Harbor's
numeric roles. Portlog's repository-level grants have no Harbor form and are not listed here;
groups do not exist in Portlog."""

from __future__ import annotations

from starlette.responses import Response

from api.harbor.common import PREFIX, bad_request, body_of, empty, not_found, paged_list, project_of
from api.management.common import Call, field, json_response
from api.management.problems import Problem
from api.request_input import by_id
from domain.permissions import HARBOR_ROLE_IDS, Role
from projections.access import MemberRow, ProjectRow

ROLES_BY_ID = {number: role for role, number in HARBOR_ROLE_IDS.items()}
ROLE_NAMES = {Role.PROJECT_ADMIN: "projectAdmin", Role.DEVELOPER: "developer", Role.GUEST: "guest",
              Role.MAINTAINER: "maintainer", Role.LIMITED_GUEST: "limitedGuest"}


def member_json(call: Call, project: ProjectRow, row: MemberRow) -> dict:
    user = call.services.access.user(row.principal)
    role = Role(row.role)
    return {"id": row.id, "project_id": project.id, "entity_name": row.principal, "entity_type": "u",
            "entity_id": user.id if user else None, "role_id": HARBOR_ROLE_IDS[role],
            "role_name": ROLE_NAMES[role]}


def list_members(call: Call) -> Response:
    """Members of a project; `entityname` matches part of the name."""
    project = project_of(call, "member", "list")
    needle = call.request.query_params.get("entityname") or ""
    rows = [m for m in _members(call, project) if needle in m.principal]
    return paged_list(call.request, rows, lambda row: member_json(call, project, row))


def get_member(call: Call) -> Response:
    """One member, by member id."""
    project = project_of(call, "member", "list")
    return json_response(member_json(call, project, _member(call, project)))


def add_member(call: Call) -> Response:
    """Add a user (`member_user`: `username` or `user_id`) with `role_id`."""
    project = project_of(call, "member", "create")
    body = body_of(call)
    if body.get("member_group"):
        raise bad_request("group members are not supported: Portlog has no user groups")
    username = _username(call, field(body, "member_user", dict))
    role = _role(field(body, "role_id", int))
    call.require_role_grantable(project.name, role)
    if any(m.principal == username for m in _members(call, project)):
        raise Problem(409, "conflict", f"{username} is already a member of {project.name}")
    call.settle(call.services.admin.set_member(project.name, username, role, None, call.context))
    added = next(m for m in _members(call, project) if m.principal == username)
    return empty(201, {"Location": f"{PREFIX}/projects/{project.id}/members/{added.id}"})


def update_member(call: Call) -> Response:
    """Change a member's role (`role_id`)."""
    project = project_of(call, "member", "update")
    member = _member(call, project)
    role = _role(field(body_of(call), "role_id", int))
    call.require_role_grantable(project.name, role)
    call.settle(call.services.admin.set_member(project.name, member.principal, role, None, call.context))
    return empty()


def remove_member(call: Call) -> Response:
    """Remove a member."""
    project = project_of(call, "member", "delete")
    member = _member(call, project)
    call.settle(call.services.admin.remove_member(project.name, member.principal, None, call.context))
    return empty()


def _members(call: Call, project: ProjectRow) -> list[MemberRow]:
    return [m for m in call.services.access.members(project.name)
            if m.kind == "user" and m.repository is None]


def _member(call: Call, project: ProjectRow) -> MemberRow:
    value = call.param("mid")
    row = by_id(call.services.access.member_by_id, value)
    if row is None or row.project != project.name or row.repository is not None:
        raise not_found(f"member {value} of project {project.name} not found")
    return row


def _username(call: Call, member_user: dict) -> str:
    if isinstance(member_user.get("username"), str) and member_user["username"]:
        return member_user["username"]
    user_id = member_user.get("user_id")
    row = call.services.access.user_by_id(user_id) if type(user_id) is int else None  # not a bool
    if row is None:
        raise not_found(f"user {user_id} not found")
    return row.username


def _role(role_id: int) -> Role:
    if role_id not in ROLES_BY_ID:
        raise bad_request(f"unknown role_id {role_id}: 1 project admin, 2 developer, 3 guest, "
                          "4 maintainer, 5 limited guest")
    return ROLES_BY_ID[role_id]
