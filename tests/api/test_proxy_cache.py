"""Proxy-cache projects over a real upstream — CNCF Distribution (the Debian `docker-registry`):
a pull fetches and caches, a cached pull survives the upstream going down, a tag moved upstream
is followed, a tag deleted upstream goes, pushes are refused, an index is cached without its
children, and the cache counts against the project's quota."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapters.registry_client import OCI_MANIFEST, RegistryClient
from tests.conftest import DISTRIBUTION_CREDENTIALS
from tests.support.oci import OCI_INDEX, descriptor, digest_of, image_manifest
from tests.support.outbound import LOOPBACK_ALLOWED

KEY = "a-test-secret-key-of-at-least-32-characters"
USER, PASSWORD = DISTRIBUTION_CREDENTIALS


@pytest.fixture
def settings(settings):
    return replace(settings, secret_key=KEY)


@pytest.fixture
def upstream(distribution_with_auth):
    return RegistryClient(distribution_with_auth.url, USER, PASSWORD, outbound=LOOPBACK_ALLOWED)


@pytest.fixture
def proxy(client, distribution_with_auth) -> str:
    """A public proxy-cache project `hub` over the upstream, created as Harbor users do."""
    response = client.post("/api/v2.0/registries", json={
        "name": "upstream", "url": distribution_with_auth.url, "type": "docker-registry",
        "credential": {"type": "basic", "access_key": USER, "access_secret": PASSWORD}})
    assert response.status_code == 201, response.text
    registry_id = int(response.headers["Location"].rsplit("/", 1)[1])
    response = client.post("/api/v2.0/projects", json={
        "project_name": "hub", "registry_id": registry_id, "metadata": {"public": "true"}})
    assert response.status_code == 201, response.text
    assert client.get("/api/v2.0/projects/hub").json()["registry_id"] == registry_id
    return "hub"


@pytest.fixture
def rate_limiting_registry():
    """A registry that answers everything 429 with `Retry-After: 42`, as Docker Hub answers
    anonymous pulls past its limit (Distribution has no rate limit to provoke)."""
    class RateLimited(BaseHTTPRequestHandler):
        def answer(self) -> None:
            body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit reached"}]}'
            self.send_response(429)
            self.send_header("Retry-After", "42")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), RateLimited)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def push_upstream(upstream: RegistryClient, name: str, tag: str, seed: str) -> tuple[str, list[bytes]]:
    """An image of a config and two layers at the upstream; (digest, [config, layers...])."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    blobs = [config, f"first layer {seed}".encode() * 1000, f"second layer {seed}".encode() * 3000]
    for blob in blobs:
        upstream.push_blob(name, digest_of(blob), len(blob), [blob])
    manifest = image_manifest(config, blobs[1:])
    return upstream.put_manifest(name, tag, manifest, OCI_MANIFEST), blobs


def pull(client, name: str, reference: str, blobs: bool = True) -> str:
    """Pulls the manifest (and its blobs, checking their bytes) as a client does; its digest."""
    response = client.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200, response.text
    digest = response.headers["Docker-Content-Digest"]
    assert digest == digest_of(response.content)
    document = response.json()
    for item in ([document["config"], *document["layers"]] if blobs else []):
        blob = client.get(f"/v2/{name}/blobs/{item['digest']}")
        assert blob.status_code == 200 and digest_of(blob.content) == item["digest"]
    return digest


def cached_tags(client, services, name: str) -> dict[str, str]:
    assert services.proxy_cache.wait_idle()
    listed = client.get(f"/v2/{name}/tags/list")
    if listed.status_code == 404:
        return {}
    return {tag: services.catalog.manifest_by_tag(name, tag).digest for tag in listed.json()["tags"]}


def test_a_pull_fetches_from_upstream_and_caches_what_it_pulled(client, services, upstream, proxy):
    digest, blobs = push_upstream(upstream, "library/app", "v1", "first")
    assert pull(client, "hub/library/app", "v1") == digest
    assert cached_tags(client, services, "hub/library/app") == {"v1": digest}
    for blob in blobs:
        assert services.catalog.blob_size("hub/library/app", digest_of(blob)) == len(blob)
    events = [e["data"] for e in client.get("/api/v1/events", params={"limit": 1000}).json()]
    assert {e["actor"] for e in events if e["repository"] == "hub/library/app"} == {"proxy-cache"}


def test_a_manifest_pulled_without_its_blobs_is_cached_with_them(client, services, upstream, proxy):
    digest, blobs = push_upstream(upstream, "library/layered", "v1", "client has the layers")
    assert pull(client, "hub/library/layered", "v1", blobs=False) == digest
    assert cached_tags(client, services, "hub/library/layered") == {"v1": digest}
    assert all(services.catalog.blob_size("hub/library/layered", digest_of(b)) == len(b) for b in blobs)


def test_cached_images_are_served_while_the_upstream_is_down(client, services, upstream, proxy,
                                                              distribution_with_auth):
    digest, _ = push_upstream(upstream, "library/steady", "v1", "steady")
    pull(client, "hub/library/steady", "v1")
    assert cached_tags(client, services, "hub/library/steady") == {"v1": digest}
    distribution_with_auth.kill()
    try:
        assert pull(client, "hub/library/steady", "v1") == digest
        assert pull(client, "hub/library/steady", digest) == digest
        missing = client.get("/v2/hub/library/other/manifests/v1")
        assert missing.status_code == 503 and missing.json()["errors"][0]["code"] == "UNAVAILABLE"
        assert "upstream" in missing.json()["errors"][0]["message"]
    finally:
        distribution_with_auth.start()


def test_cached_images_are_served_while_the_upstream_rate_limits(client, services, upstream, proxy,
                                                                  rate_limiting_registry):
    digest, _ = push_upstream(upstream, "library/popular", "v1", "popular")
    pull(client, "hub/library/popular", "v1")
    assert cached_tags(client, services, "hub/library/popular") == {"v1": digest}
    registry_id = client.get("/api/v2.0/projects/hub").json()["registry_id"]
    moved = client.put(f"/api/v2.0/registries/{registry_id}", json={"url": rate_limiting_registry})
    assert moved.status_code == 200, moved.text
    assert pull(client, "hub/library/popular", "v1") == digest
    limited = client.get("/v2/hub/library/unpopular/manifests/v1")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "42"
    assert limited.json()["errors"][0]["code"] == "TOOMANYREQUESTS"


def test_a_tag_moved_upstream_is_followed(client, services, upstream, proxy):
    first, _ = push_upstream(upstream, "library/moving", "latest", "before")
    assert pull(client, "hub/library/moving", "latest") == first
    assert cached_tags(client, services, "hub/library/moving") == {"latest": first}
    second, _ = push_upstream(upstream, "library/moving", "latest", "after")
    assert pull(client, "hub/library/moving", "latest") == second
    assert cached_tags(client, services, "hub/library/moving") == {"latest": second}
    assert pull(client, "hub/library/moving", first) == first  # the old one stays cached by digest


def test_a_tag_deleted_upstream_is_gone_here_too(client, services, upstream, proxy):
    digest, _ = push_upstream(upstream, "library/fleeting", "v1", "fleeting")
    pull(client, "hub/library/fleeting", "v1")
    assert cached_tags(client, services, "hub/library/fleeting") == {"v1": digest}
    upstream.delete_manifest("library/fleeting", digest)
    response = client.get("/v2/hub/library/fleeting/manifests/v1")
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert cached_tags(client, services, "hub/library/fleeting") == {}


def test_pushes_into_a_proxy_cache_project_are_refused(client, services, upstream, proxy):
    refused = client.post("/v2/hub/library/app/blobs/uploads/")
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "DENIED"
    assert "proxy-cache" in refused.json()["errors"][0]["message"]
    manifest = image_manifest(b"{}", [])
    put = client.put("/v2/hub/library/app/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 403
    assert client.get("/v2/hub/library/app/tags/list").status_code == 404  # nothing was stored


def test_an_index_is_cached_at_once_and_its_children_as_they_are_pulled(client, services, upstream, proxy):
    amd64, _ = push_upstream(upstream, "library/multi", "amd64", "amd64")
    arm64, _ = push_upstream(upstream, "library/multi", "arm64", "arm64")
    children = [upstream.manifest("library/multi", d).data for d in (amd64, arm64)]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, child) for child in children]}).encode()
    upstream.put_manifest("library/multi", "latest", index, OCI_INDEX)
    response = client.get("/v2/hub/library/multi/manifests/latest", headers={"Accept": OCI_INDEX})
    assert response.status_code == 200 and response.content == index
    pull(client, "hub/library/multi", amd64)
    assert cached_tags(client, services, "hub/library/multi") == {"latest": digest_of(index)}
    assert services.catalog.manifest_by_digest("hub/library/multi", amd64) is not None
    assert services.catalog.manifest_by_digest("hub/library/multi", arm64) is None  # never pulled


def test_an_endpoint_in_use_by_a_proxy_cache_project_cannot_be_deleted(client, proxy):
    registry_id = client.get("/api/v2.0/projects/hub").json()["registry_id"]
    response = client.delete(f"/api/v2.0/registries/{registry_id}")
    assert response.status_code == 409 and "hub" in response.text


def test_the_cache_obeys_the_project_quota(client, services, upstream, proxy):
    digest, blobs = push_upstream(upstream, "library/big", "v1", "over quota")
    response = client.put("/api/v1/projects/hub/quota", json={"storage_bytes": len(blobs[2]) // 2})
    assert response.status_code == 200, response.text
    assert pull(client, "hub/library/big", "v1") == digest  # served all the same
    assert cached_tags(client, services, "hub/library/big") == {}
    assert services.catalog.blob_size("hub/library/big", digest_of(blobs[2])) is None


def test_retention_cleans_the_cache_and_a_later_pull_fetches_again(client, services, upstream, proxy):
    digests = []
    for i in range(3):
        digests.append(push_upstream(upstream, "library/kept", f"v{i}", f"release {i}")[0])
        pull(client, "hub/library/kept", f"v{i}")
        assert services.proxy_cache.wait_idle()
    policy = {"rules": [{"template": "latestPushedK", "param": 1, "tags": "v*"}]}
    assert client.put("/api/v1/projects/hub/retention", json=policy).status_code == 200
    result = client.post("/api/v1/projects/hub/retention/runs", json={})
    assert result.status_code == 201 and result.json()["status"] == "succeeded", result.text
    assert cached_tags(client, services, "hub/library/kept") == {"v2": digests[2]}
    assert pull(client, "hub/library/kept", "v0") == digests[0]
    assert cached_tags(client, services, "hub/library/kept") == {"v0": digests[0], "v2": digests[2]}


def test_a_proxy_cache_project_applies_its_pull_policies_to_what_it_fetches(client, services, upstream, proxy):
    push_upstream(upstream, "library/policed", "v1", "policed")
    response = client.put("/api/v2.0/projects/hub", json={"metadata": {"prevent_vul": "true",
                                                                        "enable_content_trust": "true"}})
    assert response.status_code == 200, response.text
    metadata = client.get("/api/v2.0/projects/hub").json()["metadata"]
    assert (metadata["prevent_vul"], metadata["enable_content_trust"]) == ("true", "false")  # as Harbor
    for _ in range(2):  # fetched from the upstream, then from the cache
        refused = client.get("/v2/hub/library/policed/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert refused.status_code == 412, refused.text
        assert "without vulnerability scanning" in refused.json()["errors"][0]["message"]
        assert services.proxy_cache.wait_idle()
