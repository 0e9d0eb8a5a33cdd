"""POST /service/token: the OAuth2 password and refresh-token grants of the Docker token
specification (containerd's way of asking), with RFC 6749 error answers."""

from __future__ import annotations

from tests.api.test_robots import create_robot
from tests.api.test_tokens import setup_guest
from tests.support.auth import PASSWORD, bearer, create_user, token_access

PULL = "repository:team/app:pull"


def oauth(client, **fields):
    """A real form post (application/x-www-form-urlencoded), as containerd sends it."""
    form = {"service": "portlog", "client_id": "containerd-client", **fields}
    return client.post("/service/token", data=form, auth=None)


def test_password_grant_issues_a_scoped_access_token(client):
    setup_guest(client)
    response = oauth(client, grant_type="password", username="guest", password=PASSWORD,
                     scope="repository:team/app:pull,push")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["scope"] == PULL and body["expires_in"] >= 60 and body["issued_at"]
    assert "refresh_token" not in body  # only with access_type=offline
    assert token_access(body["access_token"]) == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
    assert client.get("/v2/team/app/manifests/1", headers=bearer(body["access_token"]), auth=None).status_code == 200


def test_offline_access_gives_a_refresh_token_that_gets_new_access_tokens(client):
    setup_guest(client)
    first = oauth(client, grant_type="password", username="guest", password=PASSWORD, access_type="offline")
    assert first.status_code == 200, first.text
    assert first.json()["scope"] == ""
    refresh = first.json()["refresh_token"]
    again = oauth(client, grant_type="refresh_token", refresh_token=refresh, scope=PULL)
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] == refresh  # the same one, never a new one
    assert again.json()["scope"] == PULL
    access = again.json()["access_token"]
    assert client.get("/v2/team/app/manifests/1", headers=bearer(access), auth=None).status_code == 200


def test_a_refresh_token_is_never_an_access_token(client):
    setup_guest(client)
    refresh = oauth(client, grant_type="password", username="guest", password=PASSWORD,
                    access_type="offline").json()["refresh_token"]
    assert client.get("/v2/team/app/manifests/1", headers=bearer(refresh), auth=None).status_code == 401
    assert client.get("/api/v1/users/guest", headers=bearer(refresh), auth=None).status_code == 401
    client.cookies.set("sid", refresh)
    assert client.get("/api/v2.0/users/current", auth=None).status_code == 401


def test_refresh_tokens_end_with_a_password_change_or_the_account(client):
    setup_guest(client)
    create_user(client, "other")

    def refresh_token(username, password=PASSWORD):
        return oauth(client, grant_type="password", username=username, password=password,
                     access_type="offline").json()["refresh_token"]

    changed, deleted, kept = refresh_token("guest"), refresh_token("other"), refresh_token("admin", "Portlog-Test-1")
    assert client.put("/api/v1/users/guest/password", json={"password": "Changed-Pass-2"}).status_code == 204
    assert client.delete("/api/v1/users/other").status_code == 204
    create_user(client, "other")  # the same name again is another account
    for ended in (changed, deleted):
        refused = oauth(client, grant_type="refresh_token", refresh_token=ended, scope=PULL)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    assert oauth(client, grant_type="refresh_token", refresh_token=kept).status_code == 200


def test_robot_refresh_tokens_end_when_disabled_or_its_secret_is_refreshed(client):
    robot = create_robot(client)
    name = robot["name"]

    def refresh_token():
        response = oauth(client, grant_type="password", username=name, password=robot["secret"],
                         access_type="offline")
        assert response.status_code == 200, response.text
        return response.json()["refresh_token"]

    disabled = refresh_token()
    client.patch(f"/api/v1/robots/{name}", json={"disabled": True})
    assert oauth(client, grant_type="refresh_token", refresh_token=disabled).json()["error"] == "invalid_grant"
    client.patch(f"/api/v1/robots/{name}", json={"disabled": False})
    assert oauth(client, grant_type="refresh_token", refresh_token=disabled).status_code == 200
    robot["secret"] = client.post(f"/api/v1/robots/{name}/secret").json()["secret"]
    assert oauth(client, grant_type="refresh_token", refresh_token=disabled).json()["error"] == "invalid_grant"
    assert oauth(client, grant_type="refresh_token", refresh_token=refresh_token()).status_code == 200


def test_errors_are_oauth2_errors(client):
    cases = [
        ({"grant_type": "password", "username": "admin", "password": "wrong"}, 400, "invalid_grant"),
        ({"grant_type": "refresh_token", "refresh_token": "not-a-token"}, 400, "invalid_grant"),
        ({"grant_type": "authorization_code", "code": "x"}, 400, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "admin"}, 400, "invalid_request"),
        ({"grant_type": "refresh_token"}, 400, "invalid_request"),
        ({}, 400, "invalid_request"),
    ]
    for fields, status, error in cases:
        response = oauth(client, **fields)
        assert response.status_code == status, (fields, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == error and response.json()["error_description"]
    without_service = client.post("/service/token", auth=None, data={
        "grant_type": "password", "username": "admin", "password": "Portlog-Test-1", "client_id": "x"})
    assert without_service.status_code == 400 and without_service.json()["error"] == "invalid_request"
    as_json = client.post("/service/token", auth=None, json={"grant_type": "password"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    huge = client.post("/service/token", auth=None, content=b"a=" + b"x" * (64 * 1024),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413 and huge.json()["error"] == "invalid_request"
    declared = client.post("/service/token", auth=None, content=b"a=b",
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "Content-Length": str(64 * 1024 * 1024)})
    assert declared.status_code == 413 and declared.json()["error"] == "invalid_request"


def test_an_access_token_is_no_refresh_token(client):
    access = oauth(client, grant_type="password", username="admin", password="Portlog-Test-1").json()["access_token"]
    refused = oauth(client, grant_type="refresh_token", refresh_token=access)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_password_grant_locks_out_like_basic(client):
    create_user(client, "victim")
    for _ in range(5):
        assert oauth(client, grant_type="password", username="victim", password="wrong").status_code == 400
    locked = oauth(client, grant_type="password", username="victim", password=PASSWORD)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert locked.json()["error"]


# docker login asks GET /service/token?offline_token=true&client_id=docker with Basic
# credentials, keeps the answer's refresh_token as its identity token and then uses the
# refresh grant (the Docker token specification's offline_token).

def docker_login(client, auth, **params):
    query = {"service": "portlog", "client_id": "docker", "offline_token": "true", **params}
    return client.get("/service/token", params=query, auth=auth)


def test_docker_login_gets_a_refresh_token_that_the_refresh_grant_takes(client):
    setup_guest(client)
    login = docker_login(client, ("guest", PASSWORD))
    assert login.status_code == 200, login.text
    refresh = login.json()["refresh_token"]
    assert client.get("/v2/team/app/manifests/1", headers=bearer(refresh), auth=None).status_code == 401
    exchanged = oauth(client, grant_type="refresh_token", refresh_token=refresh, client_id="docker", scope=PULL)
    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.json()["scope"] == PULL and exchanged.json()["refresh_token"] == refresh
    access = exchanged.json()["access_token"]
    assert client.get("/v2/team/app/manifests/1", headers=bearer(access), auth=None).status_code == 200


def test_a_robots_docker_login_gets_a_refresh_token_too(client):
    robot = create_robot(client, name="builder")
    login = docker_login(client, (robot["name"], robot["secret"]))
    assert login.status_code == 200 and login.json()["refresh_token"], login.text


def test_no_refresh_token_for_anonymous_callers_or_without_offline_token(client):
    setup_guest(client)
    anonymous = docker_login(client, None, scope=PULL)
    assert anonymous.status_code == 200 and "refresh_token" not in anonymous.json()
    for params in ({"offline_token": "false"}, {"offline_token": ""}, {"scope": PULL}):
        query = {"service": "portlog", "client_id": "docker", **params}
        answer = client.get("/service/token", params=query, auth=("guest", PASSWORD))
        assert answer.status_code == 200 and "refresh_token" not in answer.json(), params
