"""Applying an image's layers: order, whiteouts, links, compression, and the paths it ignores."""

from __future__ import annotations

import bz2
import gzip

import pytest
import zstandard

from scanner.layers import (
    DOCKER_MANIFEST,
    Layer,
    clean_path,
    config_descriptor,
    image_layers,
    platform_manifest,
    read_image_files,
)
from scanner.limits import Deadline, ScanFailed, ScanLimits
from tests.support.layers import TAR_LAYER, Blobs, Hardlink, Symlink, gzip_layer, tar_bytes

STATUS = "var/lib/dpkg/status"
SITE = "usr/lib/python3/dist-packages"


def wanted(path: str) -> bool:
    return path.startswith(("var/", "etc/", "usr/", "opt/"))


def read(blobs: Blobs, layers: list[Layer], limits: ScanLimits = ScanLimits(), keep=wanted):
    return read_image_files(layers, blobs.open, keep, limits, Deadline(limits.seconds))


def test_layers_apply_in_order_and_a_file_keeps_the_versions_each_layer_wrote():
    blobs = Blobs()
    first = blobs.add(gzip_layer({"var/": None, STATUS: b"one", "etc/hostname": b"base"}))
    second = blobs.add(gzip_layer({STATUS: b"two"}))
    files = read(blobs, [first, second])
    assert files.read(STATUS).data == b"two" and files.read(STATUS).layer == second.digest
    assert [(v.data, v.layer) for v in files.history(STATUS)] == [(b"one", first.digest), (b"two", second.digest)]
    assert files.read("etc/hostname").layer == first.digest
    assert blobs.opened == [first.digest, second.digest]


def test_a_whiteout_deletes_the_file_and_the_directory_below_and_the_history_starts_again():
    blobs = Blobs()
    first = blobs.add(gzip_layer({STATUS: b"one", f"{SITE}/a-1.dist-info/METADATA": b"a",
                                  f"{SITE}/a-1.dist-info/RECORD": b"r", f"{SITE}/b-1.dist-info/METADATA": b"b"}))
    second = blobs.add(gzip_layer({"var/lib/dpkg/.wh.status": b"", f"{SITE}/.wh.a-1.dist-info": b""}))
    third = blobs.add(gzip_layer({STATUS: b"three"}))
    files = read(blobs, [first, second, third])
    assert files.paths() == [f"{SITE}/b-1.dist-info/METADATA", STATUS]
    assert [v.data for v in files.history(STATUS)] == [b"three"]


def test_an_opaque_directory_hides_what_lower_layers_put_in_it_but_not_its_own_layers_files():
    blobs = Blobs()
    first = blobs.add(gzip_layer({"opt/app/old.txt": b"old", "opt/app/sub/deep.txt": b"deep",
                                  "opt/other.txt": b"kept"}))
    second = blobs.add(gzip_layer({"opt/app/new.txt": b"new", "opt/app/.wh..wh..opq": b""}))
    files = read(blobs, [first, second])
    assert files.paths() == ["opt/app/new.txt", "opt/other.txt"]


def test_a_whiteout_never_deletes_what_its_own_layer_adds():
    blobs = Blobs()
    first = blobs.add(gzip_layer({"opt/x": b"old"}))
    second = blobs.add(gzip_layer({"opt/x": b"new", "opt/.wh.x": b""}))
    assert read(blobs, [first, second]).read("opt/x").data == b"new"


def test_a_file_replacing_a_directory_removes_what_was_under_it():
    blobs = Blobs()
    first = blobs.add(gzip_layer({"opt/app/x": b"x", "opt/app/y": b"y"}))
    second = blobs.add(gzip_layer({"opt/app": b"now a file"}))
    files = read(blobs, [first, second])
    assert files.paths() == ["opt/app"]


def test_symlinks_are_followed_inside_the_image_only():
    blobs = Blobs()
    layer = blobs.add(gzip_layer({
        "usr/lib/os-release": b"ID=debian\n",
        "etc/os-release": Symlink("../usr/lib/os-release"),
        "etc/absolute": Symlink("/usr/lib/os-release"),  # absolute: from the image's root
        "etc/escape": Symlink("../../../../../../etc/passwd"),
        "etc/loop-a": Symlink("loop-b"), "etc/loop-b": Symlink("loop-a"),
        "etc/dangling": Symlink("nowhere"),
    }))
    files = read(blobs, [layer])
    assert files.read("etc/os-release").data == b"ID=debian\n"
    assert files.read("etc/absolute").data == b"ID=debian\n"
    assert files.read("etc/escape") is None and files.resolve("etc/escape") is None
    assert files.read("etc/loop-a") is None
    assert files.read("etc/dangling") is None


def test_absolute_names_and_names_with_dot_dot_are_ignored():
    blobs = Blobs()
    layer = blobs.add(gzip_layer({"/var/lib/dpkg/status": b"absolute", "../var/lib/dpkg/status": b"up",
                                  "var/../../var/lib/dpkg/status": b"through", "./etc/hosts": b"dot slash"}))
    files = read(blobs, [layer])
    assert files.paths() == ["etc/hosts"]
    assert [clean_path(n) for n in ("/etc/x", "a/../b", "..", "./a//b/", ".")] == [None, None, None, "a/b", None]


def test_a_hard_link_gets_the_bytes_of_the_file_it_links_to():
    blobs = Blobs()
    layer = blobs.add(gzip_layer({"opt/a": b"bytes", "opt/b": Hardlink("opt/a")}))
    assert read(blobs, [layer]).read("opt/b").data == b"bytes"


def test_only_wanted_files_are_kept():
    blobs = Blobs()
    layer = blobs.add(gzip_layer({STATUS: b"s", "bin/sh": b"\x7fELF" + bytes(10_000)}))
    assert read(blobs, [layer]).paths() == [STATUS]


@pytest.mark.parametrize("compress", [lambda d: d, lambda d: gzip.compress(d, mtime=0),
                                      lambda d: zstandard.ZstdCompressor().compress(d),
                                      lambda d: gzip.compress(d[:700], mtime=0) + gzip.compress(d[700:], mtime=0)],
                         ids=["tar", "gzip", "zstd", "gzip-members"])
def test_plain_gzip_and_zstd_layers_are_read_by_their_first_bytes(compress):
    blobs = Blobs()
    layer = blobs.add(compress(tar_bytes({STATUS: b"Package: x\n" * 100})), TAR_LAYER)
    assert read(blobs, [layer]).read(STATUS).data == b"Package: x\n" * 100


def test_an_unsupported_compression_fails_the_scan_saying_which():
    blobs = Blobs()
    layer = blobs.add(bz2.compress(tar_bytes({STATUS: b"x"})))
    with pytest.raises(ScanFailed, match="unsupported layer compression: .* is bzip2"):
        read(blobs, [layer])


def test_bytes_that_do_not_match_the_layer_digest_fail_the_scan():
    blobs = Blobs()
    real = blobs.add(gzip_layer({STATUS: b"x"}))
    liar = blobs.add_stream(Layer("sha256:" + "0" * 64, real.size, real.media_type),
                            lambda: [gzip_layer({STATUS: b"x"})])
    with pytest.raises(ScanFailed, match="do not match its digest"):
        read(blobs, [liar])


def test_a_registry_sending_more_than_the_descriptor_says_fails_the_scan():
    blobs = Blobs()
    data = gzip_layer({STATUS: b"x"})
    short = blobs.add_stream(Layer("sha256:" + "1" * 64, len(data) - 10, TAR_LAYER), lambda: [data])
    with pytest.raises(ScanFailed, match="larger than its descriptor"):
        read(blobs, [short])


def test_garbage_instead_of_a_tar_fails_the_scan():
    blobs = Blobs()
    layer = blobs.add(b"this is not a tar archive at all" * 100, TAR_LAYER)
    with pytest.raises(ScanFailed, match="checksum|not a tar"):
        read(blobs, [layer])


def test_a_truncated_gzip_layer_fails_the_scan():
    blobs = Blobs()
    data = gzip_layer({STATUS: b"x" * 10_000})
    layer = blobs.add(data[: len(data) // 2])
    with pytest.raises(ScanFailed, match="not valid gzip|truncated"):
        read(blobs, [layer])


def test_long_names_in_pax_headers_are_read():
    blobs = Blobs()
    deep = "opt/" + "/".join(["directory-with-a-long-name"] * 12) + "/file"
    layer = blobs.add(gzip_layer({deep: b"deep"}))
    assert read(blobs, [layer]).read(deep).data == b"deep"


def test_an_index_gives_its_linux_amd64_image_or_else_its_first():
    arm = {"mediaType": DOCKER_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 1,
           "platform": {"os": "linux", "architecture": "arm64"}}
    amd = {**arm, "digest": "sha256:" + "b" * 64, "platform": {"os": "linux", "architecture": "amd64"}}
    attestation = {**arm, "digest": "sha256:" + "c" * 64, "platform": {"os": "unknown", "architecture": "unknown"},
                   "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
    assert platform_manifest({"manifests": [attestation, arm, amd]}) == amd
    assert platform_manifest({"manifests": [attestation, arm]}) == arm
    with pytest.raises(ScanFailed, match="no image manifest"):
        platform_manifest({"manifests": [attestation]})


def test_an_artifact_that_is_not_a_container_image_is_refused():
    helm = {"config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": "sha256:" + "a" * 64,
                       "size": 2}, "layers": []}
    with pytest.raises(ScanFailed, match="not a container image"):
        config_descriptor(helm)
    chart = {"layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                         "digest": "sha256:" + "b" * 64, "size": 10}]}
    assert image_layers(chart)[0].media_type.endswith("tar+gzip")  # a tar is a tar
    wasm = {"layers": [{"mediaType": "application/wasm", "digest": "sha256:" + "b" * 64, "size": 10}]}
    with pytest.raises(ScanFailed, match="not a container image"):
        image_layers(wasm)


def test_layers_carry_their_diff_ids_and_foreign_layers_are_skipped():
    manifest = {"layers": [
        {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": "sha256:" + "a" * 64,
         "size": 1},
        {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "sha256:" + "b" * 64,
         "size": 2}]}
    config = {"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]}}
    assert image_layers(manifest, config) == [Layer("sha256:" + "b" * 64, 2,
                                                    "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                                    "sha256:" + "2" * 64)]
