"""Harbor's LDAP endpoints (/api/v2.0/ldap/…), for system administrators: test a connection
(with the settings a form holds before they are saved), search the directory's users and groups,
and import users (onboard them before their first login, so they can be made members)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from api.harbor.common import bad_request, body_of
from api.management.common import Call, json_response
from domain.configuration import KEYS, parse_value
from domain.errors import ConflictError, DirectoryUnavailableError, InvalidInputError
from domain.identity import LDAP, LDAP_GROUP, ExternalIdentity

if TYPE_CHECKING:  # ldap3 is loaded by the first LDAP request, not at start
    from adapters.ldap_directory import DirectoryUser

# Harbor's LdapConf names the timeout differently from the configuration key.
PING_ALIASES = {"ldap_connection_timeout": "ldap_timeout"}


def ping(call: Call) -> Response:
    """Body: any ldap_* keys overriding the saved ones (a search password left out or empty
    keeps the saved one). 200 `{"success", "message"}` either way, as Harbor."""
    call.require_system("ldap", "read")
    body = {} if call.body is None else body_of(call)
    named = {PING_ALIASES.get(key, key): value for key, value in body.items() if value is not None}
    overrides = {key: parse_value(key, value) for key, value in named.items()
                 if key.startswith("ldap_") and key in KEYS}
    if not overrides.get("ldap_search_password"):
        overrides.pop("ldap_search_password", None)
    try:  # the outbound guard's refusal is one of the answers
        call.services.directory_for(call.services.configuration(), overrides).ping()
    except DirectoryUnavailableError as error:
        return json_response({"success": False, "message": error.message})
    return json_response({"success": True, "message": "connected to the LDAP server"})


def search_users(call: Call) -> Response:
    """`username`: the uid to look for (every user of the filter without it)."""
    call.require_system("ldap", "read")
    users = _directory(call).search_users(call.request.query_params.get("username", ""))
    return json_response([_user_json(user) for user in users])


def import_users(call: Call) -> Response:
    """`{"ldap_uid_list": [...]}`: onboards each uid found in the directory (already onboarded
    ones are left as they are). 404 with the uids that could not be imported, and why."""
    call.require_system("ldap", "read")
    call.require_system("user", "create")
    body = body_of(call)
    uids = body.get("ldap_uid_list") if isinstance(body, dict) else None
    if not isinstance(uids, list) or not uids or not all(isinstance(uid, str) and uid for uid in uids):
        raise bad_request("ldap_uid_list must be a non-empty list of uids")
    directory, failed = _directory(call), []
    for uid in dict.fromkeys(uids):
        found = directory.user(uid)
        if found is None:
            failed.append({"uid": uid, "error": "not found in the LDAP directory"})
            continue
        refusal = _onboarded(call, found)
        if refusal:
            failed.append({"uid": uid, "error": refusal})
    if failed:
        return json_response(failed, status=404)
    return Response(status_code=200)


def search_groups(call: Call) -> Response:
    """`groupname` (the group attribute's value) or `groupdn` (one group's DN)."""
    call.require_system("ldap", "read")
    params = call.request.query_params
    groups = _directory(call).search_groups(name=params.get("groupname", ""), dn=params.get("groupdn", ""))
    return json_response([{"group_name": group.name, "ldap_group_dn": group.dn, "group_type": LDAP_GROUP}
                          for group in groups])


def _directory(call: Call):
    services = call.services
    configuration = services.configuration()
    if not configuration.ldap_url:
        raise bad_request("LDAP is not configured (ldap_url)")
    return services.directory_for(configuration)


def _onboarded(call: Call, user: DirectoryUser) -> str | None:
    """None once the user is onboarded; why not otherwise."""
    row = call.services.access.user(user.username)
    if row is not None:
        if row.auth_source == LDAP:
            return None
        return f"a {row.auth_source} user named {user.username} already exists"
    identity = ExternalIdentity(user.username, LDAP, user.dn, user.email, user.realname)
    try:
        call.settle(call.services.admin.onboard_user(identity, call.context))
    except (InvalidInputError, ConflictError) as error:  # a uid Portlog cannot take as a username
        return error.message
    return None


def _user_json(user: DirectoryUser) -> dict:
    return {"username": user.username, "realname": user.realname, "email": user.email, "ldap_dn": user.dn}
