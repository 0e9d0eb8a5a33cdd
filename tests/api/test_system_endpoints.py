"""Harbor's /health, /systeminfo, /systeminfo/volumes and /statistics, and the orchestrators'
/livez and /readyz: what they report while everything works, and when the database or the
blob storage really fails."""

from __future__ import annotations

from dataclasses import replace

import pytest
from harborapi.models import GeneralInfo, OverallHealthStatus, Statistic, SystemInfo
from starlette.testclient import TestClient

from adapters.passwords import Argon2SecretHasher
from api import health as health_checks
from api.app import create_app
from config.bootstrap import bootstrap
from config.settings import Settings
from domain.context import RequestContext
from infra.services import nats as nats_service
from tests.support.auth import PASSWORD, create_user, grant
from tests.support.oci import push_image
from tests.support.scanner_adapter import API_KEY, ScannerAdapter
from tests.support.seaweed import s3_client
from tests.support.server import ADMIN_PASSWORD
from tests.support.waiting import wait_until

SETUP = RequestContext("admin", "test-setup")


def components_of(client) -> dict[str, dict]:
    response = client.get("/api/v2.0/health", auth=None)
    assert response.status_code == 200, response.text
    body = OverallHealthStatus.model_validate(response.json())
    return {"status": body.status, **{c.name: c.model_dump(exclude_none=True) for c in body.components}}


@pytest.mark.both_databases
def test_health_reports_each_component_healthy(client, database):
    body = client.get("/api/v2.0/health", auth=None).json()
    names = [c["name"] for c in body["components"]]
    assert names == sorted(names) and {"core", "database", "storage"} <= set(names)
    assert body["status"] == "healthy"
    assert all(c["status"] == "healthy" and "error" not in c for c in body["components"]), body
    assert "nats" not in names  # not configured
    assert client.get("/livez", auth=None).json() == {"status": "alive"}
    ready = client.get("/readyz", auth=None)
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


@pytest.mark.both_databases
def test_storage_gone_is_unhealthy_and_not_ready(client, services):
    blobs = services.settings.blob_root / "blobs"
    moved = blobs.with_name("blobs-unmounted")
    blobs.rename(moved)  # as an unmounted volume: the directory is not there
    try:
        health = components_of(client)
        assert health["status"] == "unhealthy"
        assert health["storage"]["status"] == "unhealthy"
        assert health["storage"]["error"].startswith("FileNotFoundError"), health
        assert health["database"]["status"] == "healthy"
        ready = client.get("/readyz", auth=None)
        assert ready.status_code == 503
        assert ready.json()["problems"][0].startswith("storage: FileNotFoundError")
        assert client.get("/livez", auth=None).status_code == 200  # alive, only not ready
    finally:
        moved.rename(blobs)
    assert components_of(client)["status"] == "healthy"
    assert client.get("/readyz", auth=None).status_code == 200


def test_postgres_database_gone_is_unhealthy(tmp_path, postgres_server):
    """A database of its own, dropped under the running registry."""
    dsn = postgres_server.create_database(durable=False)
    settings = replace(Settings(data_dir=tmp_path / "data", admin_password=ADMIN_PASSWORD),
                       database=Settings.from_env({"PORTLOG_DATABASE_URL": dsn}).database)
    services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    try:
        client = TestClient(create_app(services))
        assert components_of(client)["database"]["status"] == "healthy"
        postgres_server.drop_database(dsn)
        health = components_of(client)
        assert health["status"] == "unhealthy"
        assert health["database"]["status"] == "unhealthy"
        assert "does not exist" in health["database"]["error"] or "terminat" in health["database"]["error"], health
        assert dsn.split("@")[0] not in health["database"]["error"]  # no credentials in the reason
        ready = client.get("/readyz", auth=None)
        assert ready.status_code == 503 and ready.json()["problems"][0].startswith("database: ")
    finally:
        postgres_server.drop_database(dsn)
        services.db.dispose()


@pytest.mark.both_databases
def test_not_ready_until_read_models_caught_up_once(settings):
    """A node whose read models are behind the log (rebuilding, or just started) is not ready;
    once they have caught up, it is, and ordinary lag does not take it out again."""
    services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    try:
        for name in ("ready-a", "ready-b"):
            services.admin.create_project(name, False, SETUP)
        client = TestClient(create_app(services))  # no lifespan: no worker applies the events
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json() == {"status": "not ready", "problems": ["read models: 2 events behind the log"]}
        services.projections.catch_up()
        assert client.get("/readyz").status_code == 200
        services.admin.create_project("ready-c", False, SETUP)
        assert client.get("/readyz").status_code == 200
    finally:
        services.close()


def test_system_info_anonymous_and_signed_in(client):
    anonymous = client.get("/api/v2.0/systeminfo", auth=None).json()
    assert anonymous == {"auth_mode": "db_auth", "primary_auth_mode": False, "self_registration": False,
                         "banner_message": "", "oidc_provider_name": ""}
    response = client.get("/api/v2.0/systeminfo")
    info = GeneralInfo.model_validate(response.json())
    assert info.harbor_version and info.current_time is not None
    assert (info.auth_mode, info.project_creation_restriction, info.read_only) == ("db_auth", "everyone", False)
    assert (info.registry_url, info.external_url) == ("testserver", "http://testserver")
    assert (info.registry_storage_provider_name, info.with_chartmuseum, info.has_ca_root) == (
        "filesystem" if client.app.state.services.blobs.name == "filesystem" else "s3", False, False)
    set_restriction = client.put("/api/v2.0/configurations", json={"project_creation_restriction": "adminonly"})
    assert set_restriction.status_code == 200, set_restriction.text
    assert client.get("/api/v2.0/systeminfo").json()["project_creation_restriction"] == "adminonly"


def test_volumes_for_system_administrators(client):
    body = client.get("/api/v2.0/systeminfo/volumes").json()
    storage = SystemInfo.model_validate(body).storage
    assert len(storage) == 1 and storage[0].total > storage[0].free > 0
    create_user(client, "plain")
    assert client.get("/api/v2.0/systeminfo/volumes", auth=("plain", PASSWORD)).status_code == 403
    assert client.get("/api/v2.0/systeminfo/volumes", auth=None).status_code == 401


@pytest.mark.both_databases
def test_statistics_count_what_the_caller_sees(client):
    created = client.post("/api/v2.0/projects", json={"project_name": "open", "metadata": {"public": "true"}})
    assert created.status_code == 201, created.text
    push_image(client, "open/app", "v1")
    push_image(client, "team/one", "v1", seed="one")
    push_image(client, "team/two", "v1", seed="two")
    push_image(client, "z/hidden", "v1", seed="z")

    admin = Statistic.model_validate(client.get("/api/v2.0/statistics").json())
    projects = client.get("/api/v2.0/projects", params={"page_size": 100}).json()
    public = sum(p["metadata"]["public"] == "true" for p in projects)  # "open" and the default "library"
    assert (admin.public_project_count, admin.public_repo_count) == (public, 1)
    assert (admin.private_project_count, admin.private_repo_count) == (len(projects) - public, 3)
    assert (admin.total_project_count, admin.total_repo_count) == (len(projects), 4)
    assert admin.total_storage_consumption > 0

    create_user(client, "member")
    grant(client, "team", "member", "developer")
    member = client.get("/api/v2.0/statistics", auth=("member", PASSWORD)).json()
    assert member == {"public_project_count": public, "public_repo_count": 1,
                      "private_project_count": 1, "private_repo_count": 2}
    assert client.get("/api/v2.0/statistics", auth=None).status_code == 401
    assert client.get("/api/v2.0/statistics", auth=("admin", ADMIN_PASSWORD)).json()["total_repo_count"] == 4


def test_s3_storage_health_and_volumes(settings, seaweedfs, s3_bucket):
    """On S3: no volume to measure; the bucket gone is an unhealthy storage."""
    storage = Settings.from_env({"PORTLOG_STORAGE_URL": f"s3://{seaweedfs.access_key}:{seaweedfs.secret_key}@"
                                                        f"{seaweedfs.endpoint}/{s3_bucket}?secure=false"
                                                        f"&region={seaweedfs.region}"}).storage
    services = bootstrap(replace(settings, storage=storage), hasher=Argon2SecretHasher(fast=True))
    try:
        client = TestClient(create_app(services))
        client.auth = ("admin", ADMIN_PASSWORD)
        assert components_of(client)["storage"] == {"name": "storage", "status": "healthy"}
        assert client.get("/api/v2.0/systeminfo/volumes").json() == {"storage": []}
        assert client.get("/api/v2.0/systeminfo").json()["registry_storage_provider_name"] == "s3"
        s3_client(seaweedfs).remove_bucket(s3_bucket)
        health = components_of(client)
        assert health["storage"]["status"] == "unhealthy"
        assert f"the bucket {s3_bucket} does not exist" in health["storage"]["error"]
        assert client.get("/readyz").status_code == 503
    finally:
        services.close()


def test_nats_component_follows_the_relay(settings, tmp_path):
    """Reported only when events.nats_url is set: healthy once the relay holds the stream,
    unhealthy once the NATS server is gone."""
    with nats_service.running(tmp_path / "nats") as nats:
        services = bootstrap(replace(settings, events=replace(settings.events, nats_url=nats.url)),
                             hasher=Argon2SecretHasher(fast=True))
        try:
            with TestClient(create_app(services)) as client:  # the lifespan starts the relay
                wait_until(lambda: components_of(client)["nats"]["status"] == "healthy", timeout=20,
                           what="the relay connected")
                nats.stop()
                health = wait_until(lambda: (h := components_of(client))["nats"]["status"] == "unhealthy" and h,
                                    timeout=20, what="the lost connection reported")
                assert health["nats"]["error"] and health["status"] == "unhealthy"
        finally:
            services.close()


def test_scanner_component_asks_the_default_adapter(client, monkeypatch):
    """The built-in scanner (in this process) is healthy; an external default adapter that stops
    answering is not, once its last answer is SCANNER_ANSWER_SECONDS old. However many probes
    ask meanwhile, the adapter is asked once per interval."""
    monkeypatch.setattr(health_checks, "SCANNER_ANSWER_SECONDS", 3.0)
    assert components_of(client)["scanner"] == {"name": "scanner", "status": "healthy"}
    adapter = ScannerAdapter()
    try:
        response = client.post("/api/v2.0/scanners", json={
            "name": "external", "url": adapter.url, "auth": "X-ScannerAdapter-API-Key", "access_credential": API_KEY})
        assert response.status_code == 201, response.text
        uuid = response.headers["Location"].rsplit("/", 1)[1]
        assert client.patch(f"/api/v2.0/scanners/{uuid}", json={"is_default": True}).status_code == 200
        asked_before = adapter.metadata_requests
        for _ in range(3):
            assert components_of(client)["scanner"]["status"] == "healthy"
        assert adapter.metadata_requests - asked_before == 1
    finally:
        adapter.close()
    health_now = wait_until(lambda: (h := components_of(client))["scanner"]["status"] == "unhealthy" and h,
                            timeout=15, what="the stopped scanner reported")
    assert health_now["status"] == "unhealthy"
    assert health_now["scanner"]["error"].startswith("the scanner external did not answer: ")
