"""Every role × registry action, allowed and denied, through the real HTTP API; the
expectations come from the matrix in domain/permissions.py."""

from __future__ import annotations

import pytest

from domain.permissions import MATRIX, Role
from tests.support.auth import PASSWORD, create_user, grant
from tests.support.oci import push_blob, push_image

ACTIONS = {"pull": ("repository", "pull"), "push": ("repository", "push"),
           "delete": ("repository", "delete")}


def attempt(client, action: str, auth) -> int:
    if action == "pull":
        return client.get("/v2/team/app/manifests/base", auth=auth).status_code
    if action == "push":
        return client.post("/v2/team/app/blobs/uploads/", auth=auth).status_code
    loose = push_blob(client, "team/app", b"a blob no manifest uses")  # one a manifest uses is never deleted
    return client.delete(f"/v2/team/app/blobs/{loose}", auth=auth).status_code


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_role_action(client, role, action):
    push_image(client, "team/app", "base", seed="base")
    create_user(client, "member")
    grant(client, "team", "member", role.value)
    status = attempt(client, action, ("member", PASSWORD))
    if ACTIONS[action] in MATRIX[role]:
        assert status in (200, 202), (role, action, status)
    else:
        assert status == 403, (role, action, status)


@pytest.mark.parametrize("action", list(ACTIONS))
def test_non_member_is_denied_everything_in_a_private_project(client, action):
    push_image(client, "team/app", "base", seed="base")
    create_user(client, "outsider")
    assert attempt(client, action, ("outsider", PASSWORD)) == 403


@pytest.mark.parametrize("action", list(ACTIONS))
def test_anonymous_is_challenged_in_a_private_project(client, action):
    push_image(client, "team/app", "base", seed="base")
    response_status = attempt(client, action, None)
    assert response_status == 401


def test_anonymous_may_pull_from_a_public_project_only(client):
    push_image(client, "library/app", "1", seed="pub")
    assert client.get("/v2/library/app/manifests/1", auth=None).status_code == 200
    assert client.post("/v2/library/app/blobs/uploads/", auth=None).status_code == 401


def test_repository_grant_covers_that_repository_only(client):
    push_image(client, "team/app", "base", seed="base")
    push_image(client, "team/other", "base", seed="other")
    create_user(client, "narrow")
    grant(client, "team", "narrow", "developer", repository="team/app")
    auth = ("narrow", PASSWORD)
    assert client.post("/v2/team/app/blobs/uploads/", auth=auth).status_code == 202
    assert client.get("/v2/team/other/manifests/base", auth=auth).status_code == 403
    assert client.post("/v2/team/other/blobs/uploads/", auth=auth).status_code == 403


def test_push_into_a_missing_project_names_it(client):
    response = client.post("/v2/nosuchproject/app/blobs/uploads/")
    assert response.status_code == 404
    error = response.json()["errors"][0]
    assert error["code"] == "NAME_UNKNOWN" and "nosuchproject" in error["message"]


def test_catalog_is_for_administrators(client):
    create_user(client, "plain")
    assert client.get("/v2/_catalog").status_code == 200
    assert client.get("/v2/_catalog", auth=("plain", PASSWORD)).status_code == 403
    assert client.get("/v2/_catalog", auth=None).status_code == 401


def test_base_endpoint_challenges_anonymous_and_accepts_users(client):
    anonymous = client.get("/v2/", auth=None)
    assert anonymous.status_code == 401
    challenge = anonymous.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="http://testserver/service/token"')
    assert 'service="portlog"' in challenge
    assert client.get("/v2/").status_code == 200


def test_resource_challenge_names_the_scope(client):
    response = client.post("/v2/team/app/blobs/uploads/", auth=None)
    assert 'scope="repository:team/app:pull,push"' in response.headers["WWW-Authenticate"]
    response = client.get("/v2/team/app/tags/list", auth=None)
    assert 'scope="repository:team/app:pull"' in response.headers["WWW-Authenticate"]


# Management actions, each as a real request through /api/v1 (expected outcome from MATRIX).
def _robot_body(name: str) -> dict:
    return {"name": name, "project": "team",
            "permissions": [{"project": "team", "resource": "repository", "action": "pull"}]}


MANAGEMENT = {
    ("project", "read"): lambda c, auth: c.get("/api/v1/projects/team", auth=auth),
    ("project", "update"): lambda c, auth: c.patch("/api/v1/projects/team", json={"public": False}, auth=auth),
    ("member", "list"): lambda c, auth: c.get("/api/v1/projects/team/members", auth=auth),
    ("member", "update"): lambda c, auth: c.put("/api/v1/projects/team/members/admin",
                                                json={"role": "guest"}, auth=auth),
    ("robot", "list"): lambda c, auth: c.get("/api/v1/robots?project=team", auth=auth),
    ("robot", "create"): lambda c, auth: c.post("/api/v1/robots", json=_robot_body("r1"), auth=auth),
    ("log", "list"): lambda c, auth: c.get("/api/v1/audit-logs?project=team", auth=auth),
    ("repository", "list"): lambda c, auth: c.get("/api/v1/repositories?project=team", auth=auth),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(MANAGEMENT), ids=lambda p: ":".join(p))
def test_role_management_action(client, role, permission):
    create_user(client, "member")
    grant(client, "team", "member", role.value)
    status = MANAGEMENT[permission](client, ("member", PASSWORD)).status_code
    if permission in MATRIX[role]:
        assert status in (200, 201), (role, permission, status)
    else:
        assert status == 403, (role, permission, status)
