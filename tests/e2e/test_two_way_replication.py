"""Two Portlog instances replicating to each other, event-based, as two real `portlog serve`
processes: an image pushed to either appears on the other, and the logs settle — the copy that
comes back finds the digest under the tag and writes nothing, so there is no loop."""

from __future__ import annotations

import time

import pytest

from tests.support.oci import OCI_MANIFEST, push_image
from tests.support.server import ADMIN_PASSWORD, start_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def pair(tmp_path):
    servers = [start_server(tmp_path / name / "data", tmp_path / f"{name}.log", projects=("team",))
               for name in ("east", "west")]
    yield servers
    for server in servers:
        server.stop()


def replicate_to(source, target) -> None:
    with source.client() as client:
        response = client.post("/api/v2.0/registries", json={
            "name": "other", "url": target.url, "type": "portlog",
            "credential": {"type": "basic", "access_key": "admin", "access_secret": ADMIN_PASSWORD}})
        assert response.status_code == 201, response.text
        registry_id = int(response.headers["Location"].rsplit("/", 1)[1])
        assert client.post("/api/v2.0/registries/ping", json={"id": registry_id}).status_code == 200
        response = client.post("/api/v2.0/replication/policies", json={
            "name": "mirror", "dest_registry": {"id": registry_id}, "trigger": {"type": "event_based"},
            "filters": [{"type": "name", "value": "team/**"}]})
        assert response.status_code == 201, response.text


def digest_on(server, reference: str) -> str | None:
    with server.client() as client:
        response = client.head(f"/v2/team/app/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def log_length(server) -> int:
    with server.client() as client:
        events = client.get("/api/v1/events?limit=1000").json()
        return int(events[-1]["id"]) if events else 0



def test_two_registries_replicating_to_each_other_settle(pair):
    east, west = pair
    replicate_to(east, west)
    replicate_to(west, east)
    with east.client() as client:
        pushed_east, _ = push_image(client, "team/app", "v1", seed="from east")
    with west.client() as client:
        pushed_west, _ = push_image(client, "team/app", "v2", seed="from west")
    assert wait_until(lambda: digest_on(west, "v1") == pushed_east)
    assert wait_until(lambda: digest_on(east, "v2") == pushed_west)

    def settled() -> bool:
        before = (log_length(east), log_length(west))
        time.sleep(3)  # several rounds of both followers and worker pools
        return (log_length(east), log_length(west)) == before

    wait_until(settled, timeout=60, what="the registries settling (they keep writing: a replication loop?)")
    for server in (east, west):
        with server.client() as client:
            executions = client.get("/api/v2.0/replication/executions").json()
            assert executions and all(e["status"] == "Succeed" for e in executions), executions
            tags = client.get("/v2/team/app/tags/list").json()["tags"]
            assert tags == ["v1", "v2"]
