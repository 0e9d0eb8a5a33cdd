"""Deterministic OCI image layouts for end-to-end tests (standard library only)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
APPLETS = ("cat", "echo", "ls", "sh")
EPOCH = "1970-01-01T00:00:00Z"
REF_NAME = "org.opencontainers.image.ref.name"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass
class ImageInfo:
    layout: Path
    tag: str
    manifest_digest: str
    config_digest: str
    layer_digests: list[str]
    manifest_bytes: bytes


@dataclass
class IndexInfo:
    layout: Path
    tag: str
    index_digest: str
    index_bytes: bytes
    images: list[ImageInfo]


def build_image_layout(
    dest: Path,
    tag: str = "1.0",
    *,
    text: str = "hello from portlog",
    arch: str = "amd64",
    extra_files: dict[str, bytes] | None = None,
) -> ImageInfo:
    dest = Path(dest)
    image = _write_image(dest, tag, text, arch, extra_files or {})
    _tag(dest, _descriptor(MT_MANIFEST, image.manifest_bytes), tag)
    return image


def build_multiarch_layout(
    dest: Path, tag: str = "multi", arches: tuple[str, ...] = ("amd64", "arm64")
) -> IndexInfo:
    dest = Path(dest)
    images = [_write_image(dest, tag, f"hello from {arch}", arch, {}) for arch in arches]
    manifests = [
        {**_descriptor(MT_MANIFEST, image.manifest_bytes), "platform": {"architecture": arch, "os": "linux"}}
        for arch, image in zip(arches, images)
    ]
    index_bytes = _canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests})
    index_digest = _write_blob(dest, index_bytes)
    _tag(dest, _descriptor(MT_INDEX, index_bytes), tag)
    return IndexInfo(dest, tag, index_digest, index_bytes, images)


def _write_image(dest: Path, tag: str, text: str, arch: str, extra_files: dict[str, bytes]) -> ImageInfo:
    _init_layout(dest)
    layer_tar = _rootfs_tar({"etc/text": text.encode(), **extra_files})
    layer_gz = gzip.compress(layer_tar, compresslevel=9, mtime=0)
    layer_digest = _write_blob(dest, layer_gz)
    config_bytes = _canonical(_config(arch, _digest(layer_tar)))
    config_digest = _write_blob(dest, config_bytes)
    manifest_bytes = _canonical({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": _descriptor(MT_CONFIG, config_bytes),
        "layers": [_descriptor(MT_LAYER, layer_gz)],
    })
    manifest_digest = _write_blob(dest, manifest_bytes)
    return ImageInfo(dest, tag, manifest_digest, config_digest, [layer_digest], manifest_bytes)


def _config(arch: str, diff_id: str) -> dict:
    return {
        "created": EPOCH,
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Entrypoint": ["/bin/sh"], "Cmd": ["-c", "cat /etc/text"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": EPOCH, "created_by": "portlog tests/support/images.py"}],
    }


def _rootfs_tar(files: dict[str, bytes]) -> bytes:
    if not BUSYBOX.is_file():
        raise RuntimeError(f"{BUSYBOX} is missing: apt-get install busybox-static")
    entries: dict[str, tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]] = {}
    entries["bin/busybox"] = (_entry("bin/busybox", tarfile.REGTYPE, 0o755), BUSYBOX.read_bytes())
    for applet in APPLETS:
        entries[f"bin/{applet}"] = _entry(f"bin/{applet}", tarfile.SYMTYPE, 0o777, linkname="busybox")
    for name, data in files.items():
        name = name.lstrip("/")
        entries[name] = (_entry(name, tarfile.REGTYPE, 0o644), data)
    for name in list(entries):
        for parent in list(Path(name).parents)[:-1]:
            entries.setdefault(parent.as_posix(), _entry(parent.as_posix(), tarfile.DIRTYPE, 0o755))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            entry = entries[name]
            if isinstance(entry, tuple):
                info, data = entry
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(entry)
    return buf.getvalue()


def _entry(name: str, kind: bytes, mode: int, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, linkname
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def _init_layout(dest: Path) -> None:
    (dest / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (dest / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))
    if not (dest / "index.json").exists():
        (dest / "index.json").write_bytes(_canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}))


def _tag(dest: Path, descriptor: dict, tag: str) -> None:
    index = json.loads((dest / "index.json").read_bytes())
    manifests = index.setdefault("manifests", [])
    entry = {**descriptor, "annotations": {REF_NAME: tag}}
    names = [m.get("annotations", {}).get(REF_NAME) for m in manifests]
    if tag in names:
        manifests[names.index(tag)] = entry
    else:
        manifests.append(entry)
    (dest / "index.json").write_bytes(_canonical(index))


def _write_blob(dest: Path, data: bytes) -> str:
    digest = _digest(data)
    path = dest / "blobs" / "sha256" / digest.removeprefix("sha256:")
    if not path.exists():
        path.write_bytes(data)
    return digest


def _descriptor(media_type: str, data: bytes) -> dict:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
