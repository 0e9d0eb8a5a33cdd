"""Project members (/api/v2.0/projects/{project_name_or_id}/members…): users (`entity_type` "u")
and user groups ("g") with Harbor's numeric roles. Portlog's repository-level grants have no
Harbor form and are not listed here."""

from __future__ import annotations

from starlette.responses import Response

from api.harbor.common import PREFIX, bad_request, body_of, empty, not_found, paged_list, project_of
from api.harbor.usergroups import add_group
from api.management.common import Call, field, json_response
from api.management.problems import Problem
from api.request_input import by_id
from domain.identity import LDAP_GROUP, OIDC_GROUP, group_key
from domain.permissions import HARBOR_ROLE_IDS, Role
from projections.access import GroupRow, MemberRow, ProjectRow

ROLES_BY_ID = {number: role for role, number in HARBOR_ROLE_IDS.items()}
ROLE_NAMES = {Role.PROJECT_ADMIN: "projectAdmin", Role.DEVELOPER: "developer", Role.GUEST: "guest",
              Role.MAINTAINER: "maintainer", Role.LIMITED_GUEST: "limitedGuest"}


def member_json(call: Call, project: ProjectRow, row: MemberRow) -> dict:
    role = Role(row.role)
    name, entity_id = _entity(call, row)
    return {"id": row.id, "project_id": project.id, "entity_name": name,
            "entity_type": "g" if row.kind == "group" else "u", "entity_id": entity_id,
            "role_id": HARBOR_ROLE_IDS[role], "role_name": ROLE_NAMES[role]}


def _entity(call: Call, row: MemberRow) -> tuple[str, int | None]:
    """A member's name and id: a user's, or a group's (a group member names its key)."""
    if row.kind == "group":
        group = call.services.access.group_by_key(row.principal)
        return (group.name, group.id) if group else (row.principal, None)
    user = call.services.access.user(row.principal)
    return row.principal, user.id if user else None


def list_members(call: Call) -> Response:
    """Members of a project; `entityname` matches part of the name."""
    project = project_of(call, "member", "list")
    needle = call.request.query_params.get("entityname") or ""
    items = [member_json(call, project, m) for m in _members(call, project)]
    return paged_list(call.request, [item for item in items if needle in item["entity_name"]])


def get_member(call: Call) -> Response:
    """One member, by member id."""
    project = project_of(call, "member", "list")
    return json_response(member_json(call, project, _member(call, project)))


def add_member(call: Call) -> Response:
    """Add a user (`member_user`: `username` or `user_id`) or a group (`member_group`: `id`, or
    `ldap_group_dn` / `group_name` and `group_type`, created when new) with `role_id`."""
    project = project_of(call, "member", "create")
    body = body_of(call)
    role = _role(field(body, "role_id", int))
    call.require_role_grantable(project.name, role)
    if body.get("member_group"):
        group = _group(call, field(body, "member_group", dict))
        kind, principal, shown = "group", group.key, group.name
    else:
        kind, principal = "user", _username(call, field(body, "member_user", dict))
        shown = principal
    if any(m.kind == kind and m.principal == principal for m in _members(call, project)):
        raise Problem(409, "conflict", f"{shown} is already a member of {project.name}")
    admin = call.services.admin
    call.settle(admin.set_group_member(project.name, group.group_type, group.key, role, call.context)
                if kind == "group" else admin.set_member(project.name, principal, role, None, call.context))
    added = next(m for m in _members(call, project) if m.kind == kind and m.principal == principal)
    return empty(201, {"Location": f"{PREFIX}/projects/{project.id}/members/{added.id}"})


def update_member(call: Call) -> Response:
    """Change a member's role (`role_id`)."""
    project = project_of(call, "member", "update")
    member = _member(call, project)
    role = _role(field(body_of(call), "role_id", int))
    call.require_role_grantable(project.name, role)
    admin = call.services.admin
    if member.kind == "group":
        group = call.services.access.group_by_key(member.principal)
        if group is None:
            raise not_found(f"the group of member {member.id} no longer exists")
        call.settle(admin.set_group_member(project.name, group.group_type, group.key, role, call.context))
    else:
        call.settle(admin.set_member(project.name, member.principal, role, None, call.context))
    return empty()


def remove_member(call: Call) -> Response:
    """Remove a member."""
    project = project_of(call, "member", "delete")
    member = _member(call, project)
    admin = call.services.admin
    call.settle(admin.remove_group_member(project.name, member.principal, call.context) if member.kind == "group"
                else admin.remove_member(project.name, member.principal, None, call.context))
    return empty()


def _members(call: Call, project: ProjectRow) -> list[MemberRow]:
    return [m for m in call.services.access.members(project.name)
            if m.kind in ("user", "group") and m.repository is None]


def _member(call: Call, project: ProjectRow) -> MemberRow:
    value = call.param("mid")
    row = by_id(call.services.access.member_by_id, value)
    if row is None or row.project != project.name or row.repository is not None or row.kind not in ("user", "group"):
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


def _group(call: Call, member_group: dict) -> GroupRow:
    """The group `member_group` names: by `id`, else by `ldap_group_dn` (an LDAP group) or
    `group_name` (of `group_type`, OIDC when not given), created when it does not exist yet."""
    access, group_id = call.services.access, member_group.get("id")
    if type(group_id) is int and group_id > 0:  # not a bool
        row = access.group_by_id(group_id)
        if row is None:
            raise not_found(f"user group {group_id} not found")
        return row
    dn, name = member_group.get("ldap_group_dn"), member_group.get("group_name")
    group_type = LDAP_GROUP if isinstance(dn, str) and dn.strip() else member_group.get("group_type") or OIDC_GROUP
    if group_type == LDAP_GROUP and isinstance(dn, str):
        existing = access.group(LDAP_GROUP, group_key(LDAP_GROUP, dn.strip()))
    elif group_type == OIDC_GROUP and isinstance(name, str):
        existing = access.group(OIDC_GROUP, group_key(OIDC_GROUP, name.strip()))
    else:
        existing = None
    return existing or add_group(call, group_type, name, dn)


def _role(role_id: int) -> Role:
    if role_id not in ROLES_BY_ID:
        raise bad_request(f"unknown role_id {role_id}: 1 project admin, 2 developer, 3 guest, "
                          "4 maintainer, 5 limited guest")
    return ROLES_BY_ID[role_id]
