"""Real skopeo (and umoci) against a live `portlog serve` over plain-HTTP loopback.

Every test uses its own repository names so that the tests stay independent even though
they share one server. The image layouts are built once per module.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.images import (
    REF_NAME,
    ImageInfo,
    IndexInfo,
    build_image_layout,
    build_multiarch_layout,
)
from tests.support.oci import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, digest_of

# skopeo and umoci come from scripts/install-system-packages. Every test runs against the
# embedded default and against scale-out (PostgreSQL + S3).
pytestmark = [pytest.mark.e2e,
              pytest.mark.parametrize("live_server", ["embedded", "scale-out"], indirect=True, scope="module")]

SKOPEO_TIMEOUT = 120
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


# Helpers


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs skopeo with the module's auth file; with check, fails the test (showing stderr)
    unless it exits 0."""
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True,
                            timeout=SKOPEO_TIMEOUT, env=SKOPEO_ENV)
    if check:
        assert result.returncode == 0, (
            f"skopeo {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def push(source: str, dest: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return skopeo("copy", "--dest-tls-verify=false", *flags, source, dest)


def pull(source: str, dest: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return skopeo("copy", "--src-tls-verify=false", *flags, source, dest)


def inspect(ref: str, *flags: str) -> dict:
    return json.loads(skopeo("inspect", "--tls-verify=false", *flags, ref).stdout)


def inspect_raw(ref: str) -> bytes:
    # skopeo prints the manifest bytes exactly as the registry served them.
    result = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", ref],
                            capture_output=True, timeout=SKOPEO_TIMEOUT, env=SKOPEO_ENV)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def list_tags(ref: str) -> list[str]:
    return json.loads(skopeo("list-tags", "--tls-verify=false", ref).stdout)["Tags"]


def oci_ref(image: ImageInfo | IndexInfo) -> str:
    return f"oci:{image.layout}:{image.tag}"


def layout_descriptor(layout: Path, tag: str) -> dict:
    """The descriptor that an OCI layout's index.json names `tag`."""
    index = json.loads((layout / "index.json").read_bytes())
    tagged = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag]
    assert len(tagged) == 1, index
    return tagged[0]


def layout_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def head(server, path: str) -> httpx.Response:
    return httpx.head(f"{server.url}{path}", auth=server.admin_auth, timeout=30)


# Fixtures


@dataclass
class Layouts:
    image: ImageInfo
    other: ImageInfo
    multi: IndexInfo


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> Layouts:
    root = tmp_path_factory.mktemp("layouts")
    return Layouts(
        image=build_image_layout(root / "image", "1.0"),
        other=build_image_layout(root / "other", "2.0", text="another image"),
        multi=build_multiarch_layout(root / "multi", "multi"),
    )


SKOPEO_ENV = dict(os.environ)


@pytest.fixture(scope="module", autouse=True)
def logged_in(live_server, tmp_path_factory):
    """`skopeo login` as the administrator; every skopeo call of the module uses that auth file."""
    auth_file = tmp_path_factory.mktemp("auth") / "auth.json"
    SKOPEO_ENV["REGISTRY_AUTH_FILE"] = str(auth_file)
    skopeo("login", "--tls-verify=false", "-u", "admin", "-p", live_server.admin_creds.split(":", 1)[1],
           live_server.host)
    yield
    SKOPEO_ENV.pop("REGISTRY_AUTH_FILE")


@pytest.fixture(scope="module")
def registry(live_server) -> str:
    return f"docker://{live_server.host}"


# Manifest formats


@pytest.mark.parametrize(("fmt", "tag", "media_type"), [
    ("v2s2", "1.0-v2s2", DOCKER_MANIFEST),
    ("oci", "1.0-oci", OCI_MANIFEST),
])
def test_copy_with_format_stores_that_manifest_type(
        layouts, registry, live_server, fmt, tag, media_type):
    ref = f"{registry}/team/formats:{tag}"
    push(oci_ref(layouts.image), ref, "--format", fmt)

    raw = inspect_raw(ref)
    manifest = json.loads(raw)
    assert manifest["mediaType"] == media_type
    assert [layer["digest"] for layer in manifest["layers"]] == layouts.image.layer_digests
    assert manifest["config"]["digest"] == layouts.image.config_digest

    info = inspect(ref)
    assert info["Digest"] == digest_of(raw)
    assert info["Architecture"] == "amd64"
    assert info["Os"] == "linux"
    assert info["Layers"] == layouts.image.layer_digests

    response = head(live_server, f"/v2/team/formats/manifests/{tag}")
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == digest_of(raw)
    assert response.headers["Content-Type"] == media_type


def test_docker_schema2_push_converts_media_types(layouts, registry):
    ref = f"{registry}/team/schema2:1.0"
    push(oci_ref(layouts.image), ref, "--format", "v2s2")
    manifest = json.loads(inspect_raw(ref))
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert {layer["mediaType"] for layer in manifest["layers"]} == {DOCKER_LAYER}


def test_oci_push_keeps_the_manifest_bytes(layouts, registry):
    ref = f"{registry}/team/ocibytes:1.0"
    push(oci_ref(layouts.image), ref, "--format", "oci")
    assert inspect_raw(ref) == layouts.image.manifest_bytes


# Push, pull back, unpack, run


@pytest.fixture(scope="module")
def roundtrip(layouts, registry, tmp_path_factory) -> Path:
    """Pushes the image to team/roundtrip:1.0 and pulls it back into a fresh OCI layout."""
    out = tmp_path_factory.mktemp("roundtrip") / "out"
    ref = f"{registry}/team/roundtrip:1.0"
    push(oci_ref(layouts.image), ref)
    pull(ref, f"oci:{out}:1.0")
    return out


def test_pull_returns_the_pushed_manifest_digest(layouts, roundtrip):
    descriptor = layout_descriptor(roundtrip, "1.0")
    assert descriptor["digest"] == layouts.image.manifest_digest
    assert descriptor["mediaType"] == OCI_MANIFEST
    assert layout_blob(roundtrip, descriptor["digest"]) == layouts.image.manifest_bytes


def test_the_image_is_kept_where_the_mode_keeps_it(roundtrip, live_server, request):
    scale_out = request.node.callspec.params["live_server"] == "scale-out"
    local_blobs = [p for p in (live_server.data_dir / "storage").rglob("*") if p.is_file()]
    assert (live_server.data_dir / "events.db").exists() is not scale_out  # else in PostgreSQL
    assert bool(local_blobs) is not scale_out  # else in the bucket


def test_pulled_blobs_are_byte_identical(layouts, roundtrip):
    image = layouts.image
    for digest in [image.config_digest, *image.layer_digests]:
        pulled = layout_blob(roundtrip, digest)
        assert digest_of(pulled) == digest
        assert pulled == layout_blob(image.layout, digest)


def test_pulled_image_unpacks_and_runs(roundtrip, tmp_path):
    """Runs the pulled image's shell in a chroot, so like CI it needs root."""
    bundle = tmp_path / "bundle"
    unpack = subprocess.run(["umoci", "unpack", "--image", f"{roundtrip}:1.0", str(bundle)],
                            capture_output=True, text=True, timeout=120)
    assert unpack.returncode == 0, unpack.stderr

    run = subprocess.run(["chroot", str(bundle / "rootfs"), "/bin/sh", "-c", "cat /etc/text"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hello from portlog"


# Tags


def test_list_tags_lists_exactly_the_pushed_tags(layouts, registry):
    repo = f"{registry}/team/tags"
    pushed = ["1.0", "1.1", "latest"]
    for tag in pushed:
        push(oci_ref(layouts.image), f"{repo}:{tag}")
    assert sorted(list_tags(repo)) == pushed


def test_list_tags_of_unknown_repository_fails(registry, live_server):
    result = skopeo("list-tags", "--tls-verify=false", f"{registry}/team/never-pushed",
                    check=False)
    assert result.returncode != 0
    assert "404" in result.stderr  # skopeo 1.9 reports the status, not the error body
    response = httpx.get(f"{live_server.url}/v2/team/never-pushed/tags/list", auth=live_server.admin_auth, timeout=30)
    assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_delete_removes_the_manifest_and_every_tag_on_it(layouts, registry, live_server):
    repo = f"{registry}/team/delete"
    push(oci_ref(layouts.image), f"{repo}:doomed")
    push(oci_ref(layouts.image), f"{repo}:alias")
    push(oci_ref(layouts.other), f"{repo}:kept")
    assert sorted(list_tags(repo)) == ["alias", "doomed", "kept"]

    skopeo("delete", "--tls-verify=false", f"{repo}:doomed")

    gone = skopeo("inspect", "--tls-verify=false", f"{repo}:doomed", check=False)
    assert gone.returncode != 0
    assert "manifest unknown" in gone.stderr
    assert list_tags(repo) == ["kept"]
    digest = layouts.image.manifest_digest
    assert head(live_server, f"/v2/team/delete/manifests/{digest}").status_code == 404
    assert inspect(f"{repo}:kept")["Digest"] == layouts.other.manifest_digest


# Multi-architecture


@pytest.fixture(scope="module")
def multi_ref(layouts, registry) -> str:
    ref = f"{registry}/team/multi:multi"
    push(oci_ref(layouts.multi), ref, "--all")
    return ref


def test_multiarch_push_keeps_the_index(layouts, multi_ref):
    raw = inspect_raw(multi_ref)
    assert digest_of(raw) == layouts.multi.index_digest
    assert raw == layouts.multi.index_bytes
    assert json.loads(raw)["mediaType"] == OCI_INDEX


@pytest.mark.parametrize("position, arch", [(0, "amd64"), (1, "arm64")])
def test_multiarch_inspect_selects_the_architecture(layouts, multi_ref, position, arch):
    info = inspect(multi_ref, "--override-arch", arch, "--override-os", "linux")
    assert info["Architecture"] == arch
    assert info["Layers"] == layouts.multi.images[position].layer_digests


def test_multiarch_children_are_pullable_by_digest(layouts, multi_ref, live_server):
    for image in layouts.multi.images:
        response = head(live_server, f"/v2/team/multi/manifests/{image.manifest_digest}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == OCI_MANIFEST


def test_multiarch_pull_all_keeps_the_index_digest(layouts, multi_ref, tmp_path):
    out = tmp_path / "multi-out"
    pull(multi_ref, f"oci:{out}:multi", "--all")
    descriptor = layout_descriptor(out, "multi")
    assert descriptor["digest"] == layouts.multi.index_digest
    assert descriptor["mediaType"] == OCI_INDEX
    for image in layouts.multi.images:
        assert layout_blob(out, image.manifest_digest) == image.manifest_bytes
        for digest in image.layer_digests:
            assert layout_blob(out, digest) == layout_blob(layouts.multi.layout, digest)


# Cross-repository mount


def test_copy_between_repositories_mounts_the_blobs(layouts, registry, live_server):
    source, dest = f"{registry}/team/mount-a:t", f"{registry}/team/mount-b:t"
    push(oci_ref(layouts.image), source)

    result = skopeo("--debug", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                    source, dest)

    assert "mount OK" in result.stderr, "skopeo did not mount any blob from team/mount-a"
    for digest in [layouts.image.config_digest, *layouts.image.layer_digests]:
        response = head(live_server, f"/v2/team/mount-b/blobs/{digest}")
        assert response.status_code == 200, digest
        assert response.headers["Docker-Content-Digest"] == digest
        assert int(response.headers["Content-Length"]) == len(
            layout_blob(layouts.image.layout, digest))
    assert inspect(dest)["Digest"] == layouts.image.manifest_digest


# Sync


@pytest.fixture(scope="module")
def sync_source(layouts, registry, live_server) -> dict[str, str]:
    """team/syncsrc with two tags; returns tag → manifest digest."""
    push(oci_ref(layouts.image), f"{registry}/team/syncsrc:a")
    push(oci_ref(layouts.other), f"{registry}/team/syncsrc:b")
    return {"a": layouts.image.manifest_digest, "b": layouts.other.manifest_digest}


def test_sync_registry_to_registry(sync_source, live_server, registry):
    host = live_server.host
    skopeo("sync", "--src-tls-verify=false", "--dest-tls-verify=false",
           "--src", "docker", "--dest", "docker", f"{host}/team/syncsrc", f"{host}/mirror")

    assert sorted(list_tags(f"{registry}/mirror/syncsrc")) == ["a", "b"]
    for tag, digest in sync_source.items():
        response = head(live_server, f"/v2/mirror/syncsrc/manifests/{tag}")
        assert response.status_code == 200
        assert response.headers["Docker-Content-Digest"] == digest


def test_sync_registry_to_dir(sync_source, live_server, tmp_path):
    out = tmp_path / "sync"
    skopeo("sync", "--src-tls-verify=false", "--src", "docker", "--dest", "dir",
           f"{live_server.host}/team/syncsrc", str(out))

    assert sorted(p.name for p in out.iterdir()) == ["syncsrc:a", "syncsrc:b"]
    for tag, digest in sync_source.items():
        manifest = (out / f"syncsrc:{tag}" / "manifest.json").read_bytes()
        assert digest_of(manifest) == digest
