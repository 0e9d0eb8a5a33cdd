"""Robot accounts: explicit permissions, secret shown once, refresh, disable, expiry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.support.auth import token, token_access
from tests.support.oci import push_image

pytestmark = pytest.mark.both_databases

PULL_PUSH = [{"project": "team", "resource": "repository", "action": "pull"},
             {"project": "team", "resource": "repository", "action": "push"}]


def create_robot(client, name="ci", project="team", permissions=PULL_PUSH, **extra) -> dict:
    response = client.post("/api/v1/robots", json={"name": name, "project": project,
                                                   "permissions": permissions, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_robot_pushes_within_its_permissions(client):
    push_image(client, "race/app", "1", seed="r")
    robot = create_robot(client)
    assert robot["name"] == "robot$team+ci" and robot["secret"]
    auth = (robot["name"], robot["secret"])
    assert client.post("/v2/team/app/blobs/uploads/", auth=auth).status_code == 202
    assert client.get("/v2/race/app/manifests/1", auth=auth).status_code == 403
    issued = token(client, ["repository:team/app:pull,push,delete"], auth)
    assert token_access(issued) == [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]


def test_project_robot_cannot_hold_permissions_elsewhere(client):
    response = client.post("/api/v1/robots", json={"name": "sneaky", "project": "team", "permissions": [
        {"project": "race", "resource": "repository", "action": "pull"}]})
    assert response.status_code == 422


def test_system_robot_across_projects(client):
    push_image(client, "race/app", "1", seed="s")
    robot = create_robot(client, name="mirror", project=None, permissions=[
        {"project": "*", "resource": "repository", "action": "pull"}])
    assert robot["name"] == "robot$mirror"
    assert client.get("/v2/race/app/manifests/1", auth=(robot["name"], robot["secret"])).status_code == 200


def test_secret_refresh_invalidates_the_old_secret(client):
    robot = create_robot(client)
    refreshed = client.post(f"/api/v1/robots/{robot['name']}/secret").json()
    assert refreshed["secret"] != robot["secret"]
    old = client.get("/service/token", auth=(robot["name"], robot["secret"]))
    assert old.status_code == 401
    assert client.get("/service/token", auth=(robot["name"], refreshed["secret"])).status_code == 200


def test_disabled_robot_is_refused_and_can_be_enabled(client):
    robot = create_robot(client)
    auth = (robot["name"], robot["secret"])
    assert client.patch(f"/api/v1/robots/{robot['name']}", json={"disabled": True}).json()["disabled"]
    refused = client.get("/service/token", auth=auth)
    assert refused.status_code == 401 and "disabled" in refused.json()["errors"][0]["message"]
    assert client.post("/v2/team/app/blobs/uploads/", auth=auth).status_code == 401
    client.patch(f"/api/v1/robots/{robot['name']}", json={"disabled": False})
    assert client.get("/service/token", auth=auth).status_code == 200


def test_expired_robot_is_refused(client, services):
    robot = create_robot(client, duration_days=1)
    auth = (robot["name"], robot["secret"])
    assert client.get("/service/token", auth=auth).status_code == 200
    services.authenticator.clock = lambda: datetime.now(timezone.utc) + timedelta(days=2)
    refused = client.get("/service/token", auth=auth)
    assert refused.status_code == 401 and "expired" in refused.json()["errors"][0]["message"]


def test_robot_listing_and_delete(client):
    robot = create_robot(client)
    listed = client.get("/api/v1/robots?project=team").json()
    assert [r["name"] for r in listed] == [robot["name"]] and "secret" not in listed[0]
    assert client.delete(f"/api/v1/robots/{robot['name']}").status_code == 204
    assert client.get(f"/api/v1/robots/{robot['name']}").status_code == 404
