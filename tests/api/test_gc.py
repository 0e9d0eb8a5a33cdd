"""Deletion, undeletion and online garbage collection through the APIs, on SQLite and
PostgreSQL: what is collected and what stays, the fence between collection and writes reusing
the same bytes, runs as events and their history."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone

import pytest

from adapters.storage.paths import blob_path
from domain.blob import Blob
from domain.collector import Cutoffs
from domain.context import RequestContext
from tests.support.auth import PASSWORD, create_user, grant
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest, push_blob

pytestmark = pytest.mark.both_databases

SHARED_LAYER = b"shared base layer"


def push(client, name: str, tag: str, seed: str, shared: bool = True) -> dict:
    """An image with its own config and layer (and the shared layer); returns its digests."""
    config = json.dumps({"seed": seed}).encode()
    own = f"own layer of {seed}".encode()
    layers = [SHARED_LAYER, own] if shared else [own]
    for blob in (config, *layers):
        push_blob(client, name, blob)
    manifest = image_manifest(config, layers)
    response = client.put(f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return {"manifest": digest_of(manifest), "config": digest_of(config), "own": digest_of(own),
            "shared": digest_of(SHARED_LAYER), "bytes": manifest}


def pulls(client, name: str, tag: str) -> bool:
    """Pulls the image the way a client does and checks every blob's bytes against its digest."""
    response = client.get(f"/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    if response.status_code != 200:
        return False
    doc = response.json()
    for descriptor in (doc["config"], *doc["layers"]):
        blob = client.get(f"/v2/{name}/blobs/{descriptor['digest']}")
        if blob.status_code != 200 or digest_of(blob.content) != descriptor["digest"]:
            return False
    return True


def stored(services) -> set[str]:
    return {blob.digest for blob in services.blobs.stored_blobs()}


def collect(services, grace: int = 0, dry_run: bool = False) -> dict:
    """A run as `portlog gc run` does it; waits out the one second nothing is collected in."""
    time.sleep(1.1)
    run, _ = services.gc_jobs.start(grace, dry_run, "cli", RequestContext("admin", "test-gc"), background=False)
    services.projections.catch_up()
    row = services.gc.run_by_uuid(str(run.id))
    assert row.status == "succeeded", row.error
    return {"blobs": row.blobs, "bytes": row.bytes, "orphans": row.orphans}


def test_collection_frees_what_a_deleted_repository_alone_held(client, services):
    gone = push(client, "team/gone", "v1", "gone")
    kept = push(client, "team/kept", "v1", "kept")
    assert client.delete("/api/v1/repositories/team/gone").status_code == 204
    assert client.get("/v2/team/gone/manifests/v1").status_code == 404
    assert "team/gone" not in client.get("/v2/_catalog").json()["repositories"]

    freed = collect(services)

    only_gone = {gone["manifest"], gone["config"], gone["own"]}
    assert freed["blobs"] == 3
    assert freed["bytes"] == sum(services.blobs.stat(d) or 0 for d in only_gone) + len(gone["bytes"]) \
        + len(json.dumps({"seed": "gone"})) + len(b"own layer of gone")
    assert only_gone.isdisjoint(stored(services))
    assert pulls(client, "team/kept", "v1")
    assert {kept["manifest"], kept["config"], kept["own"], kept["shared"]} <= stored(services)
    # What storage holds is exactly what the reference read model says must stay.
    assert stored(services) == set(services.references.kept())


def test_a_dry_run_reports_what_the_real_run_then_frees(client, services):
    push(client, "team/a", "v1", "a")
    push(client, "team/b", "v1", "b")
    client.delete("/api/v1/repositories/team/a")
    before = stored(services)
    dry = collect(services, dry_run=True)
    assert stored(services) == before
    real = collect(services)
    assert dry == real and real["blobs"] == 3


def test_the_grace_period_spares_recently_unreferenced_content(client, services):
    push(client, "team/a", "v1", "a")
    client.delete("/api/v1/repositories/team/a")
    assert collect(services, grace=3600)["blobs"] == 0
    assert collect(services, grace=0)["blobs"] == 4  # manifest, config, own and shared layer


def test_an_untagged_upload_is_collected_after_the_grace_period(client, services):
    digest = push_blob(client, "team/app", b"uploaded, never referenced")
    assert collect(services)["blobs"] == 1
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 404
    assert digest not in stored(services)


def test_delete_then_push_identical_content_under_any_name_pulls(client, services):
    first = push(client, "team/app", "v1", "same")
    client.delete("/api/v1/repositories/team/app")
    collect(services)
    for layer in (first["config"], first["own"], first["shared"]):
        assert client.head(f"/v2/team/app/blobs/{layer}").status_code == 404  # so the client uploads
    again = push(client, "team/app", "v1", "same")
    other = push(client, "team/other", "v2", "same")
    assert again["manifest"] == other["manifest"] == first["manifest"]
    collect(services)
    assert pulls(client, "team/app", "v1") and pulls(client, "team/other", "v2")


def test_a_head_that_answered_200_stays_valid_for_the_push(client, services):
    image = push(client, "team/app", "v1", "x")
    assert client.delete(f"/v2/team/app/manifests/{image['manifest']}").status_code == 202
    # The layers are still linked to the repository, referenced by nothing: a pushing client
    # asks, hears 200, and will skip the uploads.
    for layer in (image["config"], image["own"], image["shared"]):
        assert client.head(f"/v2/team/app/blobs/{layer}").status_code == 200
    freed = collect(services)  # a collector runs between the HEADs and the manifest
    assert freed["blobs"] == 1  # the manifest's own bytes; the HEADed blobs are retained
    response = client.put("/v2/team/app/manifests/v1", content=image["bytes"], headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201
    assert pulls(client, "team/app", "v1")


def test_an_upload_waits_for_a_condemnation_then_stores_the_bytes_again(client, services):
    data = b"condemned, then uploaded again"
    digest = push_blob(client, "team/a", data)
    client.delete("/api/v1/repositories/team/a")
    time.sleep(1.1)
    collector, ctx = services.collector, RequestContext("gc", "test")
    cutoffs = Cutoffs.at(datetime.now(timezone.utc), 0)
    assert list(collector._condemn([digest], cutoffs, "test-run", ctx)) == [digest]
    results = []
    upload = threading.Thread(target=lambda: results.append(client.post(
        f"/v2/team/b/blobs/uploads/?digest={digest}", content=data).status_code))
    upload.start()
    time.sleep(0.5)
    assert not results  # waiting: the bytes are about to go
    collector._delete_bytes({digest: len(data)}, "test-run", ctx)
    upload.join(timeout=30)
    assert results == [201]
    assert services.blobs.stat(digest) == len(data)
    assert client.get(f"/v2/team/b/blobs/{digest}").content == data


def test_a_condemnation_fails_when_a_write_retained_the_blob_after_the_candidates_were_read(client, services):
    digest = push_blob(client, "team/a", b"to be retained")
    client.delete("/api/v1/repositories/team/a")
    time.sleep(1.1)
    services.registry.update(Blob.create_id(digest), lambda b: b.retain("upload", RequestContext()),
                             create=lambda: Blob.create(digest, RequestContext()))
    assert collect(services)["blobs"] == 0
    assert services.blobs.stat(digest) is not None


def test_a_run_finishes_what_an_interrupted_run_condemned(client, services):
    digest = push_blob(client, "team/a", b"half collected")
    time.sleep(1.1)
    cutoffs = Cutoffs.at(datetime.now(timezone.utc), 0)
    services.collector._condemn([digest], cutoffs, "crashed-run", RequestContext("gc", "test"))
    services.projections.catch_up()
    assert services.blobs.stat(digest) is not None  # the crashed run never deleted the bytes
    assert collect(services, grace=3600)["blobs"] == 1
    assert services.blobs.stat(digest) is None


def test_stored_bytes_no_event_knows_are_removed_once_old(client, services):
    digest = digest_of(b"orphan")
    services.blobs.put(digest, b"orphan")  # as if a writer died before recording its event
    assert collect(services)["orphans"] == 0  # fresh: a writer may be about to record it
    old = time.time() - 7200
    os.utime(blob_path(services.blobs.root, digest), (old, old))
    assert collect(services)["orphans"] == 1
    assert services.blobs.stat(digest) is None


# Undelete


def test_a_repository_undeleted_before_collection_is_whole_again(client, services):
    image = push(client, "team/app", "v1", "x")
    client.put("/v2/team/app/manifests/latest", content=image["bytes"], headers={"Content-Type": OCI_MANIFEST})
    client.delete("/api/v1/repositories/team/app")
    listed = client.get("/api/v1/projects/team/deleted-repositories").json()
    assert [r["name"] for r in listed] == ["team/app"] and listed[0]["deleted_by"] == "admin"
    response = client.post("/api/v1/repositories/team/app/undelete")
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == {"latest": image["manifest"], "v1": image["manifest"]}
    assert pulls(client, "team/app", "v1") and pulls(client, "team/app", "latest")
    assert "team/app" in client.get("/v2/_catalog").json()["repositories"]
    assert client.get("/api/v1/projects/team/deleted-repositories").json() == []


def test_undelete_is_refused_once_collection_took_the_bytes(client, services):
    push(client, "team/app", "v1", "x")
    client.delete("/api/v1/repositories/team/app")
    collect(services)
    response = client.post("/api/v1/repositories/team/app/undelete")
    assert response.status_code == 409
    assert "garbage-collected" in response.json()["detail"]
    assert client.get("/v2/team/app/manifests/v1").status_code == 404


def test_undelete_is_refused_once_the_name_was_pushed_to_again(client, services):
    push(client, "team/app", "v1", "old")
    client.delete("/api/v1/repositories/team/app")
    push(client, "team/app", "v2", "new")
    assert client.post("/api/v1/repositories/team/app/undelete").status_code == 409
    assert client.get("/v2/team/app/tags/list").json()["tags"] == ["v2"]


def test_an_undelete_protects_its_content_from_a_collection(client, services):
    image = push(client, "team/app", "v1", "x")
    client.delete("/api/v1/repositories/team/app")
    client.post("/api/v1/repositories/team/app/undelete")
    assert collect(services)["blobs"] == 0
    assert pulls(client, "team/app", "v1") and image["manifest"] in stored(services)


def test_a_deleted_tag_comes_back_even_after_its_manifest_was_deleted(client, services):
    image = push(client, "team/app", "v1", "x")
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202  # the tag only
    response = client.post("/api/v1/repositories/team/app/tags/v1/undelete")
    assert response.json() == {"tag": "v1", "digest": image["manifest"]}
    assert client.delete(f"/v2/team/app/manifests/{image['manifest']}").status_code == 202
    assert client.get("/v2/team/app/manifests/v1").status_code == 404
    response = client.post("/api/v1/repositories/team/app/tags/v1/undelete")
    assert response.status_code == 200, response.text
    assert pulls(client, "team/app", "v1")


def test_a_deleted_project_comes_back_with_its_members(client, services):
    client.post("/api/v1/projects", json={"name": "gone"})
    create_user(client, "dev")
    grant(client, "gone", "dev", "developer")
    assert client.delete("/api/v1/projects/gone").status_code == 204
    assert client.get("/api/v1/projects/gone").status_code == 404
    assert client.post("/api/v1/projects/gone/undelete", auth=("dev", PASSWORD)).status_code == 403
    response = client.post("/api/v1/projects/gone/undelete")
    assert response.status_code == 200, response.text
    members = client.get("/api/v1/projects/gone/members").json()
    assert {(m["principal"], m["role"]) for m in members} >= {("dev", "developer")}
    assert client.post("/api/v1/projects/gone/undelete").status_code == 409
    dev = client.get("/api/v1/projects/gone", auth=("dev", PASSWORD))
    assert dev.status_code == 200


def test_only_maintainers_delete_and_only_admins_collect(client, services):
    push(client, "team/app", "v1", "x")
    create_user(client, "dev")
    grant(client, "team", "dev", "developer")
    assert client.delete("/api/v1/repositories/team/app", auth=("dev", PASSWORD)).status_code == 403
    assert client.post("/api/v1/gc/runs", json={}, auth=("dev", PASSWORD)).status_code == 403
    assert client.get("/api/v1/gc/runs", auth=("dev", PASSWORD)).status_code == 403
    assert pulls(client, "team/app", "v1")


# Runs through the API, their events and the schedule


def test_runs_through_the_api_are_recorded_with_their_history(client, services):
    push(client, "team/a", "v1", "a")
    client.delete("/api/v1/repositories/team/a")
    time.sleep(1.1)
    response = client.post("/api/v1/gc/runs", json={"grace_period_seconds": 0})
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] in ("running", "succeeded") and run["trigger"] == "manual"
    deadline = time.monotonic() + 30
    while run["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        run = client.get(f"/api/v1/gc/runs/{run['id']}").json()
    assert run["status"] == "succeeded" and run["blobs"] == 4 and run["bytes"] > 0
    assert client.get("/api/v1/gc/runs").json()[0]["id"] == run["id"]
    types = [e["type"] for e in client.get("/api/v1/events?limit=1000").json()]
    assert "io.portlog.gc.started" in types and "io.portlog.gc.completed" in types
    assert client.get("/api/v1/gc/runs/999999").status_code == 404
    assert client.post("/api/v1/gc/runs", json={"grace_period_seconds": -1}).status_code == 422
    assert client.post("/api/v1/gc/runs", json={"dry_run": "yes"}).status_code == 422


def test_runs_are_numbered_in_order_apart_from_their_log_positions(client, services):
    for i in range(3):
        services.gc_jobs.start(0, True, "cli", RequestContext("admin", "t"), background=False)
        push(client, "team/a", f"v{i}", f"n{i}")  # log positions between the runs
    services.projections.catch_up()
    listed = client.get("/api/v1/gc/runs").json()
    assert [run["number"] for run in listed] == [3, 2, 1]  # newest first
    assert [run["id"] for run in listed] != [3, 2, 1]
    second_page = client.get("/api/v1/gc/runs", params={"page": 2, "page_size": 2}).json()
    assert [run["number"] for run in second_page] == [1]
    assert client.get(f"/api/v1/gc/runs/{listed[1]['id']}").json()["number"] == 2


def test_the_schedule_is_validated_and_kept(client, services):
    unset = client.get("/api/v1/gc/schedule").json()
    assert unset["cron"] is None and unset["grace_period_seconds"] == services.settings.gc.grace_period_seconds
    response = client.put("/api/v1/gc/schedule", json={"cron": "61 * * * *"})
    assert response.status_code == 422 and "minute" in response.json()["detail"]
    response = client.put("/api/v1/gc/schedule", json={"cron": "0 0 3 * * *", "grace_period_seconds": 7200})
    assert response.status_code == 200, response.text
    assert client.get("/api/v1/gc/schedule").json()["cron"] == "0 0 3 * * *"
    assert client.get("/api/v1/gc/schedule").json()["grace_period_seconds"] == 7200
    client.put("/api/v1/gc/schedule", json={"cron": None})
    assert client.get("/api/v1/gc/schedule").json()["cron"] is None


# Harbor's GC API, driven by the unmodified harborapi client



@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore::DeprecationWarning:harborapi")
async def test_harbor_gc_api_starts_runs_and_keeps_the_schedule(client, services):
    import httpx
    from harborapi import HarborAsyncClient
    from harborapi.models import Schedule, ScheduleObj

    from tests.support.server import ADMIN_PASSWORD

    push(client, "team/a", "v1", "a")
    client.delete("/api/v1/repositories/team/a")
    harbor = HarborAsyncClient(url="http://testserver/api/v2.0", username="admin", secret=ADMIN_PASSWORD)
    harbor.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app))
    try:
        location = await harbor.create_gc_schedule(Schedule(schedule=ScheduleObj(type="Manual"),
                                                            parameters={"dry_run": True}))
        gc_id = int(location.rsplit("/", 1)[1])
        job = await harbor.get_gc_job(gc_id)
        deadline = time.monotonic() + 30
        while job.job_status == "Running" and time.monotonic() < deadline:
            time.sleep(0.1)
            job = await harbor.get_gc_job(gc_id)
        assert job.job_status == "Success" and job.job_kind == "MANUAL"
        assert json.loads(job.job_parameters)["dry_run"] is True
        assert [j.id for j in await harbor.get_gc_jobs()] == [gc_id]
        log = await harbor.get_gc_log(gc_id, as_list=False)
        assert "would free" in log and "Success" in log
        await harbor.update_gc_schedule(Schedule(schedule=ScheduleObj(type="Daily"), parameters={}))
        schedule = await harbor.get_gc_schedule()
        assert schedule.schedule.type.value == "Daily" and schedule.schedule.cron == "0 0 0 * * *"
        assert schedule.schedule.next_scheduled_time > datetime.now(timezone.utc)
    finally:
        await harbor.client.aclose()
    assert client.get("/api/v1/gc/schedule").json()["cron"] == "0 0 0 * * *"
    bad = client.put("/api/v2.0/system/gc/schedule", json={"schedule": {"type": "Custom", "cron": "x y"}})
    assert bad.status_code in (400, 422)
    assert client.get("/api/v2.0/system/gc", auth=None).status_code == 401


def test_the_scheduler_starts_each_slot_once(client, services):
    from background import gc_jobs, scheduler

    client.put("/api/v1/gc/schedule", json={"cron": "* * * * * *", "grace_period_seconds": 0})
    checked = datetime.now(timezone.utc)
    time.sleep(1.1)
    second_node = gc_jobs.GcJobs(services)  # another node racing for the same slot
    now = datetime.now(timezone.utc)  # one clock for both: on a busy machine a second may pass between them
    scheduler.start_due_gc(services, checked, now)
    original, services.gc_jobs = services.gc_jobs, second_node
    try:
        scheduler.start_due_gc(services, checked, now)
    finally:
        services.gc_jobs = original
    services.projections.catch_up()
    runs, total = services.gc.runs(0, 10)
    assert total == 1 and runs[0].trigger == "schedule" and runs[0].status == "succeeded"


def test_delete_untagged_removes_untagged_manifests_but_not_index_children_or_tagged_ones(client, services):
    from tests.support.oci import OCI_INDEX, descriptor

    untagged = push(client, "team/app", "v1", "first")
    push(client, "team/app", "v1", "second")  # v1 moves: the first manifest is untagged now
    child = push(client, "team/multi", "tmp", "child")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, child["bytes"])]}).encode()
    assert client.put("/v2/team/multi/manifests/multi", content=index,
                      headers={"Content-Type": OCI_INDEX}).status_code == 201
    client.delete("/v2/team/multi/manifests/tmp")  # the child is untagged, but listed by the index
    time.sleep(1.1)
    run, _ = services.gc_jobs.start(0, True, "cli", RequestContext("admin", "t"), background=False,
                                    delete_untagged=True)
    services.projections.catch_up()
    assert services.gc.run_by_uuid(str(run.id)).untagged == 1  # dry: counted, nothing deleted
    assert client.head(f"/v2/team/app/manifests/{untagged['manifest']}").status_code == 200
    run, _ = services.gc_jobs.start(0, False, "cli", RequestContext("admin", "t"), background=False,
                                    delete_untagged=True)
    services.projections.catch_up()
    assert services.gc.run_by_uuid(str(run.id)).untagged == 1
    assert client.head(f"/v2/team/app/manifests/{untagged['manifest']}").status_code == 404
    assert pulls(client, "team/app", "v1")
    assert client.head(f"/v2/team/multi/manifests/{child['manifest']}").status_code == 200
    collect(services)  # and its bytes go with a later run
    assert untagged["manifest"] not in stored(services) and untagged["own"] not in stored(services)


def test_a_deleted_tag_whose_layers_were_collected_is_refused_clearly(client, services):
    image = push(client, "team/app", "v1", "x", shared=False)
    client.delete(f"/v2/team/app/manifests/{image['manifest']}")  # the layers stay linked, unreferenced
    collect(services)
    response = client.post("/api/v1/repositories/team/app/tags/v1/undelete")
    assert response.status_code == 409 and "garbage-collected" in response.json()["detail"]
