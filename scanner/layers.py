"""An image's filesystem as the inventory needs it, read from its layers without extracting them.

The layers are applied in order as a container runtime would (OCI image spec, "Applying
Changesets"): an entry replaces what lower layers had at its path, `.wh.<name>` deletes `<name>`
from the layers below, `.wh..wh..opq` empties its directory of what the layers below put there.
Only the files the inventory asks for (a path predicate) are kept, in memory, with every
version the layers wrote (which layer installed a package); everything else streams past.

Untrusted input: a name that is absolute or holds `..` is ignored; symlinks are followed only
virtually, among the kept files, and never out of the image's root; every read is bounded
(scanner/limits.py) and checked against the scan's deadline; the bytes of each layer must
match its digest and size. Layers are gzip, zstd or plain tar, recognised by their first bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import posixpath
import zlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Callable

import orjson
import zstandard

from scanner.limits import Deadline, ScanFailed, ScanLimits, format_bytes
from scanner.tar_reader import Readable, TarReader

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
IMAGE_CONFIGS = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
# Layers whose bytes registries need not hold (Windows base layers): not read.
FOREIGN_LAYERS = ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                  "application/vnd.oci.image.layer.nondistributable.v1.tar",
                  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")
WHITEOUT, OPAQUE = ".wh.", ".wh..wh..opq"
READ_CHUNK = 1024 * 1024
ZSTD_MAX_WINDOW = 32 * 1024 * 1024  # the memory one zstd layer may make the decoder hold
_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
_OTHER_COMPRESSIONS = {b"BZh": "bzip2", b"\xfd7zXZ": "xz"}


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int
    media_type: str
    diff_id: str = ""  # the digest of its uncompressed tar (from the image config), when known


# --- manifests ---

def parse_document(data: bytes, what: str, limits: ScanLimits) -> dict:
    """A manifest, index or image config: a JSON object of bounded size."""
    if len(data) > limits.manifest_bytes:
        raise ScanFailed(f"the {what} is larger than {format_bytes(limits.manifest_bytes)}")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ScanFailed(f"the {what} is not valid JSON") from None
    if not isinstance(document, dict):
        raise ScanFailed(f"the {what} is not a JSON object")
    return document


def media_type_of(document: dict, declared: str = "") -> str:
    """The manifest's media type: its own field, else what the registry declared."""
    media_type = document.get("mediaType")
    return media_type if isinstance(media_type, str) and media_type else declared.split(";")[0].strip()


def platform_manifest(index: dict) -> dict:
    """The descriptor of the index's linux/amd64 image, else its first image (attestations
    and other non-image entries skipped)."""
    images = [d for d in _descriptors(index.get("manifests"), "manifests")
              if d.get("mediaType", OCI_MANIFEST) in IMAGE_MANIFESTS and not _is_attestation(d)]
    if not images:
        raise ScanFailed("the index lists no image manifest")
    for descriptor in images:
        platform = descriptor.get("platform") or {}
        if isinstance(platform, dict) and platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return descriptor
    return images[0]


def config_descriptor(manifest: dict) -> dict:
    config = manifest.get("config")
    if not isinstance(config, dict) or not _is_digest(config.get("digest")):
        raise ScanFailed("the manifest has no config descriptor")
    media_type = config.get("mediaType")
    if media_type not in IMAGE_CONFIGS:
        raise ScanFailed(f"the artifact is not a container image (its config is {media_type!r})")
    return config


def image_layers(manifest: dict, config: dict | None = None) -> list[Layer]:
    """The layers to apply, bottom first, with their diff ids from the image config."""
    diff_ids = []
    if config is not None:
        rootfs = config.get("rootfs")
        found = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        diff_ids = [d for d in found if isinstance(d, str)] if isinstance(found, list) else []
    layers = []
    for position, descriptor in enumerate(_descriptors(manifest.get("layers"), "layers")):
        media_type = descriptor.get("mediaType", "")
        size = descriptor.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ScanFailed("a layer descriptor has no valid size")
        if media_type in FOREIGN_LAYERS:
            continue
        if ".tar" not in media_type:
            raise ScanFailed(f"the artifact is not a container image (a layer is {media_type!r})")
        diff_id = diff_ids[position] if position < len(diff_ids) else ""
        layers.append(Layer(descriptor["digest"], size, media_type, diff_id))
    return layers


def _descriptors(value, what: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(d, dict) and _is_digest(d.get("digest")) for d in value):
        raise ScanFailed(f"the manifest's {what} are not a list of descriptors")
    return value


def _is_digest(value) -> bool:
    algorithm, _, hex_part = value.partition(":") if isinstance(value, str) else ("", "", "")
    return algorithm == "sha256" and len(hex_part) == 64 and all(c in "0123456789abcdef" for c in hex_part)


def _is_attestation(descriptor: dict) -> bool:
    annotations = descriptor.get("annotations") or {}
    platform = descriptor.get("platform") or {}
    return (isinstance(annotations, dict) and "vnd.docker.reference.type" in annotations) or \
        (isinstance(platform, dict) and platform.get("os") == "unknown")


# --- the image's files ---

@dataclass(frozen=True)
class FileVersion:
    data: bytes
    layer: str  # the digest of the layer that wrote these bytes


@dataclass
class ImageFiles:
    """The kept files: every version of each, oldest first, as long as no layer deleted it in
    between; and the kept symlinks."""

    layers: list[Layer]
    versions: dict[str, list[FileVersion]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # path -> target, as archived
    symlink_depth: int = 16

    def paths(self) -> list[str]:
        return sorted(self.versions)

    def read(self, path: str) -> FileVersion | None:
        """The file's current version, following kept symlinks inside the image."""
        resolved = self.resolve(path)
        history = self.versions.get(resolved) if resolved else None
        return history[-1] if history else None

    def history(self, path: str) -> list[FileVersion]:
        resolved = self.resolve(path)
        return list(self.versions.get(resolved, ())) if resolved else []

    def resolve(self, path: str) -> str | None:
        """The path a chain of symlinks leads to; None when it leaves the image's root, loops
        or is too long."""
        for _ in range(self.symlink_depth):
            target = self.links.get(path)
            if target is None:
                return path
            path = _link_target(path, target)
            if path is None:
                return None
        return None


def _link_target(path: str, target: str) -> str | None:
    """Where a symlink at `path` points, relative to the image's root (an absolute target
    starts at the image's root, as in a container); None when it climbs out."""
    joined = target if target.startswith("/") else posixpath.join(posixpath.dirname(path), target)
    parts: list[str] = []
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or None


def clean_path(name: str) -> str | None:
    """An archived name as a path in the image (`usr/lib/x`); None for a name to ignore: an
    absolute one, one with `..`, or the root itself."""
    if name.startswith("/"):
        return None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


OpenBlob = Callable[[Layer], AbstractContextManager[Readable]]


def read_image_files(layers: list[Layer], open_blob: OpenBlob, wanted: Callable[[str], bool],
                     limits: ScanLimits, deadline: Deadline) -> ImageFiles:
    """Applies the layers in order and keeps the files (and symlinks) whose path is `wanted`."""
    if len(layers) > limits.layers:
        raise ScanFailed(f"the image has {len(layers)} layers; the limit is {limits.layers}")
    budget = _Budget(limits, deadline)
    files = ImageFiles(layers, symlink_depth=limits.symlink_depth)
    for layer in layers:
        deadline.check()
        with open_blob(layer) as raw:
            verified = _VerifiedStream(raw, layer, deadline)
            _LayerApplier(files, layer, wanted, budget).apply(_decompressed(verified, layer, budget))
            verified.drain()
    return files


class _LayerApplier:
    """One layer's changes: deletions act on the layers below at once, additions wait until
    the layer ends (a whiteout never deletes what its own layer adds)."""

    def __init__(self, files: ImageFiles, layer: Layer, wanted: Callable[[str], bool], budget: _Budget) -> None:
        self.files, self.layer, self.wanted, self.budget = files, layer, wanted, budget
        self.added: dict[str, FileVersion] = {}
        self.added_links: dict[str, str] = {}
        self.directories = _ancestors(list(files.versions) + list(files.links))  # of what lies below

    def apply(self, stream: Readable) -> None:
        reader = TarReader(stream, self.budget.count_entry, self.budget.limits.header_bytes)
        for entry in reader.entries():
            path = clean_path(entry.name)
            if path is None:
                continue
            base = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if base == OPAQUE:
                self._delete_tree(parent)
            elif base.startswith(WHITEOUT):
                deleted = posixpath.join(parent, base[len(WHITEOUT):])
                self._delete_below_at(deleted)
                self._delete_tree(deleted)
            elif entry.kind == "directory":
                self._delete_below_at(path)
            else:
                self._replace(path)
                if self.wanted(path):
                    self._keep(path, entry, reader)
        self._merge()

    def _keep(self, path: str, entry, reader: TarReader) -> None:
        if entry.kind == "file":
            self.budget.count_file(path, entry.size, self.layer)
            self.added[path] = FileVersion(reader.read_data(entry), self.layer.digest)
        elif entry.kind == "symlink":
            self.budget.count_file(path, len(entry.linkname), self.layer)
            self.added_links[path] = entry.linkname
        elif entry.kind == "hardlink":  # the same bytes as a file archived before it
            target = clean_path(entry.linkname)
            source = self.added.get(target) if target else None
            if source is None and target and self.files.versions.get(target):
                source = self.files.versions[target][-1]
            if source is not None:
                self.added[path] = FileVersion(source.data, self.layer.digest)

    def _replace(self, path: str) -> None:
        """A non-directory at `path`: what lay below under `path/` is gone; what lay below at
        `path` itself is superseded when the layer ends (a file keeps its history)."""
        self.added.pop(path, None)
        self.added_links.pop(path, None)
        if path in self.directories:
            self._delete_tree(path)

    def _delete_below_at(self, path: str) -> None:
        self.files.versions.pop(path, None)
        self.files.links.pop(path, None)

    def _delete_tree(self, directory: str) -> None:
        """Everything under `directory` ("" for the root) in the layers below."""
        if directory and directory not in self.directories:
            return
        prefix = f"{directory}/" if directory else ""
        for kept in (self.files.versions, self.files.links):
            for path in [p for p in kept if p.startswith(prefix)]:
                del kept[path]

    def _merge(self) -> None:
        for path, version in self.added.items():
            self.files.links.pop(path, None)
            self.files.versions.setdefault(path, []).append(version)
        for path, target in self.added_links.items():
            self.files.versions.pop(path, None)
            self.files.links[path] = target


def _ancestors(paths: list[str]) -> set[str]:
    found = set()
    for path in paths:
        while "/" in path:
            path = path.rsplit("/", 1)[0]
            if path in found:
                break
            found.add(path)
    return found


class _Budget:
    """What the scan has used of its limits, across all layers."""

    def __init__(self, limits: ScanLimits, deadline: Deadline) -> None:
        self.limits, self.deadline = limits, deadline
        self.entries = self.decompressed = self.collected_bytes = self.collected_files = 0
        self.per_layer: dict[str, int] = {}  # decompressed bytes of each layer

    def count_entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.entries:
            raise ScanFailed(f"the image's layers hold more than {self.limits.entries} entries")

    def count_decompressed(self, size: int, layer: Layer, compressed: int) -> None:
        self.decompressed += size
        if self.decompressed > self.limits.decompressed_bytes:
            raise ScanFailed(f"the image's layers expand to more than {format_bytes(self.limits.decompressed_bytes)}")
        layer_total = self.per_layer[layer.digest] = self.per_layer.get(layer.digest, 0) + size
        if layer_total > self.limits.ratio_after_bytes and layer_total > compressed * self.limits.compression_ratio:
            raise ScanFailed(f"layer {layer.digest} expands more than {self.limits.compression_ratio} times its "
                             f"size (a decompression bomb?)")
        self.deadline.check()

    def count_file(self, path: str, size: int, layer: Layer) -> None:
        if size > self.limits.file_bytes:
            raise ScanFailed(f"{path} in layer {layer.digest} is {size} bytes; the scanner reads files of at most "
                             f"{format_bytes(self.limits.file_bytes)}")
        self.collected_bytes += size
        self.collected_files += 1
        if self.collected_bytes > self.limits.collected_bytes:
            raise ScanFailed(f"the files the scanner reads add up to more than "
                             f"{format_bytes(self.limits.collected_bytes)}")
        if self.collected_files > self.limits.collected_files:
            raise ScanFailed(f"the image has more than {self.limits.collected_files} files the scanner reads")


class _VerifiedStream:
    """A layer's bytes as the registry sends them: no more than its descriptor's size, and,
    once drained, exactly its size and digest."""

    def __init__(self, raw: Readable, layer: Layer, deadline: Deadline) -> None:
        self.raw, self.layer, self.deadline = raw, layer, deadline
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = READ_CHUNK) -> bytes:
        self.deadline.check()
        if size < 0:
            size = READ_CHUNK
        chunk = self.raw.read(min(size, READ_CHUNK, self.layer.size - self.count + 1))
        self.count += len(chunk)
        if self.count > self.layer.size:
            raise ScanFailed(f"layer {self.layer.digest} is larger than its descriptor's {self.layer.size} bytes")
        self.hash.update(chunk)
        return chunk

    def drain(self) -> None:
        while self.read(READ_CHUNK):
            pass
        if self.count != self.layer.size:
            raise ScanFailed(f"layer {self.layer.digest} has {self.count} bytes, "
                             f"not its descriptor's {self.layer.size}")
        if f"sha256:{self.hash.hexdigest()}" != self.layer.digest:
            raise ScanFailed(f"the bytes of layer {self.layer.digest} do not match its digest")


class _Decompressed:
    """A layer's tar stream: decompressed as read, counted against the budget, with the
    decoders' errors as a failed scan."""

    def __init__(self, source, verified: _VerifiedStream, layer: Layer, budget: _Budget, kind: str) -> None:
        self.source, self.verified, self.layer, self.budget, self.kind = source, verified, layer, budget, kind

    def read(self, size: int) -> bytes:
        try:
            chunk = self.source.read(min(size, READ_CHUNK))
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as error:
            raise ScanFailed(f"layer {self.layer.digest} is not valid {self.kind}: {error}") from None
        self.budget.count_decompressed(len(chunk), self.layer, self.verified.count)
        return chunk


class _Peeked:
    """A stream with its first bytes read ahead (to recognise the compression) and given back."""

    def __init__(self, stream: _VerifiedStream, head: bytes) -> None:
        self.stream, self.head = stream, head

    def read(self, size: int = READ_CHUNK) -> bytes:
        if self.head:
            chunk, self.head = self.head[:size], self.head[size:]
            return chunk
        return self.stream.read(size)


def _decompressed(verified: _VerifiedStream, layer: Layer, budget: _Budget) -> Readable:
    head = b""
    while len(head) < 6:
        chunk = verified.read(6 - len(head))
        if not chunk:
            break
        head += chunk
    peeked = _Peeked(verified, head)
    if head.startswith(_GZIP):
        return _Decompressed(gzip.GzipFile(fileobj=peeked, mode="rb"), verified, layer, budget, "gzip")
    if head.startswith(_ZSTD):
        reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            peeked, read_size=READ_CHUNK, read_across_frames=True)
        return _Decompressed(reader, verified, layer, budget, "zstd")
    for magic, name in _OTHER_COMPRESSIONS.items():
        if head.startswith(magic):
            raise ScanFailed(f"unsupported layer compression: layer {layer.digest} is {name}")
    return _Decompressed(peeked, verified, layer, budget, "tar")
