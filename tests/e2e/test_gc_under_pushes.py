"""Online garbage collection while 20 real skopeo pushes run, on a live `portlog serve`.

Half of what is pushed is identical to content deleted before (same digests: the race the
Harbor users' complaint is about), the rest is new. Collections run one after the other for
as long as the pushes do. Afterwards every image pulls with skopeo and its blobs match the
layout's bytes, and after a last collection storage holds exactly the pushed images' blobs.
"""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapters.storage.filesystem import FilesystemBlobStore
from tests.support.images import ImageInfo, build_image_layout
from tests.support.server import collect_garbage

pytestmark = pytest.mark.e2e

PUSHES = 20
REPUSHED = 5  # images deleted before the test whose identical content is pushed again
GRACE = 8  # seconds: longer than one push takes on this machine, under load


def skopeo(*args: str) -> None:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"skopeo {' '.join(args)}\n{result.stderr}"


def push(server, image: ImageInfo, repository: str) -> None:
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", server.admin_creds,
           f"oci:{image.layout}:{image.tag}", f"docker://{server.host}/{repository}:{image.tag}")


def pull_and_verify(server, image: ImageInfo, repository: str, into: Path) -> None:
    skopeo("copy", "--src-tls-verify=false", "--src-creds", server.admin_creds,
           f"docker://{server.host}/{repository}:{image.tag}", f"oci:{into}:{image.tag}")
    for digest in (image.config_digest, *image.layer_digests, image.manifest_digest):
        name = digest.removeprefix("sha256:")
        assert (into / "blobs/sha256" / name).read_bytes() == (image.layout / "blobs/sha256" / name).read_bytes()


def digests_of(images: list[ImageInfo]) -> set[str]:
    return {d for image in images for d in (image.manifest_digest, image.config_digest, *image.layer_digests)}


def test_collection_during_concurrent_pushes_loses_nothing(live_server, tmp_path):
    layouts = tmp_path / "layouts"
    old = [build_image_layout(layouts / f"old{i}", "1.0", text=f"image {i}" if i < REPUSHED else f"old {i}")
           for i in range(2 * REPUSHED)]
    with live_server.client() as client:
        for i, image in enumerate(old):
            push(live_server, image, f"team/gc-old{i}")
            assert client.delete(f"/api/v1/repositories/team/gc-old{i}").status_code == 204
        deleted = time.monotonic()
        images = [build_image_layout(layouts / f"new{i}", "1.0", text=f"image {i}") for i in range(PUSHES)]
        time.sleep(max(0.0, deleted + GRACE + 1 - time.monotonic()))  # the deleted content is now collectable

        pushed = threading.Event()
        runs = []

        def collect_until_pushed():
            while not pushed.is_set():
                runs.append(collect_garbage(client, GRACE))

        collector = threading.Thread(target=collect_until_pushed)
        collector.start()
        with ThreadPoolExecutor(PUSHES) as pool:
            list(pool.map(lambda i: push(live_server, images[i], f"team/gc-app{i}"), range(PUSHES)))
        pushed.set()
        collector.join(timeout=120)

        assert runs and sum(run["blobs"] for run in runs) >= 3 * REPUSHED  # the unique old images went
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: pull_and_verify(live_server, images[i], f"team/gc-app{i}", tmp_path / f"pulled{i}"),
                          range(PUSHES)))

        time.sleep(1.1)
        collect_garbage(client, 0)
    stored = {blob.digest for blob in FilesystemBlobStore(live_server.data_dir / "storage").stored_blobs()}
    assert stored == digests_of(images)
