"""Two nodes on one PostgreSQL database and one blob store (in process; tests/e2e runs real
`portlog serve` processes): what one node writes, the other reads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from adapters.passwords import Argon2SecretHasher
from adapters.signing_keys import SigningKeyTable
from api.app import create_app
from cli.main import main
from config.bootstrap import bootstrap
from tests.support.auth import bearer, token
from tests.support.oci import OCI_MANIFEST, image_manifest, push_blob, push_image
from tests.support.server import ADMIN_PASSWORD


@pytest.fixture
def database() -> str:
    return "postgres"


@pytest.fixture
def node_b(services, settings, tmp_path):
    """A second node: its own process state and data directory, the same database and blobs."""
    other = replace(settings, data_dir=tmp_path / "node-b",
                    storage=replace(settings.storage, root=settings.blob_root))
    services_b = bootstrap(other, hasher=Argon2SecretHasher(fast=True))
    with TestClient(create_app(services_b)) as client_b:
        client_b.auth = ("admin", ADMIN_PASSWORD)
        yield client_b
    services_b.close()


def test_a_manifest_pushed_to_one_node_is_pulled_by_tag_from_the_other_at_once(client, node_b):
    digest, manifest = push_image(client, "team/app", "v1")
    response = node_b.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200 and response.content == manifest
    assert response.headers["Docker-Content-Digest"] == digest
    assert node_b.get("/v2/team/app/tags/list").json()["tags"] == ["v1"]


def test_a_token_issued_by_one_node_is_accepted_by_the_other(client, node_b):
    push_image(client, "team/app", "v1")
    jwt = token(client, ["repository:team/app:pull"], ("admin", ADMIN_PASSWORD))
    response = node_b.get("/v2/team/app/tags/list", headers=bearer(jwt), auth=None)
    assert response.status_code == 200, response.text


def test_concurrent_pushes_to_one_tag_through_both_nodes_all_land_and_agree(client, node_b):
    config = b'{"architecture": "amd64", "os": "linux"}'
    push_blob(client, "race/app", config)
    layers = [f"layer {n}".encode() for n in range(16)]
    for layer in layers:
        push_blob(client, "race/app", layer)

    def push(n: int) -> int:
        node = (client, node_b)[n % 2]
        return node.put("/v2/race/app/manifests/latest", content=image_manifest(config, [layers[n]]),
                        headers={"Content-Type": OCI_MANIFEST}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(push, range(len(layers)))) == [201] * len(layers)
    seen_by_a = client.head("/v2/race/app/manifests/latest", headers={"Accept": OCI_MANIFEST})
    seen_by_b = node_b.head("/v2/race/app/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert seen_by_a.headers["Docker-Content-Digest"] == seen_by_b.headers["Docker-Content-Digest"]
    history = client.get("/api/v1/repositories/race/app/tags/latest/history").json()
    assert len(history) == len(layers)  # every push is in the log, one after the other
    assert all(h["to_position"] == after["from_position"] for h, after in zip(history, history[1:]))
    assert history[-1]["digest"] == seen_by_a.headers["Docker-Content-Digest"]


def test_keys_rotated_from_the_command_line_are_shared_by_every_node(services, settings, monkeypatch):
    before = SigningKeyTable(services.db.writer).load()
    monkeypatch.setenv("PORTLOG_DATABASE_URL", settings.event_database.url())
    assert main(["keys", "rotate", "--data-dir", str(settings.data_dir / "elsewhere")]) == 0
    after = SigningKeyTable(services.db.writer).load()
    assert len(after) == len(before) + 1 and after[1].kid == before[0].kid
