"""Users (/api/v2.0/users…), addressed by numeric id: local ones, and those a directory or an
OpenID Connect provider brought (`auth_source`: db, ldap or oidc, Portlog's own field). Local users
are created only in `db_auth` mode, as in Harbor. Comments are accepted and not stored. Password
hashes and CLI secrets never leave the server here."""

from __future__ import annotations

from starlette.responses import Response

from api.authn import client_address
from api.harbor.common import (
    PREFIX,
    bad_request,
    body_of,
    empty,
    filter_items,
    not_found,
    paged_list,
    parse_q,
    sort_items,
)
from api.management.common import Call, field, json_response
from api.request_input import as_id, by_id
from domain.administration import check_local_accounts
from domain.errors import AuthenticationError
from domain.identity import OIDC
from domain.permissions import project_permissions, system_permissions
from projections.access import UserRow

Q_FIELDS = {"username": "username", "email": "email", "userid": "user_id", "authsource": "auth_source"}
SORTABLE = {"username", "email", "user_id", "creation_time", "update_time"}


def user_json(row: UserRow, admin_role_in_auth: bool = False) -> dict:
    """`admin_role_in_auth`: an administrator through the configured admin group (Harbor tells
    only the user themself)."""
    return {"user_id": row.id, "username": row.username, "email": row.email, "realname": row.realname,
            "comment": "", "sysadmin_flag": row.system_admin, "admin_role_in_auth": admin_role_in_auth,
            "auth_source": row.auth_source, "creation_time": row.created_at, "update_time": row.updated_at}


def list_users(call: Call) -> Response:
    """All users (system administrators); `q` on username, email, user_id; `sort`."""
    call.require_system("user", "list")
    params = call.request.query_params
    items = filter_items(_all_users(call), parse_q(params.get("q")), Q_FIELDS)
    return paged_list(call.request, sort_items(items, params.get("sort"), SORTABLE))


def search_users(call: Call) -> Response:
    """Users whose name contains `username`: ids and names only, for any signed-in user."""
    needle = call.request.query_params.get("username")
    if not needle:
        raise bad_request("username is required")
    items = [{"user_id": u["user_id"], "username": u["username"]}
             for u in _all_users(call) if needle in u["username"]]
    return paged_list(call.request, items)


def current_user(call: Call) -> Response:
    """The caller (robots have no user record); an OIDC account's CLI secret too, as Harbor shows
    it to its owner (and to no one else)."""
    row = call.services.access.user(call.principal.name) if call.principal.kind == "user" else None
    if row is None:
        raise not_found("robots have no user record")
    body = user_json(row, call.principal.system_admin and not row.system_admin)
    if row.auth_source == OIDC:
        body["oidc_user_meta"] = {"user_id": row.id, "subiss": row.external_id,
                                  "secret": call.services.secret_box.open(row.cli_secret) if row.cli_secret else ""}
    return json_response(body)


def current_permissions(call: Call) -> Response:
    """What the caller may do: `scope=/project/{id}` (a project's resources) or `/` (the
    system's); `relative=true` names resources without the scope, as Harbor's UI asks."""
    scope = call.request.query_params.get("scope", "/")
    relative = call.request.query_params.get("relative", "").lower() == "true"
    if scope.rstrip("/") == "":
        held, prefix = system_permissions(call.principal), "/"
    else:
        head, _, ident = scope.strip("/").partition("/")
        row = None
        if head == "project" and ident:
            access = call.services.access
            row = access.project(ident) if as_id(ident) is None else access.project_by_id(as_id(ident))
        if row is None:
            raise not_found(f"no project scope {scope}")
        call.require_project(row.name, "project", "read")
        held, prefix = project_permissions(call.principal, row.name, row.public), f"/project/{row.id}/"
    return json_response([{"resource": resource if relative else prefix + resource, "action": action}
                          for resource, action in sorted(held)])


def get_user(call: Call) -> Response:
    """One user: oneself, or anyone for system administrators."""
    row = _user(call)
    if row.username != call.principal.name:
        call.require_system("user", "read")
    return json_response(user_json(row))


def create_user(call: Call) -> Response:
    """Create a local user (`sysadmin_flag` may be given too); only in `db_auth` mode."""
    call.require_system("user", "create")
    check_local_accounts(call.services.configuration().auth_mode)
    body = body_of(call)
    username, password = field(body, "username", str), field(body, "password", str)
    email = field(body, "email", str, False, "")
    admin = field(body, "sysadmin_flag", bool, False, False)
    call.settle(call.services.admin.create_user(username, password, email, admin, call.context))
    row = call.services.access.user(username)
    return empty(201, {"Location": f"{PREFIX}/users/{row.id}"})


def update_user(call: Call) -> Response:
    """The profile: Portlog cannot change an email yet; real name and comment are not kept."""
    row = _user(call)
    if row.username != call.principal.name:
        call.require_system("user", "update")
    email = field(body_of(call), "email", str, False)
    if email is not None and email != row.email:
        raise bad_request("changing a user's email is not supported")
    return empty()


def set_password(call: Call) -> Response:
    """`new_password`; `old_password` too when changing one's own as a non-administrator."""
    row = _user(call)
    body = body_of(call)
    password = field(body, "new_password", str)
    if row.username == call.principal.name and not call.principal.system_admin:
        try:
            call.services.authenticator.login(row.username, field(body, "old_password", str),
                                              client_address(call.request))
        except AuthenticationError:
            raise bad_request("the old password is not correct") from None
    elif row.username != call.principal.name:
        call.require_system("user", "update")
    call.settle(call.services.admin.change_password(row.username, password, call.context))
    return empty()


def set_cli_secret(call: Call) -> Response:
    """An OIDC account's CLI secret (`secret`, with a password's strength): oneself, or anyone for
    system administrators."""
    row = _user(call)
    if row.username != call.principal.name:
        call.require_system("user", "update")
    if row.auth_source != OIDC:
        raise bad_request("only OpenID Connect accounts have a CLI secret")
    secret = field(body_of(call), "secret", str)
    _, position = call.services.admin.set_cli_secret(row.username, secret, call.context)
    call.settle(position)
    return empty()


def set_sysadmin(call: Call) -> Response:
    """Grant or revoke system administration (`sysadmin_flag`)."""
    call.require_system("user", "update")
    row = _user(call)
    admin = field(body_of(call), "sysadmin_flag", bool)
    call.settle(call.services.admin.set_admin(row.username, admin, call.context))
    return empty()


def delete_user(call: Call) -> Response:
    """Delete a user; their memberships are removed first, as in the management API."""
    call.require_system("user", "delete")
    row, services = _user(call), call.services
    for member in services.access.memberships_of(row.username):
        services.admin.remove_member(member.project, row.username, member.repository, call.context)
    call.settle(services.admin.delete_user(row.username, call.context))
    return empty()


def _user(call: Call) -> UserRow:
    value = call.param("user_id")
    row = by_id(call.services.access.user_by_id, value)
    if row is None:
        if not call.principal.system_admin:
            call.require_system("user", "read")
        raise not_found(f"user {value} not found")
    return row


def _all_users(call: Call) -> list[dict]:
    rows, _ = call.services.access.users(0, 1 << 31)
    return [user_json(row) for row in rows]
