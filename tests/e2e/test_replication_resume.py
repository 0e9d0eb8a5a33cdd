"""A replication execution survives a crash of its registry: a live `portlog serve` copies several
bandwidth-limited images to a CNCF Distribution (the Debian `docker-registry`), is killed with
SIGKILL while some tasks are done and others are being copied, and is started again on the same
data directory. The tasks the dead process held are taken again once their lease runs out (2 s
here, through PORTLOG_REPLICATION_LEASE_SECONDS), and the same execution ends `Succeed` with every
image at the target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from infra.services import distribution as distribution_registry
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest, push_blob
from tests.support.server import REPO_ROOT, start_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

IMAGES = 8
SPEED_KIB = 256  # per task: the layers of 128 to 512 KiB take 0.5 to 2 s each, four at a time
# A lease is recorded with each claim: the process that dies must have claimed with the short one.
SHORT_LEASE = {"PORTLOG_REPLICATION_LEASE_SECONDS": "2"}


@pytest.fixture
def peer(tmp_path):
    with distribution_registry.running(tmp_path / "peer") as server:
        yield server


@pytest.fixture
def servers():
    """Every `portlog serve` the test starts, stopped at the end whatever happened."""
    started = []
    yield started
    for server in started:
        server.stop()


def push_images(server) -> dict[str, str]:
    """Images whose layers differ (none can be mounted from another); name -> manifest digest."""
    pushed = {}
    with server.client() as client:
        for i in range(IMAGES):
            name = f"team/app{i}"
            config, layer = f'{{"image": {i}}}'.encode(), os.urandom((1 + i % 4) * 128 * 1024)
            push_blob(client, name, config)
            push_blob(client, name, layer)
            manifest = image_manifest(config, [layer])
            response = client.put(f"/v2/{name}/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
            assert response.status_code == 201, response.text
            pushed[name] = digest_of(manifest)
    return pushed


def start_execution(server, peer) -> str:
    """A push-based policy to the peer, run now; returns the execution's URL path."""
    with server.client() as client:
        response = client.post("/api/v2.0/registries", json={"name": "peer", "url": peer.url,
                                                             "type": "docker-registry"})
        assert response.status_code == 201, response.text
        registry_id = int(response.headers["Location"].rsplit("/", 1)[1])
        response = client.post("/api/v2.0/replication/policies", json={
            "name": "mirror", "dest_registry": {"id": registry_id}, "dest_namespace": "mirror", "speed": SPEED_KIB,
            "filters": [{"type": "name", "value": "team/**"}]})
        assert response.status_code == 201, response.text
        policy_id = int(response.headers["Location"].rsplit("/", 1)[1])
        response = client.post("/api/v2.0/replication/executions", json={"policy_id": policy_id})
        assert response.status_code == 201, response.text
        return response.headers["Location"]


def statuses(server, execution: str) -> tuple[str, dict[str, str]]:
    """The execution's status and each task's (by destination)."""
    with server.client() as client:
        status = client.get(execution).json()["status"]
        tasks = client.get(f"{execution}/tasks").json()
    return status, {task["dst_resource"]: task["status"] for task in tasks}


def tasks_on_disk(data_dir: Path, execution: str) -> dict[str, dict]:
    """The tasks as the dead process left them in the log (`portlog replication tasks`)."""
    result = subprocess.run([sys.executable, "-m", "cli", "replication", "tasks", execution.rsplit("/", 1)[1],
                             "--data-dir", str(data_dir)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return {task["destination"]: task for task in json.loads(result.stdout)}



def test_an_execution_resumes_after_a_crash_and_every_image_arrives(tmp_path, peer, servers):
    data_dir = tmp_path / "data"
    first = start_server(data_dir, tmp_path / "first.log", extra_env=SHORT_LEASE, projects=("team",))
    servers.append(first)
    pushed = push_images(first)
    execution = start_execution(first, peer)

    def part_done(server) -> tuple[str, dict[str, str]] | None:
        status, tasks = statuses(server, execution)
        return (status, tasks) if {"Succeed", "InProgress"} <= set(tasks.values()) else None

    status, at_kill = wait_until(lambda: part_done(first), timeout=20)
    first.process.kill()
    first.process.wait()
    assert status == "InProgress" and len(at_kill) == IMAGES
    left = tasks_on_disk(data_dir, execution)  # what the API showed may have moved on before the kill
    interrupted = {name for name, task in left.items() if task["status"] == "running"}
    assert interrupted and any(task["status"] == "succeeded" for task in left.values()), left

    second = start_server(data_dir, tmp_path / "second.log", extra_env=SHORT_LEASE)
    servers.append(second)

    def ended() -> tuple[str, dict[str, str]] | None:
        status, tasks = statuses(second, execution)
        return (status, tasks) if status != "InProgress" else None

    status, tasks = wait_until(ended, timeout=20)
    assert status == "Succeed", tasks
    assert tasks == {f"mirror/app{i}:v1": "Succeed" for i in range(IMAGES)}
    with second.client() as client:
        assert len(client.get("/api/v2.0/replication/executions").json()) == 1  # resumed, not started anew
        attempts = {task["dst_resource"]: task["attempts"] for task in client.get(f"{execution}/tasks").json()}
    assert all(attempts[name] >= 2 for name in interrupted), attempts  # taken again after the lease ran out

    for name, digest in pushed.items():
        target = name.replace("team/", "mirror/")
        response = httpx.head(f"{peer.url}/v2/{target}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200 and response.headers["Docker-Content-Digest"] == digest, target
        manifest = httpx.get(f"{peer.url}/v2/{target}/manifests/{digest}", headers={"Accept": OCI_MANIFEST}).json()
        layer = manifest["layers"][0]
        blob = httpx.get(f"{peer.url}/v2/{target}/blobs/{layer['digest']}", follow_redirects=True)
        assert blob.status_code == 200 and digest_of(blob.content) == layer["digest"], target
