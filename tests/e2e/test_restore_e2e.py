"""Point-in-time restore against a live `portlog serve`, with real skopeo pushes and pulls, on the
embedded default and on scale-out (PostgreSQL + S3): push, move tags, delete the repository,
restore to the moment before, pull the old digest back — while another client keeps pushing —
and a moment whose bytes a GC run collected is refused, naming them."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from tests.support.images import build_image_layout
from tests.support.server import collect_garbage

pytestmark = [pytest.mark.e2e,
              pytest.mark.parametrize("live_server", ["embedded", "scale-out"], indirect=True, scope="module")]

SKOPEO_TIMEOUT = 120


def skopeo(server, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=SKOPEO_TIMEOUT)
    assert result.returncode == 0, f"skopeo {' '.join(args)}: {result.stderr}"
    return result


def push(server, layout, ref: str) -> None:
    skopeo(server, "copy", "--dest-tls-verify=false", "--dest-creds", server.admin_creds,
           f"oci:{layout.layout}:{layout.tag}", f"docker://{server.host}/{ref}")


def pulled_digest(server, ref: str, out) -> str:
    """Pulls `ref` into an OCI layout and answers the digest it got."""
    skopeo(server, "copy", "--src-tls-verify=false", "--src-creds", server.admin_creds,
           f"docker://{server.host}/{ref}", f"oci:{out}:pulled")
    index = json.loads((out / "index.json").read_text())
    return next(m["digest"] for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "pulled")


def position(client) -> int:
    entries = client.get("/api/v1/audit-logs", params={"order": "desc", "limit": 1}).json()
    return entries[0]["position"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("restore-layouts")
    return [build_image_layout(root / f"image{i}", "1.0", text=f"restore image {i}") for i in range(5)]


def test_a_deleted_repository_comes_back_and_pulls_the_old_digests(live_server, images, tmp_path):
    one, two, three, busy, _ = images
    push(live_server, one, "team/restored:stable")
    push(live_server, two, "team/restored:previous")
    with live_server.client() as client:
        moment = position(client)
        push(live_server, three, "team/restored:stable")  # moved since
        push(live_server, three, "team/restored:new")  # created since
        assert client.delete("/api/v1/repositories/team/restored").status_code == 204

        stop = threading.Event()
        pushes = []

        def keep_pushing() -> None:  # a concurrent writer elsewhere in the project
            while not stop.is_set():
                push(live_server, busy, f"team/busy:t{len(pushes)}")
                pushes.append(1)

        writer = threading.Thread(target=keep_pushing)
        writer.start()
        try:
            dry = client.post("/api/v1/repositories/team/restored/restore", json={"as_of": moment, "dry_run": True})
            real = client.post("/api/v1/repositories/team/restored/restore", json={"as_of": moment})
        finally:
            stop.set()
            writer.join(timeout=SKOPEO_TIMEOUT)
        assert real.status_code == 200, real.text
        assert dry.json()["changes"] == real.json()["changes"]
        assert {c["kind"] for c in real.json()["changes"]} == {"repository-restored", "manifest-restored",
                                                               "tag-restored"}
        assert pushes, "the concurrent writer pushed nothing"

    assert pulled_digest(live_server, "team/restored:stable", tmp_path / "stable") == one.manifest_digest
    assert pulled_digest(live_server, "team/restored:previous", tmp_path / "previous") == two.manifest_digest
    tags = skopeo(live_server, "list-tags", "--tls-verify=false", "--creds", live_server.admin_creds,
                  f"docker://{live_server.host}/team/restored").stdout
    assert sorted(json.loads(tags)["Tags"]) == ["previous", "stable"]


def test_a_moment_whose_bytes_were_collected_is_refused(live_server, images):
    push(live_server, images[4], "team/collected:1.0")
    with live_server.client() as client:
        moment = position(client)
        assert client.delete("/api/v1/repositories/team/collected").status_code == 204
        time.sleep(1.1)  # nothing touched within the last second is collected
        collect_garbage(client)

        refused = client.post("/api/v1/repositories/team/collected/restore", json={"as_of": moment})

        assert refused.status_code == 409, refused.text
        assert images[4].manifest_digest in refused.json()["missing_digests"]
        assert client.get("/v2/team/collected/tags/list").status_code == 404
