"""Project quotas: storage (a digest counted once per project) and artifact count, enforced at
push time with nothing partially stored, usage exact after deletes and garbage collection,
the warning threshold as an event, and Harbor's quota API through harborapi."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from domain.context import RequestContext
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest, push_blob
from tests.support.server import ADMIN_PASSWORD

pytestmark = pytest.mark.both_databases

BASE = b"a base layer the images share"


def image(seed: str, shared: bool = True) -> dict[str, bytes]:
    config = json.dumps({"seed": seed}).encode()
    layers = [BASE, f"layer of {seed}".encode()] if shared else [f"layer of {seed}".encode()]
    return {"config": config, "layers": layers, "manifest": image_manifest(config, layers)}


def size_of(img: dict) -> int:
    return len(img["config"]) + sum(len(layer) for layer in img["layers"]) + len(img["manifest"])


def push(client, name: str, tag: str, img: dict):
    """Pushes the blobs and the manifest; returns the manifest PUT's response (or the first refusal)."""
    for blob in (img["config"], *img["layers"]):
        response = client.post(f"/v2/{name}/blobs/uploads/?digest={digest_of(blob)}", content=blob)
        if response.status_code != 201:
            return response
    return client.put(f"/v2/{name}/manifests/{tag}", content=img["manifest"], headers={"Content-Type": OCI_MANIFEST})


def usage(client, project: str = "team") -> dict:
    return client.get(f"/api/v1/projects/{project}/quota").json()["usage"]


def set_quota(client, project: str = "team", **limits):
    response = client.put(f"/api/v1/projects/{project}/quota", json=limits)
    assert response.status_code == 200, response.text
    return response.json()


def test_usage_counts_a_digest_once_however_many_repositories_hold_it(client):
    a, b = image("a"), image("b")
    assert push(client, "team/one", "v1", a).status_code == 201
    assert push(client, "team/two", "v1", b).status_code == 201
    assert push(client, "team/three", "v1", a).status_code == 201  # the same image again
    assert usage(client) == {"storage_bytes": size_of(a) + size_of(b) - len(BASE), "artifacts": 3}


def test_a_push_exactly_at_the_limit_passes_and_one_byte_more_is_refused(client, services):
    a = image("a")
    set_quota(client, storage_bytes=size_of(a))
    assert push(client, "team/app", "v1", a).status_code == 201
    assert usage(client)["storage_bytes"] == size_of(a)
    extra = b"x"
    response = client.post(f"/v2/team/app/blobs/uploads/?digest={digest_of(extra)}", content=extra)
    assert response.status_code == 403
    [error] = response.json()["errors"]
    assert error["code"] == "DENIED" and "quota exceeded" in error["message"] and "team" in error["message"]
    assert error["detail"]["resource"] == "storage" and error["detail"]["limit"] == size_of(a)
    # Nothing of the refused push is stored or linked.
    assert services.blobs.stat(digest_of(extra)) is None
    assert client.head(f"/v2/team/app/blobs/{digest_of(extra)}").status_code == 404
    assert usage(client)["storage_bytes"] == size_of(a)
    # Blobs the project holds already cost nothing: the same image pushes again anywhere in it.
    assert push(client, "team/copy", "v1", a).status_code == 201


def test_a_chunked_upload_over_the_limit_is_refused_at_completion_and_removed(client, services):
    set_quota(client, storage_bytes=10)
    data = b"0123456789ABCDEF"
    location = client.post("/v2/team/app/blobs/uploads/").headers["Location"]
    location = client.patch(location, content=data[:8], headers={"Content-Type": "application/octet-stream"}
                            ).headers["Location"]
    response = client.put(f"{location}&digest={digest_of(data)}" if "?" in location else
                          f"{location}?digest={digest_of(data)}", content=data[8:])
    assert response.status_code == 403
    assert client.get(location).status_code == 404  # the upload is gone, not left half-done
    assert services.blobs.stat(digest_of(data)) is None


def test_the_artifact_count_limit(client):
    set_quota(client, artifacts=2)
    imgs = [image(str(i), shared=False) for i in range(3)]
    assert push(client, "team/app", "v1", imgs[0]).status_code == 201
    assert push(client, "team/app", "v2", imgs[1]).status_code == 201
    response = push(client, "team/app", "v3", imgs[2])
    assert response.status_code == 403 and response.json()["errors"][0]["detail"]["resource"] == "artifacts"
    assert client.get("/v2/team/app/manifests/v3").status_code == 404
    # A tag on a manifest the repository has adds no artifact.
    response = client.put("/v2/team/app/manifests/again", content=imgs[0]["manifest"],
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201
    assert usage(client)["artifacts"] == 2


def test_usage_is_exact_after_deletes_and_collection(client, services):
    a, b = image("a"), image("b")
    push(client, "team/one", "v1", a)
    push(client, "team/two", "v1", b)
    client.delete("/api/v1/repositories/team/one")
    assert usage(client) == {"storage_bytes": size_of(b), "artifacts": 1}
    time.sleep(1.1)
    services.gc_jobs.start(0, False, "cli", RequestContext("admin", "t"), background=False)
    services.projections.catch_up()
    assert usage(client) == {"storage_bytes": size_of(b), "artifacts": 1}
    assert usage(client)["storage_bytes"] == sum(services.blobs.stat(d) for d in services.quotas.held(
        "team", [digest_of(x) for x in (b["config"], *b["layers"], b["manifest"])]))
    # freed space is usable again
    set_quota(client, storage_bytes=size_of(b) + size_of(a))
    assert push(client, "team/one", "v1", a).status_code == 201


def test_a_mount_from_another_project_counts_and_within_the_project_does_not(client):
    blob = b"mounted bytes"
    push_blob(client, "a/source", blob)
    set_quota(client, storage_bytes=len(blob) - 1)
    response = client.post(f"/v2/team/app/blobs/uploads/?mount={digest_of(blob)}&from=a/source")
    assert response.status_code == 403  # would bring the bytes into the project
    set_quota(client, storage_bytes=len(blob))
    assert client.post(f"/v2/team/app/blobs/uploads/?mount={digest_of(blob)}&from=a/source").status_code == 201
    response = client.post(f"/v2/team/other/blobs/uploads/?mount={digest_of(blob)}&from=team/app")
    assert response.status_code == 201 and usage(client)["storage_bytes"] == len(blob)


def test_crossing_the_warning_threshold_and_a_refusal_are_events(client):
    a = image("a", shared=False)
    set_quota(client, storage_bytes=size_of(a) * 2, warning_percent=50)
    push(client, "team/app", "v1", a)
    assert push(client, "team/app", "v2", image("too big " * 40, shared=False)).status_code == 403
    events = client.get("/api/v1/events?limit=1000").json()
    warnings = [e for e in events if e["type"] == "io.portlog.project.quota_warning"]
    exceeded = [e for e in events if e["type"] == "io.portlog.project.quota_exceeded"]
    assert len(warnings) == 1 and warnings[0]["data"]["resource"] == "storage"
    assert len(exceeded) == 1 and exceeded[0]["data"]["repository"] == "team/app"


def test_only_administrators_set_quotas_and_bad_limits_are_refused(client):
    from tests.support.auth import PASSWORD, create_user, grant

    create_user(client, "owner")
    grant(client, "team", "owner", "project_admin")
    assert client.put("/api/v1/projects/team/quota", json={"storage_bytes": 5},
                      auth=("owner", PASSWORD)).status_code == 403
    assert client.get("/api/v1/projects/team/quota", auth=("owner", PASSWORD)).status_code == 200
    assert client.put("/api/v1/projects/team/quota", json={"storage_bytes": -3}).status_code == 422
    assert client.put("/api/v1/projects/team/quota", json={"warning_percent": 0}).status_code == 422



@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore::DeprecationWarning:harborapi")
async def test_harbor_quota_api(client):
    from harborapi import HarborAsyncClient
    from harborapi.models import ProjectReq, QuotaUpdateReq, ResourceList

    harbor = HarborAsyncClient(url="http://testserver/api/v2.0", username="admin", secret=ADMIN_PASSWORD)
    harbor.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app))
    try:
        await harbor.create_project(ProjectReq(project_name="limited", storage_limit=1000))
        project = await harbor.get_project("limited")
        [quota] = await harbor.get_quotas(reference="project", reference_id=str(project.project_id))
        assert quota.hard.root["storage"] == 1000 and quota.used.root["storage"] == 0
        await harbor.update_quota(quota.id, QuotaUpdateReq(hard=ResourceList({"storage": -1})))
        assert (await harbor.get_quota(quota.id)).hard.root["storage"] == -1
    finally:
        await harbor.client.aclose()
    assert client.get("/api/v1/projects/limited/quota").json()["limits"]["storage_bytes"] is None
    summary = client.get("/api/v2.0/projects/limited/summary").json()
    assert summary["quota"] == {"hard": {"storage": -1, "count": -1}, "used": {"storage": 0, "count": 0}}
