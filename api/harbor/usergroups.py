"""User groups (/api/v2.0/usergroups…), Harbor's shape: `id`, `group_name`, `group_type` (1 LDAP,
3 OIDC) and `ldap_group_dn`. An LDAP group is named by its DN (the key its members' logins are
matched on), an OIDC group by the name the provider's groups claim gives. The DN is checked for
syntax here; whether the directory holds it is the LDAP adapter's to say (docs/harbor-api.md)."""

from __future__ import annotations

from starlette.responses import Response

from api.harbor.common import PREFIX, bad_request, body_of, empty, not_found, paged
from api.management.common import Call, json_response, page_params
from api.request_input import by_id
from domain.identity import LDAP_GROUP, OIDC_GROUP, group_key
from domain.user_groups import check_group
from projections.access import GroupRow


def group_json(row: GroupRow) -> dict:
    return {"id": row.id, "group_name": row.name, "group_type": row.group_type, "ldap_group_dn": row.ldap_dn}


def list_groups(call: Call) -> Response:
    """Groups, by name; `group_name` matches part of it, `ldap_group_dn` one DN exactly."""
    call.require_system("user-group", "list")
    params = call.request.query_params
    page, size = page_params(call.request)
    if params.get("ldap_group_dn"):
        row = call.services.access.group(LDAP_GROUP, group_key(LDAP_GROUP, params["ldap_group_dn"]))
        needle = params.get("group_name") or ""
        rows = [row] if row is not None and needle in row.name else []
        return paged(call.request, [group_json(r) for r in rows[(page - 1) * size:page * size]], len(rows),
                     page, size)
    rows, total = call.services.access.groups((page - 1) * size, size, params.get("group_name") or None)
    return paged(call.request, [group_json(r) for r in rows], total, page, size)


def search_groups(call: Call) -> Response:
    """Groups whose name contains `groupname` (ids, names and types only), for any signed-in user."""
    needle = call.request.query_params.get("groupname")
    if not needle:
        raise bad_request("groupname is required")
    page, size = page_params(call.request)
    rows, total = call.services.access.groups((page - 1) * size, size, needle)
    items = [{"id": r.id, "group_name": r.name, "group_type": r.group_type} for r in rows]
    return paged(call.request, items, total, page, size)


def get_group(call: Call) -> Response:
    call.require_system("user-group", "read")
    return json_response(group_json(_group(call)))


def create_group(call: Call) -> Response:
    """`group_type` 1 with `ldap_group_dn` (and an optional display name), or 3 with `group_name`;
    409 when the group exists."""
    call.require_system("user-group", "create")
    body = body_of(call)
    row = add_group(call, body.get("group_type"), body.get("group_name"), body.get("ldap_group_dn"))
    return empty(201, {"Location": f"{PREFIX}/usergroups/{row.id}"})


def update_group(call: Call) -> Response:
    """Renames a group (`group_name`; nothing else changes). An OIDC group's name is the claim
    value its members are matched on, so it cannot be renamed: create another group instead."""
    call.require_system("user-group", "update")
    row = _group(call)
    name = body_of(call).get("group_name")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("group_name is required")
    if row.group_type == OIDC_GROUP and name.strip() != row.name:
        raise bad_request("an OIDC group is named by the provider's groups claim and cannot be renamed; "
                          "create a group with the new name instead")
    call.settle(call.services.admin.rename_group(row.group_type, row.key, name, call.context))
    return empty()


def delete_group(call: Call) -> Response:
    """Deletes a group and, first, its project memberships."""
    call.require_system("user-group", "delete")
    row = _group(call)
    projects = sorted({m.project for m in call.services.access.group_memberships(row.key)})
    call.settle(call.services.admin.delete_group(row.group_type, row.key, call.context, projects))
    return empty()


def add_group(call: Call, group_type: object, name: object, ldap_dn: object) -> GroupRow:
    """Creates a group (checked as Harbor does) and answers its row."""
    group_type, name, ldap_dn = check_group(group_type, name, ldap_dn)
    if group_type == LDAP_GROUP:
        check_dn(ldap_dn)
    key, position = call.services.admin.create_group(group_type, name, ldap_dn, call.context)
    call.settle(position)
    return call.services.access.group(group_type, key)


def check_dn(dn: str) -> None:
    # ldap3 is imported when a DN is first checked, not by every API process at start
    from ldap3.core.exceptions import LDAPInvalidDnError
    from ldap3.utils.dn import parse_dn

    try:
        parse_dn(dn, strip=True)  # "CN=Devs, OU=Groups" as Active Directory writes DNs
    except LDAPInvalidDnError as error:
        raise bad_request(f"ldap_group_dn is not a distinguished name: {error}") from None


def _group(call: Call) -> GroupRow:
    value = call.param("group_id")
    row = by_id(call.services.access.group_by_id, value)
    if row is None:
        raise not_found(f"user group {value} not found")
    return row
