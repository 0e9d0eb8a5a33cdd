"""Users as Harbor and Portlog's own API show them: where each account comes from (`auth_source`),
its real name, and local accounts created only while Portlog keeps the passwords (`db_auth`)."""

from __future__ import annotations

from domain.context import RequestContext
from domain.identity import LDAP, OIDC, ExternalIdentity
from tests.support.harbor import harbor_errors, id_of

SETUP = RequestContext("admin", "test-setup")
NEW_USER = {"username": "dev", "password": "Passw0rd-1", "email": "dev@example.org"}


def test_users_show_their_auth_source_and_real_name(client, services):
    services.admin.onboard_user(ExternalIdentity("lena", LDAP, "uid=lena,ou=people,dc=example,dc=org",
                                                 email="lena@example.org", realname="Lena Lind"), SETUP)
    services.admin.onboard_user(ExternalIdentity("olivia", OIDC, "https://idp.example|42"), SETUP)
    services.projections.catch_up()
    created = client.post("/api/v2.0/users", json=NEW_USER)
    assert created.status_code == 201, created.text
    users = {u["username"]: u for u in client.get("/api/v2.0/users").json()}
    assert {name: u["auth_source"] for name, u in users.items()} == {
        "admin": "db", "dev": "db", "lena": "ldap", "olivia": "oidc"}
    assert users["lena"]["realname"] == "Lena Lind" and users["lena"]["email"] == "lena@example.org"
    assert client.get(f"/api/v2.0/users/{id_of(created.headers['Location'])}").json()["auth_source"] == "db"
    assert [u["username"] for u in client.get("/api/v2.0/users", params={"q": "auth_source=ldap"}).json()] == ["lena"]
    v1 = {u["username"]: u for u in client.get("/api/v1/users").json()}
    assert (v1["lena"]["auth_source"], v1["lena"]["realname"]) == ("ldap", "Lena Lind")
    for body in (client.get("/api/v2.0/users").text, client.get("/api/v1/users").text):
        assert "password" not in body and "cli_secret" not in body and "external_id" not in body


def test_local_users_are_created_only_in_db_auth_mode(client):
    for mode, origin in (("ldap_auth", "the LDAP directory"), ("oidc_auth", "the OpenID Connect provider")):
        assert client.put("/api/v2.0/configurations", json={"auth_mode": mode}).status_code == 200
        refused = client.post("/api/v2.0/users", json=NEW_USER)
        assert refused.status_code == 403
        assert harbor_errors(refused)[0] == ("FORBIDDEN", f"users cannot be created while auth_mode is {mode}: "
                                                          f"accounts come from {origin} at their first login")
        v1 = client.post("/api/v1/users", json={"username": "dev", "password": "Passw0rd-1"})
        assert v1.status_code == 403 and "auth_mode" in v1.json()["detail"]
    assert [u["username"] for u in client.get("/api/v2.0/users").json()] == ["admin"]
    assert client.put("/api/v2.0/configurations", json={"auth_mode": "db_auth"}).status_code == 200
    assert client.post("/api/v2.0/users", json=NEW_USER).status_code == 201


def test_admin_role_in_auth_tells_a_user_their_admin_rights_come_from_a_group(client, services):
    assert client.put("/api/v2.0/configurations", json={"oidc_admin_group": "registry-admins"}).status_code == 200
    services.admin.onboard_user(ExternalIdentity("olivia", OIDC, "https://idp.example|42"), SETUP)
    services.admin.observe_groups("olivia", ["registry-admins"], SETUP)
    services.admin.set_cli_secret("olivia", "Olivia-Cli-Secret-1", SETUP)
    services.projections.catch_up()
    me = client.get("/api/v2.0/users/current", auth=("olivia", "Olivia-Cli-Secret-1")).json()
    assert (me["sysadmin_flag"], me["admin_role_in_auth"], me["auth_source"]) == (False, True, "oidc")
    assert client.get("/api/v2.0/users/current").json()["admin_role_in_auth"] is False


def test_a_directory_accounts_password_is_not_portlogs_to_change(client, services):
    services.admin.onboard_user(ExternalIdentity("lena", LDAP, "uid=lena,ou=people,dc=example,dc=org"), SETUP)
    services.projections.catch_up()
    lena_id = services.access.user("lena").id
    refused = client.put(f"/api/v2.0/users/{lena_id}/password", json={"new_password": "Lena-Pass-12"})
    assert refused.status_code == 403
    assert "lena signs in through the LDAP directory" in harbor_errors(refused)[0][1]
    assert services.access.user("lena").password_hash == ""
