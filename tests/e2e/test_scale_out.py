"""Two real `portlog serve` nodes on one PostgreSQL database and one S3 bucket (SeaweedFS):
any node takes any request. And PostgreSQL restarted under pushes: no acknowledged push lost.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from infra.services import postgres
from tests.conftest import TEST_PROJECTS
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest
from tests.support.server import start_server

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def private_postgres():
    """A cluster of our own, so that a test may restart it."""
    server = postgres.private_cluster()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nodes(private_postgres, seaweedfs, tmp_path_factory):
    dsn = private_postgres.create_database()
    bucket = "two-nodes"
    env = {"PORTLOG_DATABASE_URL": dsn,
           "PORTLOG_STORAGE_URL": f"s3://{seaweedfs.access_key}:{seaweedfs.secret_key}@{seaweedfs.endpoint}"
                                  f"/{bucket}?secure=false&region={seaweedfs.region}"}
    root = tmp_path_factory.mktemp("nodes")
    a = start_server(root / "a", root / "a.log", extra_env=env, projects=TEST_PROJECTS)
    b = start_server(root / "b", root / "b.log", extra_env=env)
    yield a, b
    a.stop()
    b.stop()


def push_blob(client: httpx.Client, name: str, data: bytes) -> str:
    response = client.post(f"/v2/{name}/blobs/uploads/?digest={digest_of(data)}", content=data)
    assert response.status_code == 201, response.text
    return digest_of(data)


def put_manifest(client: httpx.Client, name: str, tag: str, manifest: bytes) -> httpx.Response:
    return client.put(f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})


def test_a_chunked_upload_whose_patches_alternate_between_the_nodes(nodes):
    data = os.urandom(13 * MiB + 777)  # parts of 8 MiB, chunks below S3's 5 MiB minimum
    chunks = [data[start:start + 3 * MiB] for start in range(0, len(data), 3 * MiB)]
    clients = [node.client() for node in nodes]
    location = clients[0].post("/v2/team/chunked/blobs/uploads/").headers["Location"]
    offset = 0
    for n, chunk in enumerate(chunks):
        response = clients[n % 2].patch(location, content=chunk, headers={
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}", "Content-Type": "application/octet-stream"})
        assert response.status_code == 202, response.text
        offset += len(chunk)
        assert response.headers["Range"] == f"0-{offset - 1}"
    completed = clients[len(chunks) % 2].put(f"{location}?digest={digest_of(data)}")
    assert completed.status_code == 201, completed.text
    for client in clients:
        assert client.get(f"/v2/team/chunked/blobs/{digest_of(data)}").content == data
        client.close()


def test_a_manifest_pushed_to_one_node_is_pulled_by_tag_from_the_other_at_once(nodes):
    a, b = nodes
    with a.client() as client_a, b.client() as client_b:
        config, layer = push_blob(client_a, "team/across", b"{}"), b"layer across nodes"
        push_blob(client_a, "team/across", layer)
        manifest = image_manifest(b"{}", [layer])
        assert put_manifest(client_a, "team/across", "v1", manifest).status_code == 201
        pulled = client_b.get("/v2/team/across/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert pulled.status_code == 200 and pulled.content == manifest
        assert client_b.get(f"/v2/team/across/blobs/{config}").content == b"{}"


def test_racing_pushes_to_one_tag_through_both_nodes(nodes):
    clients = [node.client() for node in nodes]
    push_blob(clients[0], "race/nodes", b"{}")
    layers = [f"racing layer {n}".encode() for n in range(12)]
    for layer in layers:
        push_blob(clients[0], "race/nodes", layer)

    def push(n: int) -> int:
        return put_manifest(clients[n % 2], "race/nodes", "latest", image_manifest(b"{}", [layers[n]])).status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(push, range(len(layers)))) == [201] * len(layers)
    final = {c.head("/v2/race/nodes/manifests/latest", headers={"Accept": OCI_MANIFEST})
             .headers["Docker-Content-Digest"] for c in clients}
    assert len(final) == 1  # both nodes agree
    history = clients[1].get("/api/v1/repositories/race/nodes/tags/latest/history").json()
    assert len(history) == len(layers) and history[-1]["digest"] in final
    for client in clients:
        client.close()


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_postgres_restarted_during_pushes_loses_no_acknowledged_push(nodes, private_postgres):
    clients = [node.client() for node in nodes]
    push_blob(clients[0], "team/restart", b"{}")
    acknowledged: list[tuple[str, str]] = []
    refused: list[str] = []
    stop = threading.Event()

    def keep_pushing(worker: int) -> None:
        client, n = clients[worker % 2], 0
        while not stop.is_set():
            layer, tag = f"worker {worker} push {n}".encode(), f"w{worker}-{n}"
            n += 1
            try:
                response = client.post(f"/v2/team/restart/blobs/uploads/?digest={digest_of(layer)}", content=layer)
                if response.status_code == 201:
                    response = put_manifest(client, "team/restart", tag, image_manifest(b"{}", [layer]))
            except httpx.HTTPError as error:
                refused.append(type(error).__name__)
                continue
            if response.status_code == 201:
                acknowledged.append((tag, response.headers["Docker-Content-Digest"]))
            else:
                refused.append(f"{response.status_code} {response.text[:200]}")
                time.sleep(0.2)  # as clients back off before retrying

    workers = [threading.Thread(target=keep_pushing, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: len(acknowledged) >= 8)
        private_postgres.restart()
        after_restart = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= after_restart + 8)  # the nodes write again
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    assert all(r.startswith("503") for r in refused), f"pushes failing while PostgreSQL restarts get a 503: {refused}"
    for tag, digest in acknowledged:
        for client in clients:
            response = client.head(f"/v2/team/restart/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            assert response.status_code == 200 and response.headers["Docker-Content-Digest"] == digest
    for client in clients:
        client.close()
