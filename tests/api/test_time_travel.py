"""Time travel over a scripted history: create, push, retag, delete, grant, revoke — then
query as of each point, by log position and by time."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from tests.support.auth import PASSWORD, create_user, grant
from tests.support.oci import push_image

pytestmark = pytest.mark.both_databases


def position(client) -> int:
    return client.app.state.services.projections.catch_up()


def tags_at(client, repository: str, as_of) -> dict[str, str]:
    response = client.get(f"/api/v1/repositories/{repository}/tags", params={"as_of": as_of})
    assert response.status_code == 200, response.text
    return {t["tag"]: t["digest"] for t in response.json()}


def test_scripted_history(client):
    create_user(client, "dev")
    p0 = position(client)
    first, _ = push_image(client, "team/api", "stable", seed="v1")
    p1 = position(client)
    t1 = datetime.now(timezone.utc)
    time.sleep(0.01)
    second, _ = push_image(client, "team/api", "stable", seed="v2")
    p2 = position(client)
    grant(client, "team", "dev", "developer")
    p3 = position(client)
    client.delete("/v2/team/api/manifests/stable")
    p4 = position(client)
    client.delete("/api/v1/projects/team/members/dev")
    p5 = position(client)

    assert tags_at(client, "team/api", p0) == {}
    assert tags_at(client, "team/api", p1) == {"stable": first}
    assert tags_at(client, "team/api", t1.isoformat()) == {"stable": first}
    assert tags_at(client, "team/api", p2) == {"stable": second}
    assert tags_at(client, "team/api", p4) == {}

    repos = client.get("/api/v1/repositories", params={"project": "team", "as_of": p0}).json()
    assert repos == []
    assert [r["name"] for r in client.get("/api/v1/repositories", params={"project": "team", "as_of": p1}).json()] \
        == ["team/api"]

    def members(at):
        body = client.get("/api/v1/projects/team/members/history", params={"as_of": at}).json()
        return {(m["principal"], m["role"]) for m in body}

    assert ("dev", "developer") not in members(p2)
    assert ("dev", "developer") in members(p3)
    assert ("dev", "developer") not in members(p5)

    def pushers(at):
        body = client.get("/api/v1/projects/team/permissions",
                          params={"as_of": at, "action": "push", "repository": "team/api"}).json()
        return {entry["principal"] for entry in body}

    assert "dev" in pushers(p3) and "dev" not in pushers(p5)
    assert "admin" in pushers(p5)


def test_tag_history_is_attributed(client):
    create_user(client, "dev")
    grant(client, "team", "dev", "developer")
    first, _ = push_image(client, "team/api", "stable", seed="h1")
    client.auth = ("dev", PASSWORD)
    second, _ = push_image(client, "team/api", "stable", seed="h2")
    client.auth = ("admin", "Portlog-Test-1")
    history = client.get("/api/v1/repositories/team/api/tags/stable/history").json()
    assert [(h["digest"], h["started_by"], h["ended_by"]) for h in history] == [
        (first, "admin", "dev"), (second, "dev", None)]
    assert history[0]["to_position"] == history[1]["from_position"]


def test_tag_history_tells_deletes_and_undeletes_from_moves(client, services):
    first, _ = push_image(client, "team/api", "stable", seed="u1")
    assert client.delete("/api/v1/repositories/team/api").status_code == 204
    assert client.post("/api/v1/repositories/team/api/undelete").status_code == 200
    assert client.delete("/v2/team/api/manifests/stable").status_code == 202
    assert client.post("/api/v1/repositories/team/api/tags/stable/undelete").status_code == 200
    second, _ = push_image(client, "team/api", "stable", seed="u2")

    def how() -> list[tuple]:
        history = client.get("/api/v1/repositories/team/api/tags/stable/history").json()
        return [(h["digest"], h["started_how"], h["ended_how"], h["ended_by"]) for h in history]

    expected = [(first, "pointed", "repository_deleted", "admin"), (first, "undeleted", "deleted", "admin"),
                (first, "undeleted", "moved", "admin"), (second, "pointed", None, None)]
    assert how() == expected
    services.projections.rebuild()
    assert how() == expected


def test_a_push_after_a_delete_is_no_undelete(client):
    first, _ = push_image(client, "team/api", "stable", seed="p1")
    client.delete("/v2/team/api/manifests/stable")
    second, _ = push_image(client, "team/api", "stable", seed="p2")
    history = client.get("/api/v1/repositories/team/api/tags/stable/history").json()
    assert [(h["digest"], h["started_how"], h["ended_how"]) for h in history] == [
        (first, "pointed", "deleted"), (second, "pointed", None)]


def test_restore_tag_to_an_earlier_point(client, services):
    first, _ = push_image(client, "team/api", "stable", seed="r1")
    before = position(client)
    second, _ = push_image(client, "team/api", "stable", seed="r2")
    response = client.post("/api/v1/repositories/team/api/tags/stable/restore", json={"as_of": before})
    assert response.status_code == 200, response.text
    assert response.json()["digest"] == first
    assert client.get("/v2/team/api/manifests/stable").headers["Docker-Content-Digest"] == first
    history = client.get("/api/v1/repositories/team/api/tags/stable/history").json()
    assert [h["digest"] for h in history] == [first, second, first]  # a new event, not a rewrite


def test_restore_refuses_what_did_not_exist(client):
    push_image(client, "team/api", "stable", seed="x")
    response = client.post("/api/v1/repositories/team/api/tags/never/restore", json={"as_of": 1})
    assert response.status_code == 404


def test_robot_permissions_as_of(client):
    robot = client.post("/api/v1/robots", json={"name": "ci", "project": "team", "permissions": [
        {"project": "team", "resource": "repository", "action": "pull"}]}).json()
    before = position(client)
    client.patch(f"/api/v1/robots/{robot['name']}", json={"permissions": [
        {"project": "team", "resource": "repository", "action": "push"}]})
    then = client.get(f"/api/v1/robots/{robot['name']}/history", params={"as_of": before}).json()
    now = client.get(f"/api/v1/robots/{robot['name']}/history").json()
    assert [p["action"] for p in then["permissions"]] == ["pull"]
    assert [p["action"] for p in now["permissions"]] == ["push"]


def test_bad_as_of(client):
    response = client.get("/api/v1/repositories/team/api/tags", params={"as_of": "yesterday-ish"})
    assert response.status_code == 422


def test_a_moment_before_the_first_event_shows_nothing_not_today(client):
    push_image(client, "team/api", "1.0")
    long_ago = "2001-01-01T00:00:00Z"
    assert client.get("/api/v1/repositories", params={"project": "team", "as_of": long_ago}).json() == []
    assert tags_at(client, "team/api", long_ago) == {}
    assert tags_at(client, "team/api", "2999-01-01T00:00:00Z") == {"1.0": tags_at(client, "team/api", "")["1.0"]}
