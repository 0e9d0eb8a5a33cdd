"""Web UI sessions (/c/login, /c/log_out): the cookie, CSRF, where a session is (and is not)
accepted, and the caller's permissions (/api/v2.0/users/current/permissions)."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from adapters.passwords import Argon2SecretHasher
from api.app import create_app
from api.sessions import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, SESSION_SECONDS
from config.bootstrap import bootstrap
from tests.api.test_robots import create_robot
from tests.support.oci import push_image
from tests.support.server import ADMIN_PASSWORD


def login(client, username="admin", password=ADMIN_PASSWORD):
    return client.post("/c/login", data={"principal": username, "password": password}, auth=None)


def test_login_sets_an_http_only_session_and_a_readable_csrf_cookie(client):
    response = login(client)
    assert response.status_code == 200
    assert response.json() == {"username": "admin", "sysadmin_flag": True}
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))
    csrf = next(c for c in cookies if c.startswith(f"{CSRF_COOKIE}="))
    assert "HttpOnly" in session and "SameSite=strict" in session
    assert "HttpOnly" not in csrf and "SameSite=strict" in csrf


def test_wrong_password_and_missing_fields_are_refused_without_a_cookie(client):
    wrong = login(client, password="nope")
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    assert "set-cookie" not in wrong.headers
    assert client.post("/c/login", data={"principal": "admin"}, auth=None).status_code == 400


def test_robots_cannot_sign_in_to_the_web_interface(client):
    robot = create_robot(client)
    response = login(client, robot["name"], robot["secret"])
    assert response.status_code == 403


def test_a_session_reads_freely_and_changes_only_with_the_csrf_header(client):
    login(client)
    client.auth = None
    assert client.get("/api/v2.0/users/current").json()["username"] == "admin"
    assert client.post("/api/v2.0/projects", json={"project_name": "forged"}).status_code == 403
    csrf = client.cookies[CSRF_COOKIE]
    created = client.post("/api/v2.0/projects", json={"project_name": "sessioned"}, headers={CSRF_HEADER: csrf})
    assert created.status_code == 201
    assert client.post("/api/v1/projects", json={"name": "other"}, headers={CSRF_HEADER: "guess"}).status_code == 403


def test_a_forged_or_ended_session_is_unauthenticated(client):
    client.auth = None
    client.cookies.set(SESSION_COOKIE, "not-a-token")
    assert client.get("/api/v2.0/users/current").status_code == 401
    client.cookies.clear()
    login(client)
    assert client.get("/c/log_out").status_code == 200
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/v2.0/users/current").status_code == 401


def test_the_session_pulls_through_v2_but_never_pushes(client):
    digest, _ = push_image(client, "team/app", "1.0")
    login(client)
    client.auth = None
    assert client.get(f"/v2/team/app/manifests/{digest}").status_code == 200
    refused = client.put("/v2/team/app/manifests/2.0", content=b"{}",
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                                  CSRF_HEADER: client.cookies[CSRF_COOKIE]})
    assert refused.status_code == 401
    client.cookies.clear()
    assert client.get(f"/v2/team/app/manifests/{digest}").status_code == 401


def test_the_session_token_is_no_bearer_token(client):
    login(client)
    token = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/v2/_catalog", headers=bearer, auth=None).status_code == 401
    assert client.get("/api/v1/users/current", headers=bearer, auth=None).status_code == 401


def test_the_ui_gets_no_basic_challenge_the_browser_would_answer_with_its_own_dialog(client):
    plain = client.get("/api/v2.0/users/current", auth=None)
    from_ui = client.get("/api/v2.0/users/current", auth=None, headers={"X-Requested-With": "XMLHttpRequest"})
    assert plain.status_code == from_ui.status_code == 401
    assert plain.headers["WWW-Authenticate"].startswith("Basic")
    assert "WWW-Authenticate" not in from_ui.headers


def test_current_permissions_in_a_project_and_in_the_system(client):
    project_id = client.get("/api/v2.0/projects/team").json()["project_id"]
    client.post("/api/v1/users", json={"username": "gus", "password": "Guest-Pass-1"})
    client.put("/api/v1/projects/team/members/gus", json={"role": "guest"})

    as_admin = client.get("/api/v2.0/users/current/permissions",
                          params={"scope": f"/project/{project_id}", "relative": "true"}).json()
    assert {"resource": "repository", "action": "delete"} in as_admin
    as_guest = client.get("/api/v2.0/users/current/permissions", auth=("gus", "Guest-Pass-1"),
                          params={"scope": f"/project/{project_id}", "relative": "true"}).json()
    assert {"resource": "repository", "action": "pull"} in as_guest
    assert {"resource": "repository", "action": "delete"} not in as_guest
    absolute = client.get("/api/v2.0/users/current/permissions", auth=("gus", "Guest-Pass-1"),
                          params={"scope": f"/project/{project_id}"}).json()
    assert {"resource": f"/project/{project_id}/repository", "action": "pull"} in absolute
    system = client.get("/api/v2.0/users/current/permissions", auth=("gus", "Guest-Pass-1")).json()
    assert system == [{"resource": "/project", "action": "create"}]


def test_current_permissions_of_a_project_one_may_not_see(client):
    project_id = client.get("/api/v2.0/projects/team").json()["project_id"]
    client.post("/api/v1/users", json={"username": "outsider", "password": "Outsider-Pass-1"})
    response = client.get("/api/v2.0/users/current/permissions", auth=("outsider", "Outsider-Pass-1"),
                          params={"scope": f"/project/{project_id}"})
    assert response.status_code == 403
    unknown = client.get("/api/v2.0/users/current/permissions", params={"scope": "/project/999999"})
    assert unknown.status_code == 404


def test_changing_the_password_ends_the_sessions_opened_with_the_old_one(client):
    client.post("/api/v1/users", json={"username": "paula", "password": "Paula-Pass-1"})
    login(client, "paula", "Paula-Pass-1")
    client.auth = None
    assert client.get("/api/v2.0/users/current").json()["username"] == "paula"
    changed = client.put("/api/v1/users/paula/password", auth=("admin", ADMIN_PASSWORD),
                         json={"password": "Paula-Pass-2"})
    assert changed.status_code in (200, 204), changed.text
    ended = client.get("/api/v2.0/users/current")
    assert ended.status_code == 401 and "password changed" in ended.json()["errors"][0]["message"]
    login(client, "paula", "Paula-Pass-2")
    assert client.get("/api/v2.0/users/current").json()["username"] == "paula"


def test_an_oversized_login_form_is_refused_without_reading_it_all(client):
    response = client.post("/c/login", content=b"principal=admin&password=" + b"x" * 100_000, auth=None,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.both_databases
def test_a_session_cookie_captured_before_logout_is_refused_after_it(client, services, settings):
    digest, _ = push_image(client, "team/app", "1.0")
    login(client)
    client.auth = None
    captured = {SESSION_COOKIE: client.cookies[SESSION_COOKIE], CSRF_COOKIE: client.cookies[CSRF_COOKIE]}
    assert client.get("/api/v2.0/users/current").status_code == 200
    assert client.get("/c/log_out").status_code == 200
    client.cookies.clear()
    for name, value in captured.items():
        client.cookies.set(name, value)
    assert client.get("/api/v2.0/users/current").status_code == 401
    assert client.get("/api/v1/users/current").status_code == 401
    assert client.get(f"/v2/team/app/manifests/{digest}").status_code == 401
    changed = client.post("/api/v2.0/projects", json={"project_name": "late"},
                          headers={CSRF_HEADER: captured[CSRF_COOKIE]})
    assert changed.status_code == 401
    # Every worker and node sees the revocation: another instance on the same database.
    other = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    try:
        with TestClient(create_app(other), cookies=captured) as elsewhere:
            assert elsewhere.get("/api/v2.0/users/current").status_code == 401
    finally:
        other.close()
    revoked = services.tokens.revoked
    assert revoked.purge() == 0  # kept while the session could still be presented
    revoked.clock = lambda: time.time() + SESSION_SECONDS + 60
    assert revoked.purge() == 1


def test_the_session_probe_says_who_is_signed_in_and_null_for_nobody(client):
    client.auth = None
    assert client.get("/c/session").json() is None
    client.cookies.set(SESSION_COOKIE, "not-a-token")
    forged = client.get("/c/session")
    assert forged.status_code == 200 and forged.json() is None
    client.cookies.clear()
    client.post("/api/v1/users", json={"username": "pia", "password": "Pia-Pass-1"}, auth=("admin", ADMIN_PASSWORD))
    login(client, "pia", "Pia-Pass-1")
    probe = client.get("/c/session")
    assert probe.status_code == 200 and probe.headers["cache-control"] == "no-store"
    assert probe.json()["username"] == "pia" and probe.json()["sysadmin_flag"] is False
    client.put("/api/v1/users/pia/password", auth=("admin", ADMIN_PASSWORD), json={"password": "Pia-Pass-2"})
    assert client.get("/c/session").json() is None  # the session ended with the old password
    assert client.get("/api/v2.0/users/current").status_code == 401  # Harbor's answer to nobody stays
