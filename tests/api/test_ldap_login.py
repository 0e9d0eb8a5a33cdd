"""LDAP login against a real OpenLDAP (infra/services/slapd.py) everywhere Portlog takes a
password — /service/token, Basic on /v2/ and the management API, the UI's /c/login — with
onboarding and group observations in the log, effective permissions through LDAP groups, the
directory down (503 for its users, the local admin still in), and /api/v2.0/ldap/*."""

from __future__ import annotations

from dataclasses import replace

import pytest

from domain.context import RequestContext
from domain.identity import LDAP_GROUP
from domain.permissions import Role
from infra.services.slapd import GROUPS_DN, PEOPLE_DN, group_dn
from tests.support.auth import token, token_access
from tests.support.oci import push_image
from tests.support.server import ADMIN_PASSWORD

ADMIN = ("admin", ADMIN_PASSWORD)
KEY = "a-test-secret-key-of-at-least-32-characters"

pytestmark = pytest.mark.both_databases


@pytest.fixture
def settings(settings):
    return replace(settings, secret_key=KEY)  # the search password is sealed: scale-out nodes share a key


def ldap_settings(slapd, **overrides) -> dict:
    return {"auth_mode": "ldap_auth", "ldap_url": slapd.url, "ldap_start_tls": True,
            "ldap_ca_file": str(slapd.ca_file), "ldap_base_dn": slapd.base_dn,
            "ldap_search_dn": slapd.admin_dn, "ldap_search_password": slapd.admin_password,
            "ldap_filter": "(objectClass=inetOrgPerson)", "ldap_uid": "uid", "ldap_scope": 2, "ldap_timeout": 2,
            "ldap_group_base_dn": GROUPS_DN, "ldap_group_search_filter": "(objectClass=groupOfNames)",
            **overrides}


@pytest.fixture
def ldap(client, slapd):
    """The client (as the admin) with Portlog in ldap_auth mode against the test directory."""
    response = client.put("/api/v2.0/configurations", json=ldap_settings(slapd))
    assert response.status_code == 200, response.text
    return client


def audit(client, **params) -> list[dict]:
    response = client.get("/api/v1/audit-logs", params={"limit": 1000, **params}, auth=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def test_token_login_onboards_the_user_once(ldap, slapd, services):
    alice = ("alice", slapd.password("alice"))

    assert token(ldap, [], alice)
    assert token(ldap, [], alice)

    created = audit(ldap, operation="user.created")
    onboarded = [e for e in created if e["resource"] == "alice"]
    assert len(onboarded) == 1
    assert onboarded[0]["details"].get("auth_source") == "ldap"
    assert onboarded[0]["details"].get("external_id") == slapd.user_dn("alice")
    user = services.access.user("alice")
    assert (user.auth_source, user.external_id) == ("ldap", slapd.user_dn("alice"))
    assert (user.email, user.realname, user.password_hash) == ("alice@example.org", "Alice Liddell", "")


def test_basic_on_v2_and_the_management_api_and_the_ui_login(ldap, slapd):
    bob = ("bob", slapd.password("bob"))

    assert ldap.get("/v2/", auth=bob).status_code == 200
    current = ldap.get("/api/v2.0/users/current", auth=bob)
    assert current.status_code == 200 and current.json()["username"] == "bob"
    ui = ldap.post("/c/login", data={"principal": "bob", "password": bob[1]}, auth=None)
    assert ui.status_code == 200 and ui.json()["username"] == "bob"


def test_wrong_passwords_injection_and_empty_passwords_are_refused(ldap, slapd):
    for username, password in (("alice", "wrong"), ("*)(uid=*", slapd.password("alice")), ("*", "x"),
                               ("alice", ""), ("nobody", "whatever")):
        assert ldap.get("/service/token", params={"service": "portlog"}, auth=(username, password)).status_code == 401
        assert ldap.get("/v2/", auth=(username, password)).status_code == 401
        ui = ldap.post("/c/login", data={"principal": username, "password": password}, auth=None)
        assert ui.status_code in (400, 401), (username, ui.status_code)
    assert not [e for e in audit(ldap, operation="user.created") if e["resource"] != "admin"]


def test_a_changed_directory_password_is_the_one_that_works(ldap, slapd):
    assert ldap.get("/v2/", auth=("erin", "erin-pass-1")).status_code == 200
    slapd.set_password("erin", "erin-pass-2")

    assert ldap.get("/v2/", auth=("erin", "erin-pass-1")).status_code == 401
    assert ldap.get("/v2/", auth=("erin", "erin-pass-2")).status_code == 200


def test_groups_are_observed_at_login_and_grant_their_role(ldap, slapd, services):
    dave = ("dave", slapd.password("dave"))
    add_group_member(services, "team", "devs", Role.DEVELOPER)

    access = token_access(token(ldap, ["repository:team/app:pull,push"], dave))
    assert sorted(access[0]["actions"]) == ["pull", "push"]
    ldap.auth = dave
    push_image(ldap, "team/app", "1.0")

    slapd.remove_member("devs", "dave")
    access = token_access(token(ldap, ["repository:team/app:pull,push"], dave))
    assert access == [] or access[0]["actions"] == []
    observed = [e for e in audit(ldap, operation="user.groups_observed") if e["resource"] == "dave"]
    assert [e["details"]["groups"] for e in observed] == [[group_dn("devs").lower()], []]


def test_the_admin_group_makes_system_administrators(client, slapd):
    response = client.put("/api/v2.0/configurations",
                          json=ldap_settings(slapd, ldap_group_admin_dn=group_dn("admins")))
    assert response.status_code == 200, response.text

    alice, bob = ("alice", slapd.password("alice")), ("bob", slapd.password("bob"))

    assert client.get("/api/v2.0/configurations", auth=alice).status_code == 200
    assert client.get("/api/v2.0/configurations", auth=bob).status_code == 403
    slapd.add_member("admins", "bob")
    assert client.get("/api/v2.0/configurations", auth=bob).status_code == 200


def test_the_directory_down_is_503_for_its_users_while_the_admin_logs_in(ldap, slapd):
    alice = ("alice", slapd.password("alice"))
    assert ldap.get("/v2/", auth=alice).status_code == 200
    slapd.stop()

    by_token = ldap.get("/service/token", params={"service": "portlog"}, auth=alice)
    assert by_token.status_code == 503
    v2 = ldap.get("/v2/", auth=alice)
    assert v2.status_code == 503 and v2.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert ldap.get("/api/v2.0/users/current", auth=alice).status_code == 503
    assert ldap.post("/c/login", data={"principal": "alice", "password": alice[1]}, auth=None).status_code == 503
    assert ldap.get("/v2/", auth=ADMIN).status_code == 200
    assert ldap.post("/c/login", data={"principal": "admin", "password": ADMIN_PASSWORD}, auth=None).status_code == 200
    assert slapd.admin_password not in by_token.text


def test_ldap_ping(ldap, slapd):
    saved = ldap.post("/api/v2.0/ldap/ping", json={}).json()
    assert saved == {"success": True, "message": "connected to the LDAP server"}
    ldaps = ldap.post("/api/v2.0/ldap/ping", json={"ldap_url": slapd.ldaps_url}).json()
    assert ldaps["success"] is True
    wrong = ldap.post("/api/v2.0/ldap/ping", json={"ldap_search_password": "wrong"}).json()
    assert wrong["success"] is False and "search account" in wrong["message"]
    other_ca = ldap.post("/api/v2.0/ldap/ping", json={"ldap_ca_file": str(slapd.untrusted_ca_file)}).json()
    assert other_ca["success"] is False and "certificate" in other_ca["message"]
    assert slapd.admin_password not in str(wrong)
    harbor_timeout = ldap.post("/api/v2.0/ldap/ping", json={"ldap_connection_timeout": 1, "ldap_url": "ldap://127.0.0.1:1"})
    assert harbor_timeout.json()["success"] is False and "cannot be reached" in harbor_timeout.json()["message"]
    guarded = ldap.post("/api/v2.0/ldap/ping", json={"ldap_url": "ldap://169.254.169.254"}).json()
    assert guarded["success"] is False and "link-local" in guarded["message"]
    assert ldap.post("/api/v2.0/ldap/ping", json={"ldap_scope": "deep"}).status_code == 400
    assert ldap.post("/api/v2.0/ldap/ping", json=["ldap_url"]).status_code == 400


def test_ldap_user_and_group_search_and_import(ldap, slapd):
    users = ldap.get("/api/v2.0/ldap/users/search", params={"username": "dave"}).json()
    assert users == [{"username": "dave", "realname": "Dave Bowman", "email": "dave@example.org",
                      "ldap_dn": slapd.user_dn("dave")}]
    assert ldap.get("/api/v2.0/ldap/users/search", params={"username": "*)(uid=*"}).json() == []
    groups = ldap.get("/api/v2.0/ldap/groups/search", params={"groupname": "ops"}).json()
    assert groups == [{"group_name": "ops", "ldap_group_dn": group_dn("ops"), "group_type": 1}]
    by_dn = ldap.get("/api/v2.0/ldap/groups/search", params={"groupdn": group_dn("devs")}).json()
    assert [g["group_name"] for g in by_dn] == ["devs"]

    imported = ldap.post("/api/v2.0/ldap/users/import", json={"ldap_uid_list": ["carol", "ghost"]})
    assert imported.status_code == 404
    assert imported.json() == [{"uid": "ghost", "error": "not found in the LDAP directory"}]
    names = [u["username"] for u in ldap.get("/api/v2.0/users").json()]
    assert "carol" in names and "ghost" not in names
    assert ldap.post("/api/v2.0/ldap/users/import", json={"ldap_uid_list": ["carol"]}).status_code == 200
    assert ldap.post("/api/v2.0/ldap/users/import", json={"ldap_uid_list": "carol"}).status_code == 400
    with slapd.admin_connection() as directory_admin:
        assert directory_admin.add(f"uid=two words,{PEOPLE_DN}", ["inetOrgPerson"],
                                   {"uid": "two words", "cn": "Two", "sn": "Words"}), directory_admin.result
    spaced = ldap.post("/api/v2.0/ldap/users/import", json={"ldap_uid_list": ["two words", "bob"]})
    assert spaced.status_code == 404 and [f["uid"] for f in spaced.json()] == ["two words"]
    assert "bob" in [u["username"] for u in ldap.get("/api/v2.0/users").json()]


def test_ldap_endpoints_are_for_system_administrators(ldap, slapd):
    bob = ("bob", slapd.password("bob"))
    for method, path in (("POST", "/api/v2.0/ldap/ping"), ("GET", "/api/v2.0/ldap/users/search"),
                         ("POST", "/api/v2.0/ldap/users/import"), ("GET", "/api/v2.0/ldap/groups/search")):
        assert ldap.request(method, path, auth=bob, json={} if method == "POST" else None).status_code == 403
        assert ldap.request(method, path, auth=None).status_code == 401


def test_the_directory_down_is_503_on_the_search_endpoints(ldap, slapd):
    slapd.stop()

    response = ldap.get("/api/v2.0/ldap/users/search", params={"username": "alice"})

    assert response.status_code == 503
    assert ldap.post("/api/v2.0/ldap/ping", json={}).json()["success"] is False


def add_group_member(services, project: str, group: str, role: Role) -> None:
    ctx = RequestContext("admin", "test-setup")
    key, _ = services.admin.create_group(LDAP_GROUP, group, group_dn(group), ctx)
    services.admin.set_group_member(project, LDAP_GROUP, key, role, ctx)
    services.projections.catch_up()


def test_a_directory_entry_named_like_a_local_account_does_not_sign_in_as_it(ldap, slapd):
    """A uid=admin entry in the directory: `ADMIN` (no account of that name, so the directory is
    asked) matches it, but the directory does not vouch for the local admin."""
    with slapd.admin_connection() as directory_admin:
        added = directory_admin.add(f"uid=admin,{PEOPLE_DN}", ["inetOrgPerson"], {
            "uid": "admin", "cn": "Mallory", "sn": "Mallory", "userPassword": "mallory-pass-1"})
        assert added, directory_admin.result

    for typed in ("ADMIN", "Admin"):
        assert ldap.get("/v2/", auth=(typed, "mallory-pass-1")).status_code == 401
        by_token = ldap.get("/service/token", params={"service": "portlog"}, auth=(typed, "mallory-pass-1"))
        assert by_token.status_code == 401
    assert ldap.get("/v2/", auth=("admin", "mallory-pass-1")).status_code == 401
    assert ldap.get("/v2/", auth=ADMIN).status_code == 200


def test_a_uid_that_is_no_valid_username_is_a_refused_login_not_an_error(ldap, slapd):
    with slapd.admin_connection() as directory_admin:
        assert directory_admin.add(f"uid=two words,{PEOPLE_DN}", ["inetOrgPerson"], {
            "uid": "two words", "cn": "Two", "sn": "Words", "userPassword": "two-pass-1"}), directory_admin.result

    by_token = ldap.get("/service/token", params={"service": "portlog"}, auth=("two words", "two-pass-1"))
    v2 = ldap.get("/v2/", auth=("two words", "two-pass-1"))

    assert by_token.status_code == 401 and "cannot sign in" in by_token.text
    assert v2.status_code == 401


def test_an_ldap_group_is_added_only_when_the_directory_holds_it(ldap, slapd):
    added = ldap.post("/api/v2.0/usergroups", json={"group_type": 1, "ldap_group_dn": group_dn("ops")})
    missing = ldap.post("/api/v2.0/usergroups", json={"group_type": 1, "ldap_group_dn": group_dn("nothing")})
    a_user = ldap.post("/api/v2.0/usergroups", json={"group_type": 1, "ldap_group_dn": slapd.user_dn("bob")})
    member = ldap.post("/api/v2.0/projects/team/members", json={
        "role_id": 2, "member_group": {"group_type": 1, "ldap_group_dn": group_dn("nothing")}})

    assert added.status_code == 201, added.text
    assert missing.status_code == 400 and "not a group in the LDAP directory" in missing.text
    assert a_user.status_code == 400
    assert member.status_code == 400
    slapd.stop()
    down = ldap.post("/api/v2.0/usergroups", json={"group_type": 1, "ldap_group_dn": group_dn("devs")})
    assert down.status_code == 503
