"""The registry on S3 storage (a real SeaweedFS) and PostgreSQL: the scale-out backends
through the HTTP API, redirects to presigned URLs, and an S3 outage in the middle of a push."""

from __future__ import annotations

import os
from dataclasses import replace

import httpx
import pytest
from starlette.testclient import TestClient

from adapters.passwords import Argon2SecretHasher
from api.app import create_app
from config.bootstrap import bootstrap
from config.settings import Settings
from domain.context import RequestContext
from tests.support.oci import OCI_MANIFEST, digest_of, push_blob, push_image
from tests.support.seaweed import CuttableProxy, s3_store
from tests.support.server import ADMIN_PASSWORD

MiB = 1024 * 1024


def s3_storage(seaweedfs, bucket: str, endpoint: str | None = None, redirect: bool = False):
    url = (f"s3://{seaweedfs.access_key}:{seaweedfs.secret_key}@{endpoint or seaweedfs.endpoint}/{bucket}"
           f"?secure=false&region={seaweedfs.region}")
    return replace(Settings.from_env({"PORTLOG_STORAGE_URL": url}).storage, redirect=redirect)


@pytest.fixture
def database() -> str:
    return "postgres"


@pytest.fixture
def redirect() -> bool:
    return False


@pytest.fixture
def settings(settings, seaweedfs, s3_bucket, redirect):
    return replace(settings, storage=s3_storage(seaweedfs, s3_bucket, redirect=redirect))


def test_push_and_pull_through_s3(client):
    data = os.urandom(6 * MiB + 123)  # a multipart upload: one part and a tail
    location = client.post("/v2/team/app/blobs/uploads/").headers["Location"]
    for start in range(0, len(data), 2 * MiB):
        chunk = data[start:start + 2 * MiB]
        response = client.patch(location, content=chunk, headers={
            "Content-Range": f"{start}-{start + len(chunk) - 1}", "Content-Type": "application/octet-stream"})
        assert response.status_code == 202, response.text
        location = response.headers["Location"]
    response = client.put(f"{location}?digest={digest_of(data)}")
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/team/app/blobs/{digest_of(data)}").content == data
    part = client.get(f"/v2/team/app/blobs/{digest_of(data)}", headers={"Range": "bytes=5-9"})
    assert part.status_code == 206 and part.content == data[5:10]
    digest, manifest = push_image(client, "team/app", "v1")
    pulled = client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert pulled.content == manifest and pulled.headers["Docker-Content-Digest"] == digest


@pytest.mark.parametrize("redirect", [True])
def test_blob_gets_redirect_to_a_presigned_url_and_heads_stay_on_the_node(client):
    data = b"fetched straight from the bucket"
    digest = push_blob(client, "team/app", data)
    response = client.get(f"/v2/team/app/blobs/{digest}", follow_redirects=False)
    assert response.status_code == 307 and response.headers["Docker-Content-Digest"] == digest
    assert httpx.get(response.headers["Location"]).content == data  # no registry credentials
    head = client.head(f"/v2/team/app/blobs/{digest}")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))
    assert client.get(f"/v2/team/other/blobs/{digest}", follow_redirects=False).status_code == 404


@pytest.fixture
def proxy(seaweedfs):
    return CuttableProxy(seaweedfs.ports["s3"])


@pytest.fixture
def settings_through_proxy(settings, seaweedfs, s3_bucket, proxy):
    return replace(settings, storage=s3_storage(seaweedfs, s3_bucket, endpoint=proxy.endpoint))


def test_an_s3_outage_during_a_push_is_a_retryable_503_and_publishes_nothing(
        settings_through_proxy, proxy, seaweedfs, s3_bucket, tmp_path):
    services = bootstrap(settings_through_proxy, hasher=Argon2SecretHasher(fast=True))
    services.admin.create_project("team", False, RequestContext("admin", "test-setup"))
    services.projections.catch_up()
    data = os.urandom(MiB)
    try:
        with TestClient(create_app(services)) as client:
            client.auth = ("admin", ADMIN_PASSWORD)
            started = client.post("/v2/team/app/blobs/uploads/")
            assert started.status_code == 202, started.text
            location = started.headers["Location"]
            proxy.cut()
            response = client.put(f"{location}?digest={digest_of(data)}", content=data)
            assert response.status_code == 503, response.text
            assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
            assert response.headers["Retry-After"]
            assert client.head(f"/v2/team/app/blobs/{digest_of(data)}").status_code == 404
    finally:
        services.close()
    # The bucket itself never saw the blob.
    assert s3_store(seaweedfs, s3_bucket, tmp_path / "spool-check").stat(digest_of(data)) is None


def test_lookups_leave_the_event_loop_when_blobs_are_remote(seaweedfs, s3_bucket, tmp_path):
    embedded_database = Settings(data_dir=tmp_path / "data", admin_password=ADMIN_PASSWORD)
    services = bootstrap(replace(embedded_database, storage=s3_storage(seaweedfs, s3_bucket)),
                         hasher=Argon2SecretHasher(fast=True))
    try:
        assert not services.inline_reads  # a bucket GET must never block the event loop
    finally:
        services.close()


def test_garbage_collection_on_s3_frees_exactly_what_nothing_references(client, services):
    import time

    gone, _ = push_image(client, "team/gone", "v1", seed="gone")
    kept, _ = push_image(client, "team/kept", "v1", seed="kept")
    assert client.delete("/api/v1/repositories/team/gone").status_code == 204
    time.sleep(1.1)
    run, _ = services.gc_jobs.start(0, False, "cli", RequestContext("admin", "test-gc"), background=False)
    services.projections.catch_up()
    row = services.gc.run_by_uuid(str(run.id))
    assert row.status == "succeeded" and row.blobs == 3  # the manifest, its config and its layer
    stored = {blob.digest for blob in services.blobs.stored_blobs()}
    assert gone not in stored and kept in stored
    assert stored == set(services.references.kept())
    assert client.get("/v2/team/kept/manifests/v1").status_code == 200
    assert client.get("/v2/team/gone/manifests/v1").status_code == 404
