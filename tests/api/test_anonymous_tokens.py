"""An anonymous token never stands for an account, and no account may take a name Portlog acts
under itself (issue 16, item 1)."""

from __future__ import annotations

import pytest

from domain.account import User
from domain.context import RequestContext
from domain.permissions import Role
from tests.support.auth import PASSWORD, bearer, token
from tests.support.oci import push_image

RESERVED = ["anonymous", "system", "Anonymous", "SYSTEM", "proxy-cache", "replication"]
TEAM_PULL = [{"project": "team", "resource": "repository", "action": "pull"}]


@pytest.fixture
def old_anonymous_account(services) -> None:
    """A user called `anonymous`, project admin of `team`, as a log written before the name was
    reserved could hold (recorded straight through the domain: the API refuses the name now)."""
    ctx = RequestContext("admin", "old-log")
    hashed = services.admin.hasher.hash(PASSWORD)
    services.registry.update(User.create_id("anonymous"), lambda user: None, create=lambda: User.create(
        "anonymous", "", hashed, False, ctx))
    services.admin.set_member("team", "anonymous", Role.PROJECT_ADMIN, None, ctx)
    services.projections.catch_up()


def anonymous_token(client) -> str:
    return token(client, ["repository:team/app:pull,push"], None)


def test_an_anonymous_token_is_marked_as_such(client, services):
    claims = services.tokens.verify(anonymous_token(client))
    assert claims["sub"] == "anonymous" and claims["anonymous"] is True


@pytest.mark.usefixtures("old_anonymous_account")
def test_an_anonymous_token_never_acts_as_an_account_named_anonymous(client, services):
    headers = bearer(anonymous_token(client))
    for path in ("/api/v1/projects/team/members", "/api/v2.0/projects/team/members"):
        assert client.get(path, headers=headers, auth=None).status_code == 401, path
    v1 = client.post("/api/v1/robots", headers=headers, auth=None,
                     json={"name": "stolen", "project": "team", "permissions": TEAM_PULL})
    harbor = client.post("/api/v2.0/robots", headers=headers, auth=None, json={
        "name": "stolen2", "level": "project", "duration": -1, "permissions": [
            {"kind": "project", "namespace": "team", "access": [{"resource": "repository", "action": "pull"}]}]})
    assert (v1.status_code, harbor.status_code) == (401, 401)
    assert services.access.robots(project="team") == []


@pytest.mark.usefixtures("old_anonymous_account")
def test_a_token_for_a_reserved_subject_is_anonymous_even_without_the_mark(client, services):
    """Tokens issued before anonymous ones were marked name the subject only."""
    issued, _ = services.tokens.issue("anonymous", [])
    assert "anonymous" not in services.tokens.verify(issued)
    response = client.get("/api/v1/projects/team/members", headers=bearer(issued), auth=None)
    assert response.status_code == 401


@pytest.mark.usefixtures("old_anonymous_account")
def test_an_anonymous_token_pushes_nothing_into_a_project_of_the_account(client):
    push_image(client, "team/app", "1", seed="anon")
    headers = bearer(anonymous_token(client))
    assert client.post("/v2/team/app/blobs/uploads/", headers=headers, auth=None).status_code == 401
    assert client.get("/v2/team/app/manifests/1", headers=headers, auth=None).status_code == 401


@pytest.mark.usefixtures("old_anonymous_account")
def test_an_account_with_a_reserved_name_cannot_sign_in(client):
    assert client.get("/service/token", auth=("anonymous", PASSWORD)).status_code == 401
    assert client.get("/api/v1/projects/team/members", auth=("anonymous", PASSWORD)).status_code == 401
    assert client.post("/c/login", content=f"principal=anonymous&password={PASSWORD}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 401


@pytest.mark.usefixtures("old_anonymous_account")
def test_an_account_with_a_reserved_name_can_still_be_deleted(client, services):
    assert client.delete("/api/v1/users/anonymous").status_code == 204
    assert services.access.user("anonymous") is None


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_names_are_refused_for_users(client, name):
    v1 = client.post("/api/v1/users", json={"username": name, "password": PASSWORD})
    assert v1.status_code == 409 and "reserved" in v1.json()["detail"]
    harbor = client.post("/api/v2.0/users", json={"username": name, "password": PASSWORD})
    assert harbor.status_code == 409 and "reserved" in harbor.json()["errors"][0]["message"]


@pytest.mark.parametrize("name", ["anonymous", "system", "proxy-cache"])
def test_reserved_names_are_refused_for_robots(client, services, name):
    v1 = client.post("/api/v1/robots", json={"name": name, "project": "team", "permissions": TEAM_PULL})
    assert v1.status_code == 409 and "reserved" in v1.json()["detail"]
    harbor = client.post("/api/v2.0/robots", json={"name": name, "level": "system", "duration": -1, "permissions": [
        {"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}]})
    assert harbor.status_code == 409 and "reserved" in harbor.json()["errors"][0]["message"]
    assert services.access.robots() == []
