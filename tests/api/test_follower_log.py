"""Followers (docs/time-travel.md): the leader's log endpoints (who may read them, the stream's
format) and an in-process follower shipping from a leader through the ASGI client: first start
writes nothing, read models equal the leader's, writes refused naming the leader, the leader's
garbage collection deleting the follower's bytes too, and the hostile cases (bytes that do not
match their digest, events out of order)."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from starlette.testclient import TestClient

from adapters.log_store import LoggedEvent
from adapters.passwords import Argon2SecretHasher
from adapters.storage.filesystem import blob_path
from api.app import create_app
from api.management import log_stream
from background.log_shipper import Diverging, LogShipper
from config.bootstrap import bootstrap
from config.settings import FollowConfig, Settings
from domain.context import RequestContext
from domain.errors import FollowerReadOnlyError
from tests.support.auth import PASSWORD, create_user
from tests.support.oci import OCI_MANIFEST, digest_of, push_image
from tests.support.outbound import LOOPBACK
from tests.support.server import ADMIN_PASSWORD
from tests.support.waiting import wait_until

LEADER = "http://testserver"
EVENT_LOG_READ = [{"project": "*", "resource": "event-log", "action": "read"}]


@pytest.fixture(autouse=True)
def short_streams(monkeypatch):
    """The ASGI client reads a response whole: streams end after a moment (followers reconnect)."""
    monkeypatch.setattr(log_stream, "STREAM_SECONDS", 0.3)


def stream(client, after: int = 0, **params) -> list[dict]:
    response = client.get("/api/v1/log/events", params={"after": after, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [orjson.loads(line) for line in response.text.splitlines()]


def system_robot(client, name: str, permissions: list[dict]) -> tuple[str, str]:
    response = client.post("/api/v1/robots", json={"name": name, "permissions": permissions})
    assert response.status_code == 201, response.text
    return response.json()["name"], response.json()["secret"]


@pytest.mark.both_databases
def test_only_administrators_and_robots_holding_event_log_read_read_the_log(client):
    digest, _ = push_image(client, "team/app", "1")
    create_user(client, "plain")
    plain = ("plain", PASSWORD)
    without = system_robot(client, "puller", [{"project": "team", "resource": "repository", "action": "pull"}])
    holder = system_robot(client, "shipper", EVENT_LOG_READ)
    for path in ("/api/v1/log/events", f"/api/v1/log/blobs/{digest}"):
        assert client.get(path, auth=None).status_code == 401
        assert client.get(path, auth=plain).status_code == 403
        refused = client.get(path, auth=without)
        assert refused.status_code == 403 and refused.json()["permission"] == "event-log:read"
        assert client.get(path, auth=holder).status_code == 200
        assert client.get(path).status_code == 200
    # Harbor's robot API grants it too, on every project ("*")
    harbor = client.post("/api/v2.0/robots", json={"name": "shipper2", "level": "system", "duration": -1,
                                                   "permissions": [{"kind": "project", "namespace": "*", "access": [
                                                       {"resource": "event-log", "action": "read"}]}]})
    assert harbor.status_code == 201, harbor.text
    assert client.get("/api/v1/log/blobs/" + digest, auth=(harbor.json()["name"], harbor.json()["secret"])) \
        .status_code == 200
    # a project robot cannot hold it: a follower's credentials are system-wide
    response = client.post("/api/v1/robots", json={"name": "narrow", "project": "team", "permissions": [
        {"project": "team", "resource": "event-log", "action": "read"}]})
    assert response.status_code == 422


@pytest.mark.both_databases
def test_the_stream_carries_stored_events_with_the_bytes_they_need_and_heartbeats(client, services):
    digest, manifest = push_image(client, "team/app", "1", seed="s")
    push_image(client, "race/other", "1", seed="o")
    lines = stream(client)
    events = [line for line in lines if "heartbeat" not in line]
    heartbeats = [line for line in lines if "heartbeat" in line]
    head = services.log_store.head()
    assert [e["position"] for e in events] == [e.position for e in services.log_store.read(0, 10_000)]
    assert heartbeats and heartbeats[-1] == {"heartbeat": True, "head": head, "position": head}
    logged = [LoggedEvent.from_json(e) for e in events]
    assert logged == services.log_store.read(0, 10_000)
    pushed = next(e for e in events if e["topic"].endswith("Repository.ManifestPushed")
                  and digest in e["blobs"])
    assert pushed["blobs"] == [digest]
    linked = [e["blobs"] for e in events if e["topic"].endswith("Repository.BlobLinked")]
    assert linked and all(len(blobs) == 1 for blobs in linked)
    assert all(e["blobs"] == [] for e in events if e["topic"].endswith("Repository.TagPointed"))
    # resumable: after a position, the rest only
    middle = events[len(events) // 2]["position"]
    assert [e["position"] for e in stream(client, after=middle) if "heartbeat" not in e] == \
        [e["position"] for e in events if e["position"] > middle]
    # a project filter keeps that project's events and those of no project; heartbeats say how far it went
    filtered = stream(client, projects="team")
    kept = [e for e in filtered if "heartbeat" not in e]
    assert kept and len(kept) < len(events)
    assert not any(b"race/other" in LoggedEvent.from_json(e).state for e in kept)
    assert filtered[-1]["position"] == head
    response = client.get(f"/api/v1/log/blobs/{digest}")
    assert response.content == manifest and response.headers["docker-content-digest"] == digest
    assert client.get(f"/api/v1/log/blobs/{digest_of(b'none')}").status_code == 404
    assert client.get("/api/v1/log/blobs/sha256:xyz").status_code == 422
    assert client.get("/api/v1/log/events", params={"after": "-1"}).status_code == 422
    assert client.get("/api/v1/log/events", params={"wait": "maybe"}).status_code == 422
    assert client.get("/api/v1/log/events", params={"projects": "Bad Name"}).status_code == 422
    assert stream(client, after=head, wait="false") == [{"heartbeat": True, "head": head, "position": head}]


def test_a_registry_that_follows_no_one_says_so(client):
    assert client.get("/api/v1/follow").status_code == 404


# --- an in-process follower of the `client` fixture's registry ---

def follower_settings(tmp_path, **follow) -> Settings:
    return Settings(data_dir=tmp_path / "follower", outbound_allow=LOOPBACK, follow=FollowConfig(
        url=LEADER, username="admin", password=ADMIN_PASSWORD, **follow))


@contextlib.contextmanager
def running_follower(settings: Settings, leader_client):
    services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    services.leader_client = lambda: contextlib.nullcontext(leader_client)
    try:
        with TestClient(create_app(services)) as follower:
            follower.auth = ("admin", ADMIN_PASSWORD)
            yield services, follower
    finally:
        services.close()


def caught_up(services, leader_services) -> bool:
    status = services.follow_state.status()
    return status is not None and status.position >= leader_services.log_store.head() and \
        min(services.projections.positions().values(), default=0) >= services.log_store.head()


def test_a_follower_ships_the_log_serves_reads_and_refuses_writes(client, services, tmp_path):
    digest, manifest = push_image(client, "team/app", "1", seed="f")
    settings = follower_settings(tmp_path)
    first = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    assert first.log_store.head() == 0  # its first start wrote nothing: no admin, no library project
    first.close()
    with running_follower(settings, client) as (follower_services, follower):
        wait_until(lambda: caught_up(follower_services, services), what="the follower caught up")
        assert follower_services.log_store.read(0, 100_000) == services.log_store.read(0, 100_000)
        for path in ("/api/v1/projects", "/api/v1/repositories", "/api/v1/repositories/team/app/tags",
                     "/api/v1/audit-logs", "/v2/_catalog", "/v2/team/app/tags/list"):
            assert follower.get(path).json() == client.get(path).json(), path
        pulled = follower.get(f"/v2/team/app/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
        assert pulled.status_code == 200 and pulled.content == manifest
        assert follower.get("/api/v1/follow", auth=None).status_code == 401
        status = follower.get("/api/v1/follow").json()
        assert status == {"leader": LEADER, "state": "following", "position": services.log_store.head(),
                          "leader_head": services.log_store.head(), "lag_events": 0, "lag_seconds": 0,
                          "last_error": None}
        # writes: refused, naming the leader, on every surface
        refused = follower.post("/api/v1/projects", json={"name": "elsewhere"})
        assert refused.status_code == 403 and refused.json()["leader"] == LEADER
        assert LEADER in refused.json()["detail"]
        upload = follower.post("/v2/team/app/blobs/uploads/")
        assert upload.status_code == 403 and upload.json()["errors"][0]["code"] == "DENIED"
        assert LEADER in upload.json()["errors"][0]["message"]
        assert follower.post("/api/v2.0/projects", json={"project_name": "x"}).status_code == 403
        # a failed login is refused as anywhere (its counters are local), not as a write
        assert follower.get("/api/v1/users/current", auth=("admin", "wrong")).status_code == 401
        with pytest.raises(FollowerReadOnlyError):
            follower_services.admin.create_project("sneaky", True, RequestContext("admin", "t"))
        # the leader goes on; the follower follows
        later, _ = push_image(client, "team/app", "2", seed="g")
        wait_until(lambda: follower.get("/v2/team/app/manifests/2").status_code == 200, what="tag 2 shipped")
        assert follower.get("/v2/team/app/manifests/2").headers["docker-content-digest"] == later
    # a process given its data without --follow (a command line) still may not write
    local = bootstrap(replace(settings, follow=FollowConfig()), hasher=Argon2SecretHasher(fast=True))
    try:
        with pytest.raises(FollowerReadOnlyError, match=LEADER):
            local.admin.create_project("sneaky", True, RequestContext("admin", "t"))
    finally:
        local.close()


def image_digests(manifest: bytes) -> set[str]:
    doc = orjson.loads(manifest)
    return {digest_of(manifest), doc["config"]["digest"], *(layer["digest"] for layer in doc["layers"])}


def stored(services) -> set[str]:
    return {blob.digest for blob in services.blobs.stored_blobs()}


def test_the_leaders_garbage_collection_deletes_the_followers_bytes_but_not_those_pushed_again(
        client, services, tmp_path):
    settings = follower_settings(tmp_path)
    with running_follower(settings, client) as (follower_services, _):
        gone = image_digests(push_image(client, "team/gone", "1", seed="gone")[1])
        back = image_digests(push_image(client, "team/back", "1", seed="back")[1])
        kept = image_digests(push_image(client, "team/kept", "1", seed="kept")[1])
        wait_until(lambda: caught_up(follower_services, services), what="the follower caught up")
        assert gone | back | kept <= stored(follower_services)
        start = follower_services.log_store.head()
    # While the follower is down: both repositories deleted, collected, one pushed again at once.
    for name in ("team/gone", "team/back"):
        assert client.delete(f"/api/v1/repositories/{name}").status_code == 204
    time.sleep(1.1)  # nothing touched in the last second is collected
    services.gc_jobs.start(0, False, "cli", RequestContext("admin", "test-gc"), background=False)
    assert (gone | back).isdisjoint(stored(services))
    push_image(client, "team/back", "1", seed="back")
    assert back <= stored(services)
    # So the follower reads Collected and the re-push in one batch: the re-push finds the bytes
    # still stored (it fetches nothing), and deleting them after the batch would lose them.
    assert services.log_store.head() - start < log_stream.BATCH
    collected = [e for e in services.log_store.read(start, log_stream.BATCH) if e.topic.endswith("Blob.Collected")]
    assert len(collected) == len(gone | back)
    with running_follower(settings, client) as (follower_services, follower):
        wait_until(lambda: caught_up(follower_services, services), what="the follower caught up again")
        assert gone.isdisjoint(stored(follower_services))
        assert back | kept <= stored(follower_services)
        assert stored(follower_services) == stored(services)
        assert follower_services.log_store.read(0, 100_000) == services.log_store.read(0, 100_000)
        pulled = follower.get("/v2/team/back/manifests/1", headers={"Accept": OCI_MANIFEST})
        assert pulled.status_code == 200 and pulled.headers["docker-content-digest"] in back
        for digest in back - {pulled.headers["docker-content-digest"]}:
            assert digest_of(follower.get(f"/v2/team/back/blobs/{digest}").content) == digest
        assert follower.get("/v2/team/gone/manifests/1").status_code == 404


def test_a_second_shipper_finding_its_events_applied_goes_on_and_one_finding_others_stops(
        client, services, tmp_path):
    """Two shippers at once (worker processes, nodes on one database) are harmless: the second
    finds the very events applied; different events at those positions are a divergence."""
    push_image(client, "team/app", "1", seed="twice")
    with running_follower(follower_settings(tmp_path), client) as (follower_services, follower):
        wait_until(lambda: caught_up(follower_services, services), what="the follower caught up")
        second = LogShipper(follower_services)
        last = services.log_store.read(services.log_store.head() - 3, 3)
        second._apply(last, last[-1].position)
        assert follower_services.follow_state.status().state == "following"
        forged = [replace(last[-1], state=b"{}")]
        with pytest.raises(Diverging, match="out of order"):
            second._apply(forged, forged[-1].position)
        assert follower_services.follow_state.claim("another process", 5) is False  # the running one holds it


def test_a_follower_of_some_projects_takes_theirs_only(client, services, tmp_path):
    push_image(client, "team/app", "1", seed="p")
    push_image(client, "race/app", "1", seed="q")
    with running_follower(follower_settings(tmp_path, projects=("team",)), client) as (follower_services, follower):
        wait_until(lambda: caught_up(follower_services, services), what="the follower caught up")
        assert follower.get("/v2/team/app/tags/list").json()["tags"] == ["1"]
        assert follower.get("/v2/race/app/tags/list").status_code == 404
        assert follower.get("/api/v1/follow").json()["lag_events"] == 0


def test_bytes_that_do_not_match_their_digest_stop_the_follower(client, services, tmp_path):
    digest, _ = push_image(client, "team/app", "1", seed="bad")
    blob_path(services.settings.blob_root, digest).write_bytes(b"tampered")
    with running_follower(follower_settings(tmp_path), client) as (follower_services, follower):
        wait_until(lambda: (s := follower_services.follow_state.status()) and s.state == "stopped",
                   what="the follower stopped")
        status = follower.get("/api/v1/follow").json()
        assert status["state"] == "stopped"
        assert digest in status["last_error"] and "do not match" in status["last_error"]
        assert follower_services.blobs.stat(digest) is None
        # the events before it were applied, nothing from the one that needs those bytes on
        applied = follower_services.log_store.read(0, 100_000)
        assert applied == services.log_store.read(0, len(applied))
        assert applied and all(digest.encode() not in e.state for e in applied)
        assert follower.get(f"/v2/team/app/manifests/{digest}").status_code == 404


class CraftedLeader(BaseHTTPRequestHandler):
    """Serves a stream whose second event goes back in the log."""
    lines: list[bytes] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"".join(self.lines)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_events_out_of_order_stop_the_follower(client, services, tmp_path):
    push_image(client, "team/app", "1", seed="o")
    events = services.log_store.read(0, 3)
    lines = [orjson.dumps({**e.to_json(), "blobs": []}) + b"\n" for e in (events[0], events[2], events[1])]
    CraftedLeader.lines = lines + [orjson.dumps({"heartbeat": True, "head": 3, "position": 3}) + b"\n"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), CraftedLeader)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = follower_settings(tmp_path)
        settings = replace(settings, follow=replace(settings.follow, url=f"http://127.0.0.1:{server.server_port}"))
        services_f = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
        try:
            with TestClient(create_app(services_f)) as follower:
                follower.auth = ("admin", ADMIN_PASSWORD)
                status = wait_until(lambda: (s := services_f.follow_state.status()) and s.state == "stopped" and s,
                                    what="the follower stopped")
                assert "out of order" in status.last_error and f"position {events[1].position}" in status.last_error
                assert services_f.log_store.head() == 0  # nothing of the bad batch was applied
        finally:
            services_f.close()
    finally:
        server.shutdown()
