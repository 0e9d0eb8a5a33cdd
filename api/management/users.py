"""Local user accounts (/api/v1/users…). Password hashes never leave the server."""

from __future__ import annotations

from starlette.responses import Response

from api.authn import client_address
from api.management.common import Call, field, json_response, page_params, paged
from api.management.problems import Problem
from domain.administration import check_local_accounts
from projections.access import UserRow


def user_json(row: UserRow) -> dict:
    return {"username": row.username, "email": row.email, "system_admin": row.system_admin,
            "auth_source": row.auth_source, "realname": row.realname,
            "created_at": row.created_at, "updated_at": row.updated_at}


def list_users(call: Call) -> Response:
    """All users (system administrators)."""
    call.require_system("user", "list")
    page, size = page_params(call.request)
    rows, total = call.services.access.users((page - 1) * size, size,
                                              call.request.query_params.get("username"))
    return paged(call.request, [user_json(r) for r in rows], total, page, size)


def create_user(call: Call) -> Response:
    """Create a local user (only in `db_auth` mode)."""
    call.require_system("user", "create")
    check_local_accounts(call.services.configuration().auth_mode)
    username, password = field(call.body, "username", str), field(call.body, "password", str)
    email = field(call.body, "email", str, False, "")
    admin = field(call.body, "system_admin", bool, False, False)
    call.settle(call.services.admin.create_user(username, password, email, admin, call.context))
    return json_response(user_json(call.services.access.user(username)), 201,
                         {"Location": f"/api/v1/users/{username}"})


def current_user(call: Call) -> Response:
    """The caller."""
    if call.principal.kind != "user":
        raise Problem(404, "not-found", "robots have no user record")
    return json_response(user_json(call.services.access.user(call.principal.name)))


def get_user(call: Call) -> Response:
    """One user (themselves, or anyone for system administrators)."""
    username = call.param("username")
    if username != call.principal.name:
        call.require_system("user", "read")
    row = call.services.access.user(username)
    if row is None:
        raise Problem(404, "not-found", f"user {username} not found")
    return json_response(user_json(row))


def change_password(call: Call) -> Response:
    """Change a password: one's own (with `old_password`), or anyone's as administrator."""
    username = call.param("username")
    password = field(call.body, "password", str)
    if username == call.principal.name and not call.principal.system_admin:
        old = field(call.body, "old_password", str)
        call.services.authenticator.login(username, old, client_address(call.request))
    elif username != call.principal.name:
        call.require_system("user", "update")
    call.settle(call.services.admin.change_password(username, password, call.context))
    return Response(status_code=204)


def set_admin(call: Call) -> Response:
    """Grant or revoke system administration."""
    call.require_system("user", "update")
    username, admin = call.param("username"), field(call.body, "system_admin", bool)
    call.settle(call.services.admin.set_admin(username, admin, call.context))
    return json_response(user_json(call.services.access.user(username)))


def delete_user(call: Call) -> Response:
    """Delete a user; their memberships are removed first."""
    call.require_system("user", "delete")
    username, services = call.param("username"), call.services
    if services.access.user(username) is None:
        raise Problem(404, "not-found", f"user {username} not found")
    for member in services.access.memberships_of(username):
        services.admin.remove_member(member.project, username, member.repository, call.context)
    call.settle(services.admin.delete_user(username, call.context))
    return Response(status_code=204)
