"""The management API: projects, members, users, robots; problem details; no secrets leak."""

from __future__ import annotations

import pytest

from tests.support.auth import PASSWORD, create_user, grant, token, token_access
from tests.support.oci import push_image

pytestmark = pytest.mark.both_databases


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["detail"]
    return body


def test_library_exists_and_is_public(client):
    assert client.get("/api/v1/projects/library", auth=None).json()["public"] is True


def test_project_lifecycle(client):
    created = client.post("/api/v1/projects", json={"name": "newproj", "public": False})
    assert created.status_code == 201 and created.headers["Location"] == "/api/v1/projects/newproj"
    assert client.get("/api/v1/projects/newproj").json()["public"] is False
    assert client.patch("/api/v1/projects/newproj", json={"public": True}).json()["public"] is True
    problem(client.post("/api/v1/projects", json={"name": "newproj"}), 409)
    assert client.delete("/api/v1/projects/newproj").status_code == 204
    problem(client.get("/api/v1/projects/newproj"), 404)
    assert client.post("/api/v1/projects", json={"name": "newproj"}).status_code == 201  # name reusable


def test_project_with_repositories_cannot_be_deleted(client):
    push_image(client, "team/app", "1")
    client.post("/api/v1/robots", json={"name": "ci", "project": "team", "permissions": [
        {"project": "team", "resource": "repository", "action": "pull"}]})
    problem(client.delete("/api/v1/projects/team"), 409)
    assert [r["name"] for r in client.get("/api/v1/robots?project=team").json()] == ["robot$team+ci"]


def test_deleting_a_project_deletes_its_robots(client):
    client.post("/api/v1/robots", json={"name": "ci", "project": "race", "permissions": [
        {"project": "race", "resource": "repository", "action": "pull"}]})
    assert client.delete("/api/v1/projects/race").status_code == 204
    assert client.get("/api/v1/robots/robot$race+ci").status_code == 404


def test_creator_becomes_project_admin(client):
    create_user(client, "creator")
    response = client.post("/api/v1/projects", json={"name": "mine"}, auth=("creator", PASSWORD))
    assert response.status_code == 201
    members = client.get("/api/v1/projects/mine/members", auth=("creator", PASSWORD)).json()
    assert [(m["principal"], m["role"]) for m in members] == [("creator", "project_admin")]


def test_project_listing_shows_what_the_caller_may_see(client):
    create_user(client, "viewer")
    grant(client, "team", "viewer", "guest")
    names = {p["name"] for p in client.get("/api/v1/projects?page_size=100", auth=("viewer", PASSWORD)).json()}
    assert names == {"library", "team"}
    anonymous = client.get("/api/v1/projects", auth=None)
    assert {p["name"] for p in anonymous.json()} == {"library"}


def test_pagination_headers(client):
    filtered = client.get("/api/v1/projects?page_size=1&name=r")
    assert filtered.headers["Link"] == '</api/v1/projects?name=r&page=2&page_size=1>; rel="next"'
    response = client.get("/api/v1/projects?page=1&page_size=2")
    assert len(response.json()) == 2
    assert int(response.headers["X-Total-Count"]) == 8  # library + the test projects
    assert 'rel="next"' in response.headers["Link"]
    problem(client.get("/api/v1/projects?page=0"), 422)


def test_bad_input_gets_problem_details(client):
    problem(client.post("/api/v1/projects", content=b"{not json", headers={"Content-Type": "application/json"}), 400)
    problem(client.post("/api/v1/projects", json={"name": "UPPER"}), 422)
    problem(client.post("/api/v1/projects", json={"public": True}), 422)
    problem(client.post("/api/v1/users", json={"username": "weak", "password": "short"}), 422)
    problem(client.put("/api/v1/projects/team/members/nobody", json={"role": "developer"}), 404)
    problem(client.put("/api/v1/projects/team/members/admin", json={"role": "emperor"}), 422)


def test_authentication_and_authorization_problems(client):
    problem(client.post("/api/v1/projects", json={"name": "x"}, auth=None), 401)
    create_user(client, "dev")
    grant(client, "team", "dev", "developer")
    denied = problem(client.put("/api/v1/projects/team/members/dev", json={"role": "project_admin"},
                                auth=("dev", PASSWORD)), 403)
    assert denied["permission"] == "member:update"
    problem(client.get("/api/v1/users", auth=("dev", PASSWORD)), 403)


def test_no_password_hash_or_secret_is_ever_returned(client):
    create_user(client, "alice")
    robot = client.post("/api/v1/robots", json={"name": "ci", "project": "team", "permissions": [
        {"project": "team", "resource": "repository", "action": "pull"}]}).json()
    secret = robot["secret"]
    bodies = [client.get(path).text for path in (
        "/api/v1/users", "/api/v1/users/alice", "/api/v1/users/current", "/api/v1/robots?project=team",
        f"/api/v1/robots/{robot['name']}")]
    for body in bodies:
        assert "argon2" not in body and "password" not in body and secret not in body


def test_user_lifecycle_and_password_change(client):
    create_user(client, "bob")
    assert client.get("/api/v1/users/current", auth=("bob", PASSWORD)).json()["username"] == "bob"
    problem(client.put("/api/v1/users/bob/password", json={"password": "New-Pass-22", "old_password": "bad"},
                       auth=("bob", PASSWORD)), 401)
    assert client.put("/api/v1/users/bob/password", json={"password": "New-Pass-22", "old_password": PASSWORD},
                      auth=("bob", PASSWORD)).status_code == 204
    assert client.get("/api/v1/users/current", auth=("bob", "New-Pass-22")).status_code == 200
    assert client.get("/api/v1/users/current", auth=("bob", PASSWORD)).status_code == 401
    assert client.put("/api/v1/users/bob/admin", json={"system_admin": True}).json()["system_admin"] is True
    assert client.get("/api/v1/users", auth=("bob", "New-Pass-22")).status_code == 200
    grant(client, "team", "bob", "developer")
    assert client.delete("/api/v1/users/bob").status_code == 204
    assert "bob" not in {m["principal"] for m in client.get("/api/v1/projects/team/members").json()}
    problem(client.delete("/api/v1/users/admin"), 409)


def test_recreated_user_does_not_inherit_old_memberships(client):
    create_user(client, "carol")
    grant(client, "team", "carol", "maintainer")
    client.delete("/api/v1/users/carol")
    create_user(client, "carol")
    assert token_access(token(client, ["repository:team/app:pull"], ("carol", PASSWORD))) == []


def test_openapi_document(client):
    doc = client.get("/api/v1/openapi.json", auth=None).json()
    assert doc["openapi"].startswith("3.")
    assert "post" in doc["paths"]["/api/v1/projects"]
    assert doc["paths"]["/api/v1/robots/{robot}/secret"]["post"]["summary"]
