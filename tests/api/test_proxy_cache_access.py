"""Only system administrators make proxy-cache projects: one pulls with its endpoint's stored
credentials, so choosing an upstream lends them (issue 16, item 2)."""

from __future__ import annotations

import pytest

from domain.context import RequestContext
from domain.registries import EndpointSettings
from tests.support.auth import PASSWORD, create_user, grant

ALICE = ("alice", PASSWORD)


@pytest.fixture
def endpoint(client, services) -> int:
    """An administrator's endpoint with stored credentials; its id."""
    settings = EndpointSettings("http://10.1.2.3:5000", "docker-registry", access_key="svc", access_secret="Upstream-1")
    services.projections.wait_for(services.endpoints.add("upstream", settings, RequestContext("admin", "setup")))
    create_user(client, "alice")
    return services.registries.by_name("upstream").id


def test_an_ordinary_user_cannot_create_a_proxy_cache_project_through_v1(client, services, endpoint):
    response = client.post("/api/v1/projects", auth=ALICE,
                           json={"name": "hub", "public": True, "proxy_cache_registry": "upstream"})
    assert response.status_code == 403 and response.headers["content-type"] == "application/problem+json"
    assert "proxy-cache" in response.json()["detail"]
    assert services.access.project("hub") is None


def test_an_ordinary_user_cannot_create_a_proxy_cache_project_through_harbor(client, services, endpoint):
    response = client.post("/api/v2.0/projects", auth=ALICE, json={
        "project_name": "hub", "registry_id": endpoint, "metadata": {"public": "true"}})
    assert response.status_code == 403 and response.json()["errors"][0]["code"] == "FORBIDDEN"
    assert services.access.project("hub") is None


def test_an_ordinary_user_still_creates_plain_projects(client, services, endpoint):
    assert client.post("/api/v1/projects", auth=ALICE, json={"name": "own"}).status_code == 201
    assert client.post("/api/v2.0/projects", auth=ALICE,
                       json={"project_name": "own2", "registry_id": 0}).status_code == 201
    assert services.access.project("own").proxy_registry is None
    assert services.access.project("own2").proxy_registry is None


def test_a_deleted_projects_name_cannot_come_back_as_a_proxy_cache(client, services, endpoint):
    assert client.post("/api/v1/projects", auth=ALICE, json={"name": "own"}).status_code == 201
    assert client.delete("/api/v1/projects/own", auth=ALICE).status_code == 204
    response = client.post("/api/v1/projects", auth=ALICE, json={"name": "own", "proxy_cache_registry": "upstream"})
    assert response.status_code == 403 and services.access.project("own") is None


def test_an_administrator_creates_proxy_cache_projects(client, services, endpoint):
    assert client.post("/api/v1/projects", json={"name": "hub", "proxy_cache_registry": "upstream"}).status_code == 201
    assert client.post("/api/v2.0/projects", json={"project_name": "hub2", "registry_id": endpoint}).status_code == 201
    assert services.access.project("hub").proxy_registry == "upstream"
    assert services.access.project("hub2").proxy_registry == "upstream"


def test_a_project_admin_cannot_give_a_project_an_upstream(client, services, endpoint):
    assert client.post("/api/v1/projects", auth=ALICE, json={"name": "own"}).status_code == 201
    project_id = services.access.project("own").id
    v1 = client.patch("/api/v1/projects/own", auth=ALICE, json={"public": True, "proxy_cache_registry": "upstream"})
    harbor = client.put(f"/api/v2.0/projects/{project_id}", auth=ALICE, json={"registry_id": endpoint})
    assert (v1.status_code, harbor.status_code) == (403, 403)
    assert services.access.project("own").proxy_registry is None and not services.access.project("own").public


def test_a_project_admin_of_a_proxy_cache_cannot_move_its_upstream(client, services, endpoint):
    other = EndpointSettings("http://10.9.9.9:5000", "docker-registry", access_key="other", access_secret="Other-1")
    services.projections.wait_for(services.endpoints.add("other", other, RequestContext("admin", "setup")))
    assert client.post("/api/v1/projects", json={"name": "hub", "proxy_cache_registry": "upstream"}).status_code == 201
    grant(client, "hub", "alice", "project_admin")
    hub = services.access.project("hub")
    moved = client.put(f"/api/v2.0/projects/{hub.id}", auth=ALICE,
                       json={"registry_id": services.registries.by_name("other").id})
    assert moved.status_code == 403
    by_admin = client.put(f"/api/v2.0/projects/{hub.id}", json={"registry_id": services.registries.by_name("other").id})
    assert by_admin.status_code == 400 and "never changes" in by_admin.json()["errors"][0]["message"]
    kept = client.put(f"/api/v2.0/projects/{hub.id}", auth=ALICE, json={"registry_id": endpoint, "metadata": {}})
    assert kept.status_code == 200  # the unchanged upstream, as Harbor's clients send the whole project back
    assert services.access.project("hub").proxy_registry == "upstream"
