"""Replication against a real peer — CNCF Distribution (the Debian `docker-registry`) — through
Harbor's API: test connection, a push-based execution with namespace rewrite and a multi-arch
index, a second run that settles, the peer killed mid-execution and back (tasks retry and finish),
a stop, pull-based executions, and signatures both ways (Distribution lists them under referrers
tags, having no referrers API)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone

import httpx
import pytest

from adapters.registry_client import RegistryClient, referrers_tag
from background.replication_worker import POLL_SECONDS, run_replication
from tests.conftest import DISTRIBUTION_CREDENTIALS
from tests.support.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
)
from tests.support.outbound import LOOPBACK_ALLOWED
from tests.support.waiting import wait_until

KEY = "a-test-secret-key-of-at-least-32-characters"
SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
USER, PASSWORD = DISTRIBUTION_CREDENTIALS


@pytest.fixture
def settings(settings):
    return replace(settings, secret_key=KEY)


def add_endpoint(client, peer, name: str = "peer", password: str = PASSWORD) -> int:
    response = client.post("/api/v2.0/registries", json={
        "name": name, "url": peer.url, "type": "docker-registry",
        "credential": {"type": "basic", "access_key": USER, "access_secret": password}})
    assert response.status_code == 201, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def add_policy(client, name: str = "out", **fields) -> int:
    response = client.post("/api/v2.0/replication/policies", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def execute(client, policy_id: int) -> int:
    response = client.post("/api/v2.0/replication/executions", json={"policy_id": policy_id})
    assert response.status_code == 201, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def wait_done(client, execution_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        execution = client.get(f"/api/v2.0/replication/executions/{execution_id}").json()
        if execution["status"] != "InProgress" or time.monotonic() > deadline:
            return execution
        time.sleep(0.2)


def tasks(client, execution_id: int) -> list[dict]:
    return client.get(f"/api/v2.0/replication/executions/{execution_id}/tasks").json()


def peer_client(peer) -> RegistryClient:
    return RegistryClient(peer.url, USER, PASSWORD, outbound=LOOPBACK_ALLOWED)


def test_test_connection_tells_good_from_bad(client, distribution_with_auth):
    peer = distribution_with_auth
    form = {"url": peer.url, "type": "docker-registry", "access_key": USER}
    assert client.post("/api/v2.0/registries/ping", json={**form, "access_secret": PASSWORD}).status_code == 200
    wrong = client.post("/api/v2.0/registries/ping", json={**form, "access_secret": "nope"})
    assert wrong.status_code == 400 and "failed to ping" in wrong.text
    registry_id = add_endpoint(client, peer)
    assert client.post("/api/v2.0/registries/ping", json={"id": registry_id}).status_code == 200
    nowhere = client.post("/api/v2.0/registries/ping", json={"url": "http://127.0.0.1:9", "type": "docker-registry"})
    assert nowhere.status_code == 400


def test_push_based_replication_copies_images_and_indexes_and_settles(client, services, distribution_with_auth):
    peer = distribution_with_auth
    image, _ = push_image(client, "team/app", "v1", seed="replicated")
    children = [push_image(client, "team/app", f"tmp-{arch}", seed=arch)[1] for arch in ("amd64", "arm64")]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, c) for c in children]}).encode()
    assert client.put("/v2/team/app/manifests/multi", content=index,
                      headers={"Content-Type": OCI_INDEX}).status_code == 201
    push_image(client, "team/app", "skip-me", seed="not selected")
    registry_id = add_endpoint(client, peer)
    policy_id = add_policy(client, dest_registry={"id": registry_id}, dest_namespace="mirror",
                           filters=[{"type": "name", "value": "team/**"}, {"type": "tag", "value": "{v1,multi}"}])
    execution = wait_done(client, execute(client, policy_id))
    assert execution["status"] == "Succeed" and execution["total"] == 2 and execution["succeed"] == 2, execution
    remote = peer_client(peer)
    assert sorted(remote.tags("mirror/app")) == ["multi", "v1"]
    assert remote.manifest_digest("mirror/app", "v1") == image
    assert remote.manifest_digest("mirror/app", "multi") == digest_of(index)
    for child in children:
        assert remote.manifest_digest("mirror/app", digest_of(child)) == digest_of(child)
    with remote.open_blob("mirror/app", digest_of(b"layer-replicated")) as stream:
        assert b"".join(stream) == b"layer-replicated"
    listed = tasks(client, execution["id"])
    assert {t["dst_resource"] for t in listed} == {"mirror/app:v1", "mirror/app:multi"}
    assert all(t["status"] == "Succeed" and t["attempts"] == 1 and t["bytes"] > 0 for t in listed)
    again = wait_done(client, execute(client, policy_id))
    assert again["status"] == "Succeed"
    assert all(t["bytes"] == 0 for t in tasks(client, again["id"]))  # settled: nothing sent


def test_tasks_retry_while_the_peer_is_down_and_finish_when_it_is_back(client, services, distribution_with_auth):
    peer = distribution_with_auth
    push_image(client, "team/app", "v2", seed="across an outage")
    policy_id = add_policy(client, dest_registry={"id": add_endpoint(client, peer)})
    peer.kill()
    try:
        execution_id = execute(client, policy_id)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(t["attempts"] >= 1 and t["error"] for t in
                                                      tasks(client, execution_id)):
            time.sleep(0.2)
        [task] = tasks(client, execution_id)
        assert task["status"] == "Retrying" and ("unreachable" in task["error"].lower() or "refused" in task["error"])
    finally:
        peer.start()
    execution = wait_done(client, execution_id, timeout=60)
    assert execution["status"] == "Succeed", tasks(client, execution_id)
    [task] = tasks(client, execution_id)
    assert task["attempts"] >= 2
    assert peer_client(peer).manifest_digest("team/app", "v2") is not None


def test_stopping_an_execution_stops_its_tasks(client, services, distribution_with_auth):
    peer = distribution_with_auth
    config = b'{"big": true}'
    big = bytes(range(256)) * 4096 * 4  # 4 MiB at 64 KiB/s: a minute, unless stopped
    client.post(f"/v2/team/big/blobs/uploads/?digest={digest_of(config)}", content=config)
    client.post(f"/v2/team/big/blobs/uploads/?digest={digest_of(big)}", content=big)
    client.put("/v2/team/big/manifests/v1", content=image_manifest(config, [big]),
               headers={"Content-Type": OCI_MANIFEST})
    push_image(client, "team/big", "v2", seed="waits its turn")
    policy_id = add_policy(client, dest_registry={"id": add_endpoint(client, peer)}, speed=64,
                           filters=[{"type": "name", "value": "team/big"}])
    execution_id = execute(client, policy_id)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(t["status"] == "InProgress" for t in tasks(client, execution_id)):
        time.sleep(0.1)
    stopped_at = time.monotonic()
    assert client.put(f"/api/v2.0/replication/executions/{execution_id}", json={}).status_code == 200
    execution = wait_done(client, execution_id, timeout=30)
    assert execution["status"] == "Stopped" and time.monotonic() - stopped_at < 15
    assert {t["status"] for t in tasks(client, execution_id)} <= {"Stopped", "Succeed"}


def test_pull_based_replication_brings_images_in(client, services, distribution_with_auth):
    peer = distribution_with_auth
    remote = peer_client(peer)
    config, layer = b'{"from": "upstream"}', b"upstream layer"
    for blob in (config, layer):
        remote.push_blob("library/tool", digest_of(blob), len(blob), [blob])
    manifest = image_manifest(config, [layer])
    remote.put_manifest("library/tool", "1.0", manifest, OCI_MANIFEST)
    policy_id = add_policy(client, name="in", src_registry={"id": add_endpoint(client, peer)},
                           dest_namespace="team", filters=[{"type": "name", "value": "library/tool"}])
    execution = wait_done(client, execute(client, policy_id))
    assert execution["status"] == "Succeed", tasks(client, execution["id"])
    response = client.get("/v2/team/tool/manifests/1.0", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200 and response.content == manifest
    assert client.get(f"/v2/team/tool/blobs/{digest_of(layer)}").content == layer


def test_pull_based_replication_brings_the_signatures_a_referrers_tag_lists(client, services,
                                                                           distribution_with_auth):
    """Distribution has no referrers API: a signing client (cosign, oras) lists the signatures
    of an image in an index under the image's referrers tag, and replication reads it there."""
    peer = distribution_with_auth
    remote = peer_client(peer)
    config, layer = b'{"signed": "upstream"}', b"signed upstream layer"
    for blob in (config, layer, b"{}", b"signature", b"deleted signature"):
        remote.push_blob("library/signed", digest_of(blob), len(blob), [blob])
    manifest = image_manifest(config, [layer])
    digest = remote.put_manifest("library/signed", "1.0", manifest, OCI_MANIFEST)
    signature, deleted = (signature_of(manifest, payload) for payload in (b"signature", b"deleted signature"))
    for artifact in (signature, deleted):
        put_as_another_client(peer, "library/signed", digest_of(artifact), artifact, OCI_MANIFEST)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(OCI_MANIFEST, artifact, artifactType=SIGNATURE) for artifact in (signature, deleted)]}).encode()
    put_as_another_client(peer, "library/signed", referrers_tag(digest), index, OCI_INDEX)
    remote.delete_manifest("library/signed", digest_of(deleted))  # the tag still lists it
    policy_id = add_policy(client, name="in-signed", src_registry={"id": add_endpoint(client, peer)},
                           dest_namespace="team", filters=[{"type": "name", "value": "library/signed"},
                                                           {"type": "tag", "value": "1.0"}])
    execution = wait_done(client, execute(client, policy_id))
    assert execution["status"] == "Succeed", tasks(client, execution["id"])
    referrers = client.get(f"/v2/team/signed/referrers/{digest}").json()["manifests"]
    assert [r["digest"] for r in referrers] == [digest_of(signature)]
    response = client.get(f"/v2/team/signed/manifests/{digest_of(signature)}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200 and response.content == signature
    assert client.get("/v2/team/signed/tags/list").json()["tags"] == ["1.0"]  # the tag filter left the index


def test_push_based_replication_lists_the_signatures_under_referrers_tags_at_the_target(client, services,
                                                                                    distribution_with_auth):
    """Distribution has no referrers API: the copy keeps the image's referrers tag there, also
    for a signature the target held without listing it (copied before the tag was kept)."""
    peer = distribution_with_auth
    remote = peer_client(peer)
    digest, manifest = push_image(client, "team/signed", "v1", seed="signed here")
    signatures = [signature_of(manifest, payload) for payload in (b"copied unlisted", b"new")]
    for signature, payload in zip(signatures, (b"copied unlisted", b"new")):
        push_blob(client, "team/signed", b"{}")
        push_blob(client, "team/signed", payload)
        assert client.put(f"/v2/team/signed/manifests/{digest_of(signature)}", content=signature,
                          headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    for blob in (b"{}", b"copied unlisted"):
        remote.push_blob("out/signed", digest_of(blob), len(blob), [blob])
    put_as_another_client(peer, "out/signed", digest_of(signatures[0]), signatures[0], OCI_MANIFEST)
    policy_id = add_policy(client, name="out-signed", dest_registry={"id": add_endpoint(client, peer)},
                           dest_namespace="out", filters=[{"type": "name", "value": "team/signed"}])
    execution = wait_done(client, execute(client, policy_id))
    assert execution["status"] == "Succeed", tasks(client, execution["id"])
    assert sorted(remote.referrers("out/signed", digest)) == sorted(digest_of(s) for s in signatures)
    assert sorted(remote.tags("out/signed")) == sorted(["v1", referrers_tag(digest)])


def signature_of(subject: bytes, payload: bytes) -> bytes:
    return image_manifest(b"{}", [payload], subject=descriptor(OCI_MANIFEST, subject), artifactType=SIGNATURE)


def put_as_another_client(peer, name: str, reference: str, data: bytes, media_type: str) -> None:
    """A PUT without RegistryClient's upkeep of referrers tags."""
    response = httpx.put(f"{peer.url}/v2/{name}/manifests/{reference}", content=data, auth=(USER, PASSWORD),
                         headers={"Content-Type": media_type})
    assert response.status_code == 201, response.text


def test_a_label_filter_copies_only_the_artifacts_that_carry_the_labels(client, services, distribution_with_auth):
    peer = distribution_with_auth
    remote = peer_client(peer)
    for tag in ("v1", "v2", "v3"):
        push_image(client, "team/labelled", tag, seed=f"label {tag}")
    label_ids = {}
    for name in ("release", "signed"):
        response = client.post("/api/v2.0/labels", json={"name": name, "scope": "g"})
        label_ids[name] = int(response.headers["Location"].rsplit("/", 1)[1])
    artifacts = "/api/v2.0/projects/team/repositories/labelled/artifacts"
    for tag, names in (("v1", ("release", "signed")), ("v2", ("release",))):
        for name in names:
            client.post(f"{artifacts}/{tag}/labels", json={"id": label_ids[name]}).raise_for_status()
    registry_id = add_endpoint(client, peer)
    policy_id = add_policy(client, name="released", dest_registry={"id": registry_id}, dest_namespace="labels",
                           filters=[{"type": "name", "value": "team/labelled"},
                                    {"type": "label", "value": ["release", "signed"], "decoration": "matches"}])
    assert client.get(f"/api/v2.0/replication/policies/{policy_id}").json()["filters"][1] == {
        "type": "label", "value": ["release", "signed"], "decoration": "matches"}
    execution = wait_done(client, execute(client, policy_id))
    assert execution["status"] == "Succeed" and execution["total"] == 1, tasks(client, execution["id"])
    assert remote.tags("labels/labelled") == ["v1"]

    # event-based: the label that makes the policy select an artifact copies it
    add_policy(client, name="on-label", dest_registry={"id": registry_id}, dest_namespace="labelled-live",
               trigger={"type": "event_based"}, filters=[{"type": "label", "value": ["signed"]}])
    client.post(f"{artifacts}/v3/labels", json={"id": label_ids["signed"]}).raise_for_status()
    assert wait_until(lambda: remote.manifest_digest("labelled-live/labelled", "v3"))
    assert remote.manifest_digest("labelled-live/labelled", "v2") is None
    pulled = client.post("/api/v2.0/replication/policies", json={
        "name": "pull-labelled", "src_registry": {"id": registry_id}, "filters": [{"type": "label", "value": "x"}]})
    assert pulled.status_code == 400 and "push-based policies only" in pulled.text



def test_event_based_replication_follows_pushes_and_deletes(client, services, distribution_with_auth):
    peer = distribution_with_auth
    remote = peer_client(peer)
    add_policy(client, name="events", dest_registry={"id": add_endpoint(client, peer)}, dest_namespace="live",
               deletion=True, trigger={"type": "event_based"}, filters=[{"type": "name", "value": "team/events"}])
    digest, _ = push_image(client, "team/events", "v1", seed="follows")
    push_image(client, "team/other", "v1", seed="not selected")
    assert wait_until(lambda: remote.manifest_digest("live/events", "v1")) == digest
    executions = client.get("/api/v2.0/replication/executions?trigger=event_based").json()
    assert executions and all(e["status"] in ("Succeed", "InProgress") for e in executions)
    assert client.delete(f"/v2/team/events/manifests/{digest}").status_code == 202
    assert wait_until(lambda: remote.manifest_digest("live/events", digest) is None)
    assert remote.manifest_digest("live/other", "v1") is None  # the filter held


def test_event_based_tasks_that_failed_while_the_peer_was_down_go_again_once_it_is_back(
        services, distribution_with_auth):
    """Without the background workers (no app lifespan): the test runs each attempt itself."""
    from starlette.testclient import TestClient

    from api.app import create_app
    from domain.context import SYSTEM
    from domain.registries import EndpointSettings
    from domain.replication import PolicySettings
    from domain.replication_runs import ReplicationTask
    from tests.support.server import ADMIN_PASSWORD

    peer = distribution_with_auth
    plain = TestClient(create_app(services))
    plain.auth = ("admin", ADMIN_PASSWORD)
    lost, _ = push_image(plain, "team/outage", "lost", seed="while down")
    push_image(plain, "team/outage", "after", seed="back")
    services.endpoints.add("peer", EndpointSettings(peer.url, "docker-registry", access_key=USER,
                                                    access_secret=PASSWORD), SYSTEM)
    services.policies.add("events", PolicySettings(None, "peer", trigger="event_based"), SYSTEM)
    replicator, worker = services.replicator, "test"

    def copy(tag: str) -> tuple[str, object]:
        execution, position = replicator.record("events", "event_based", [
            {"operation": "copy", "source_repository": "team/outage", "reference": tag,
             "destination_repository": "team/outage"}], SYSTEM)
        services.projections.wait_for(position)
        task = ReplicationTask.create_id(execution, 0)
        return replicator.run_task(task, worker, SYSTEM), task

    peer.kill()
    try:
        status, failed = copy("lost")
        assert status == "pending"  # retryable: the peer is unreachable
        task = services.registry.load(failed)
        assert task.retry_at is not None and task.attempts == 1
        # its attempts run out while the peer stays down: recorded as a final failure
        task.fail("still unreachable", False, datetime.now(timezone.utc), SYSTEM)
        assert task.status == "failed"
        services.projections.wait_for(services.registry.save(task)[-1].notification.id)
    finally:
        peer.start()
    assert copy("after")[0] == "succeeded"  # the peer is back: the failed task is retried
    services.projections.catch_up()
    assert services.registry.load(failed).status == "pending"
    assert replicator.run_task(failed, worker, SYSTEM) == "succeeded"
    assert peer_client(peer).manifest_digest("team/outage", "lost") == lost


def test_a_stop_ends_the_worker_pool_without_waiting_out_its_tick(services):
    """The pool waits up to a second for work; a stop (a server or an app shutting down) must
    not wait that second out."""
    stop = threading.Event()
    pool = threading.Thread(target=run_replication, args=(services, stop))
    pool.start()
    time.sleep(0.1)  # the pool is waiting for its next tick
    stopped_at = time.monotonic()
    stop.set()
    pool.join(timeout=5)
    assert not pool.is_alive()
    assert time.monotonic() - stopped_at < POLL_SECONDS / 2
