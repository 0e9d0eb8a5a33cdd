"""Every in-memory cache has a bound, set in settings (cache.*): aggregates, manifest bytes, the
running hashes of uploads (which abandoned uploads would otherwise leave behind forever)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from adapters.passwords import Argon2SecretHasher
from api.app import create_app
from config.bootstrap import bootstrap
from config.settings import CacheConfig, Settings
from domain.context import RequestContext
from tests.support.oci import push_image
from tests.support.server import ADMIN_PASSWORD


def test_cache_bounds_come_from_variables_and_the_config_file(tmp_path):
    environ = {"PORTLOG_CACHE_AGGREGATES": "50", "PORTLOG_CACHE_MANIFEST_BYTES": "65536",
               "PORTLOG_CACHE_UPLOAD_HASHERS": "7"}
    settings = Settings.from_env(environ)
    assert settings.cache == CacheConfig(aggregates=50, manifest_bytes=65536, upload_hashers=7)
    assert settings.event_store_env["AGGREGATE_CACHE_MAXSIZE"] == "50"
    assert settings.effective()["cache"] == {"aggregates": 50, "manifest_bytes": 65536, "upload_hashers": 7}
    assert Settings.from_env(settings.as_environment()) == settings
    config = tmp_path / "portlog.toml"
    config.write_text("[cache]\naggregates = 20\n")
    assert Settings.from_env({}, config_file=config).cache.aggregates == 20


def test_an_aggregate_cache_of_zero_is_refused():
    from config.settings import ConfigError

    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"PORTLOG_CACHE_AGGREGATES": "0"})
    assert raised.value.field == "PORTLOG_CACHE_AGGREGATES"


@pytest.fixture
def small_caches(settings):
    bounded = replace(settings, cache=CacheConfig(aggregates=3, manifest_bytes=4096, upload_hashers=4))
    services = bootstrap(bounded, hasher=Argon2SecretHasher(fast=True))
    services.admin.create_project("team", False, RequestContext("admin", "test-setup"))
    services.projections.catch_up()
    with TestClient(create_app(services)) as client:
        client.auth = ("admin", ADMIN_PASSWORD)
        yield services, client
    services.close()


def test_the_aggregate_and_manifest_caches_keep_no_more_than_their_bounds(small_caches):
    services, client = small_caches
    for n in range(8):
        push_image(client, f"team/app{n}", "v1", seed=str(n))
        assert client.get(f"/v2/team/app{n}/manifests/v1").status_code == 200
    assert len(services.registry.repository.cache.cache) <= 3
    assert services.manifests._bytes <= 4096
    for n in range(8):  # whatever was dropped is read again
        assert client.get(f"/v2/team/app{n}/manifests/v1").status_code == 200


def test_abandoned_uploads_leave_no_more_running_hashes_than_the_bound(small_caches):
    services, client = small_caches
    chunk = b"abandoned" * 100
    locations = []
    for _ in range(12):  # started, a chunk sent, never finished
        location = client.post("/v2/team/app/blobs/uploads/").headers["Location"]
        response = client.patch(location, content=chunk, headers={"Content-Type": "application/octet-stream"})
        assert response.status_code == 202
        locations.append(response.headers["Location"])
    assert len(services.blobs._hashers._items) <= 4
    # The first upload's running hash went: completing it hashes the stored bytes instead.
    digest = f"sha256:{hashlib.sha256(chunk).hexdigest()}"
    separator = "&" if "?" in locations[0] else "?"
    assert client.put(f"{locations[0]}{separator}digest={digest}").status_code == 201
    assert client.get(f"/v2/team/app/blobs/{digest}").content == chunk
