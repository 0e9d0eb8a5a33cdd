"""Robot accounts: explicit permissions, secret shown once, refresh, disable, expiry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.permissions import MATRIX, Role
from tests.support.auth import PASSWORD, create_user, grant, token, token_access
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


# A robot (or user) creates and edits only robots within its own permissions, never itself
# (issue 16, item 3).

ROBOT_ADMIN = [{"project": "team", "resource": "robot", "action": action}
               for action in ("list", "read", "create", "update")] + PULL_PUSH[:1]


def harbor_access(*pairs: tuple[str, str], project: str = "team") -> list[dict]:
    return [{"kind": "project", "namespace": project,
             "access": [{"resource": resource, "action": action} for resource, action in pairs]}]


@pytest.fixture
def manager(client) -> tuple[str, str]:
    """A robot that manages the project's robots and may pull, nothing more."""
    robot = create_robot(client, name="manager", permissions=ROBOT_ADMIN)
    return robot["name"], robot["secret"]


@pytest.fixture
def pusher(client) -> dict:
    """A robot holding push, which the manager lacks."""
    return create_robot(client, name="pusher")


def test_a_robot_cannot_create_a_robot_beyond_its_own_permissions(client, services, manager):
    wider = PULL_PUSH + [{"project": "team", "resource": "member", "action": "create"}]
    v1 = client.post("/api/v1/robots", auth=manager, json={"name": "wide", "project": "team", "permissions": wider})
    assert v1.status_code == 403, v1.text
    assert "team:repository:push" in v1.json()["detail"] and "team:member:create" in v1.json()["detail"]
    harbor = client.post("/api/v2.0/robots", auth=manager, json={
        "name": "wide2", "level": "project", "duration": -1,
        "permissions": harbor_access(("repository", "push"), ("member", "create"))})
    assert harbor.status_code == 403 and harbor.json()["errors"][0]["code"] == "FORBIDDEN"
    assert [r.name for r in services.access.robots(project="team")] == ["robot$team+manager"]


def test_a_robot_cannot_change_its_own_permissions(client, services, manager):
    more = ROBOT_ADMIN + [{"project": "team", "resource": "project", "action": "delete"}]
    v1 = client.patch(f"/api/v1/robots/{manager[0]}", auth=manager, json={"permissions": more})
    robot_id = services.access.robot(manager[0]).id
    harbor = client.put(f"/api/v2.0/robots/{robot_id}", auth=manager, json={
        "permissions": harbor_access(("robot", "update"), ("project", "delete"))})
    assert (v1.status_code, harbor.status_code) == (403, 403)
    assert "itself" in v1.json()["detail"]
    assert services.access.robot(manager[0]).permissions == ROBOT_ADMIN


def test_a_robot_cannot_refresh_its_own_secret_or_disable_itself(client, services, manager):
    robot_id = services.access.robot(manager[0]).id
    assert client.post(f"/api/v1/robots/{manager[0]}/secret", auth=manager).status_code == 403
    assert client.patch(f"/api/v2.0/robots/{robot_id}", auth=manager, json={}).status_code == 403
    assert client.patch(f"/api/v1/robots/{manager[0]}", auth=manager, json={"disabled": True}).status_code == 403
    assert client.get("/service/token", auth=manager).status_code == 200


def test_a_robot_cannot_refresh_or_change_a_robot_holding_more(client, services, manager, pusher):
    name, robot_id = pusher["name"], services.access.robot(pusher["name"]).id
    assert client.post(f"/api/v1/robots/{name}/secret", auth=manager).status_code == 403
    assert client.patch(f"/api/v2.0/robots/{robot_id}", auth=manager, json={}).status_code == 403
    assert client.patch(f"/api/v1/robots/{name}", auth=manager, json={"disabled": True}).status_code == 403
    assert client.patch(f"/api/v1/robots/{name}", auth=manager, json={"permissions": PULL_PUSH[:1]}).status_code == 403
    assert client.put(f"/api/v2.0/robots/{robot_id}", auth=manager, json={"disable": True}).status_code == 403
    assert client.get("/service/token", auth=(name, pusher["secret"])).status_code == 200
    assert services.access.robot(name).permissions == PULL_PUSH and not services.access.robot(name).disabled


def test_a_robot_cannot_widen_a_robot_within_its_reach(client, manager):
    created = client.post("/api/v1/robots", auth=manager, json={
        "name": "puller", "project": "team", "permissions": PULL_PUSH[:1]})
    assert created.status_code == 201
    widened = client.patch(f"/api/v1/robots/{created.json()['name']}", auth=manager, json={"permissions": PULL_PUSH})
    assert widened.status_code == 403 and "team:repository:push" in widened.json()["detail"]


def test_a_robot_manages_robots_within_its_own_permissions(client, services, manager):
    created = client.post("/api/v1/robots", auth=manager, json={
        "name": "puller", "project": "team", "permissions": PULL_PUSH[:1]})
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    assert client.patch(f"/api/v1/robots/{name}", auth=manager, json={"disabled": True}).status_code == 200
    refreshed = client.post(f"/api/v1/robots/{name}/secret", auth=manager)
    assert refreshed.status_code == 200 and refreshed.json()["secret"] != created.json()["secret"]
    harbor = client.post("/api/v2.0/robots", auth=manager, json={
        "name": "reader", "level": "project", "duration": -1,
        "permissions": harbor_access(("repository", "pull"), ("robot", "read"))})
    assert harbor.status_code == 201, harbor.text
    robot_id = harbor.json()["id"]
    assert client.patch(f"/api/v2.0/robots/{robot_id}", auth=manager, json={}).status_code == 200
    assert client.put(f"/api/v2.0/robots/{robot_id}", auth=manager, json={
        "permissions": harbor_access(("repository", "pull"))}).status_code == 200
    assert services.access.robot_by_id(robot_id).permissions == PULL_PUSH[:1]


def test_a_public_projects_open_pull_is_no_grant_to_pass_on(client, services):
    """Anyone may pull from a public project, but only as long as it is public."""
    client.patch("/api/v1/projects/team", json={"public": True})
    manager = create_robot(client, name="manager", permissions=ROBOT_ADMIN[:4])
    refused = client.post("/api/v1/robots", auth=(manager["name"], manager["secret"]), json={
        "name": "puller", "project": "team", "permissions": PULL_PUSH[:1]})
    assert refused.status_code == 403


def test_a_project_admin_user_grants_anything_in_the_project(client):
    create_user(client, "owner")
    grant(client, "team", "owner", "project_admin")
    wide = PULL_PUSH + [{"project": "team", "resource": "member", "action": "create"}]
    created = client.post("/api/v1/robots", auth=("owner", PASSWORD), json={
        "name": "wide", "project": "team", "permissions": wide})
    assert created.status_code == 201, created.text


def test_a_robot_grants_project_roles_only_within_its_own_permissions(client, services):
    """A robot holding member:create could otherwise make any user the project's admin."""
    guest = [{"project": "team", "resource": r, "action": a} for r, a in sorted(MATRIX[Role.GUEST])]
    member_managing = [{"project": "team", "resource": "member", "action": a} for a in ("create", "update")]
    robot = create_robot(client, name="hr", permissions=guest + member_managing)
    auth = (robot["name"], robot["secret"])
    create_user(client, "friend")
    friend_id = services.access.user("friend").id
    project_id = services.access.project("team").id
    v1 = client.put("/api/v1/projects/team/members/friend", auth=auth, json={"role": "project_admin"})
    harbor = client.post(f"/api/v2.0/projects/{project_id}/members", auth=auth,
                         json={"member_user": {"user_id": friend_id}, "role_id": 1})
    assert (v1.status_code, harbor.status_code) == (403, 403)
    assert "team:project:delete" in v1.json()["detail"]
    assert services.access.memberships_of("friend") == []
    assert client.put("/api/v1/projects/team/members/friend", auth=auth, json={"role": "guest"}).status_code == 200
    member_id = services.access.memberships_of("friend")[0].id
    promoted = client.put(f"/api/v2.0/projects/{project_id}/members/{member_id}", auth=auth, json={"role_id": 4})
    assert promoted.status_code == 403 and services.access.memberships_of("friend")[0].role == "guest"


# A robot gives the robots it creates or edits no longer a life than its own: no robot that
# never expires from one that does, none outliving it (issue 16, item 3); users are unbounded.

def test_a_robot_with_an_expiry_creates_no_robot_outliving_it(client, services):
    manager = create_robot(client, name="manager", permissions=ROBOT_ADMIN, duration_days=7)
    auth = (manager["name"], manager["secret"])
    for body in ({}, {"duration_days": -1}, {"duration_days": 8}):
        v1 = client.post("/api/v1/robots", auth=auth, json={
            "name": "heir", "project": "team", "permissions": PULL_PUSH[:1], **body})
        assert v1.status_code == 403, (body, v1.text)
        assert "expire" in v1.json()["detail"]
    for duration in (-1, 8):
        harbor = client.post("/api/v2.0/robots", auth=auth, json={
            "name": "heir", "level": "project", "duration": duration,
            "permissions": harbor_access(("repository", "pull"))})
        assert harbor.status_code == 403 and harbor.json()["errors"][0]["code"] == "FORBIDDEN", harbor.text
    assert [r.name for r in services.access.robots(project="team")] == ["robot$team+manager"]
    within = client.post("/api/v1/robots", auth=auth, json={
        "name": "heir", "project": "team", "permissions": PULL_PUSH[:1], "duration_days": 6})
    assert within.status_code == 201, within.text
    assert services.access.robot("robot$team+heir").expires_at < services.access.robot(manager["name"]).expires_at
    harbor = client.post("/api/v2.0/robots", auth=auth, json={
        "name": "heir2", "level": "project", "duration": 3, "permissions": harbor_access(("repository", "pull"))})
    assert harbor.status_code == 201, harbor.text


def test_a_robot_with_an_expiry_edits_no_robot_outliving_it(client, services):
    """Granting to, or taking the secret of, a longer-lived robot would outlast the editor's expiry."""
    manager = create_robot(client, name="manager", permissions=ROBOT_ADMIN, duration_days=7)
    auth = (manager["name"], manager["secret"])
    lasting = create_robot(client, name="lasting", permissions=PULL_PUSH[:1])
    name, robot_id = lasting["name"], services.access.robot(lasting["name"]).id
    assert client.post(f"/api/v1/robots/{name}/secret", auth=auth).status_code == 403
    assert client.patch(f"/api/v2.0/robots/{robot_id}", auth=auth, json={}).status_code == 403
    refused = client.patch(f"/api/v1/robots/{name}", auth=auth, json={"permissions": PULL_PUSH[:1]})
    assert refused.status_code == 403 and "expire" in refused.json()["detail"]
    assert client.put(f"/api/v2.0/robots/{robot_id}", auth=auth, json={
        "permissions": harbor_access(("repository", "pull"))}).status_code == 403
    assert client.get("/service/token", auth=(name, lasting["secret"])).status_code == 200
    shorter = create_robot(client, name="shorter", permissions=PULL_PUSH[:1], duration_days=3)
    assert client.post(f"/api/v1/robots/{shorter['name']}/secret", auth=auth).status_code == 200


def test_robots_that_never_expire_and_users_give_any_expiry(client):
    manager = create_robot(client, name="manager", permissions=ROBOT_ADMIN)
    created = client.post("/api/v1/robots", auth=(manager["name"], manager["secret"]), json={
        "name": "forever", "project": "team", "permissions": PULL_PUSH[:1]})
    assert created.status_code == 201 and created.json()["expires_at"] is None
    create_user(client, "owner")
    grant(client, "team", "owner", "project_admin")
    by_user = client.post("/api/v1/robots", auth=("owner", PASSWORD), json={
        "name": "long", "project": "team", "permissions": PULL_PUSH[:1], "duration_days": 3650})
    assert by_user.status_code == 201, by_user.text


def test_a_harbor_robot_without_a_duration_lives_the_configured_robot_token_duration(client):
    """As in Harbor; Portlog's own /api/v1/robots keeps "no duration_days: never expires"."""
    assert client.put("/api/v2.0/configurations", json={"robot_token_duration": 7}).status_code == 200
    access = [{"kind": "project", "namespace": "team", "access": [{"resource": "repository", "action": "pull"}]}]
    for name, extra in (("absent", {}), ("zero", {"duration": 0})):
        created = client.post("/api/v2.0/robots", json={"name": name, "level": "project", "permissions": access,
                                                        **extra})
        assert created.status_code == 201, created.text
        expected = (datetime.now(timezone.utc) + timedelta(days=7)).timestamp()
        assert abs(created.json()["expires_at"] - expected) < 120
        assert client.get(f"/api/v2.0/robots/{created.json()['id']}").json()["duration"] == 7
    never = client.post("/api/v2.0/robots", json={"name": "never", "level": "project", "duration": -1,
                                                  "permissions": access})
    assert never.json()["expires_at"] == -1
