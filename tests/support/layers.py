"""Image layers for the scanner's tests: ordinary ones built with tarfile, and hostile ones
generated on the fly (never whole in memory nor on disk)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from scanner.layers import Layer

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR_LAYER = "application/vnd.oci.image.layer.v1.tar"
ZERO_MIB = bytes(1024 * 1024)


@dataclass(frozen=True)
class Symlink:
    target: str


@dataclass(frozen=True)
class Hardlink:
    target: str


def tar_bytes(entries: dict[str, bytes | Symlink | Hardlink | None]) -> bytes:
    """A tar archive: bytes are files, None a directory, in the order given."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, value in entries.items():
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if value is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            elif isinstance(value, Symlink):
                info.type, info.linkname = tarfile.SYMTYPE, value.target
                archive.addfile(info)
            elif isinstance(value, Hardlink):
                info.type, info.linkname = tarfile.LNKTYPE, value.target
                archive.addfile(info)
            else:
                info.size = len(value)
                archive.addfile(info, io.BytesIO(value))
    return out.getvalue()


def gzip_layer(entries: dict) -> bytes:
    return gzip.compress(tar_bytes(entries), mtime=0)


def layer_of(data: bytes, media_type: str = GZIP_LAYER, diff_id: str = "") -> Layer:
    return Layer(f"sha256:{hashlib.sha256(data).hexdigest()}", len(data), media_type, diff_id)


class Blobs:
    """Layers by digest, opened as streams: bytes, or a generator factory for big ones."""

    def __init__(self) -> None:
        self._sources: dict[str, Callable[[], Iterable[bytes]]] = {}
        self.opened: list[str] = []

    def add(self, data: bytes, media_type: str = GZIP_LAYER) -> Layer:
        layer = layer_of(data, media_type)
        self._sources[layer.digest] = lambda: [data]
        return layer

    def add_stream(self, layer: Layer, chunks: Callable[[], Iterable[bytes]]) -> Layer:
        self._sources[layer.digest] = chunks
        return layer

    @contextmanager
    def open(self, layer: Layer) -> Iterator[ChunkReader]:
        self.opened.append(layer.digest)
        yield ChunkReader(iter(self._sources[layer.digest]()))


class ChunkReader:
    """read(n) over an iterator of chunks, as an HTTP body is read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        while self._offset == len(self._buffer):
            try:
                self._buffer, self._offset = next(self._chunks), 0
            except StopIteration:
                return b""
        end = len(self._buffer) if size < 0 else self._offset + size
        chunk = self._buffer[self._offset:end]
        self._offset += len(chunk)
        return chunk


# --- hostile layers ---

def header(name: str, size: int, kind: bytes = b"0") -> bytes:
    """One ustar header block (sizes past 8 GiB in GNU's base-256)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.type = size, 0, kind
    return info.tobuf(format=tarfile.GNU_FORMAT)


def big_file_stream(name: str, size: int) -> Callable[[], Iterator[bytes]]:
    """An uncompressed tar of one file of `size` zero bytes, generated as it is read."""
    def chunks() -> Iterator[bytes]:
        yield header(name, size)
        left = size
        while left:
            step = min(left, len(ZERO_MIB))
            yield ZERO_MIB[:step] if step < len(ZERO_MIB) else ZERO_MIB
            left -= step
        yield bytes(-size % 512) + bytes(1024)
    return chunks


def gzip_bomb(expanded_gib: int) -> tuple[Layer, Callable[[], Iterator[bytes]]]:
    """A gzip stream of one file of zeros expanding to `expanded_gib` GiB: the same gzip member
    of 64 MiB of zeros repeated (concatenated members are one gzip stream)."""
    member_bytes = 64 * 1024 * 1024
    members = expanded_gib * 16
    first = gzip.compress(header("var/lib/big", expanded_gib * 1024 ** 3) + bytes(member_bytes - 512), 9, mtime=0)
    rest = gzip.compress(bytes(member_bytes), 9, mtime=0)
    digest = hashlib.sha256(first)
    for _ in range(members - 1):
        digest.update(rest)
    size = len(first) + len(rest) * (members - 1)
    layer = Layer(f"sha256:{digest.hexdigest()}", size, GZIP_LAYER)
    return layer, lambda: iter([first, *([rest] * (members - 1))])


def many_entries_stream(count: int) -> Callable[[], Iterator[bytes]]:
    """An uncompressed tar of `count` empty files, generated as it is read."""
    template = bytearray(header("f" * 20, 0))

    def entry(index: int) -> bytes:
        block = bytearray(template)
        block[0:20] = f"d/{index:018d}".encode()
        block[148:156] = b"        "
        block[148:156] = b"%06o\0 " % sum(block)
        return bytes(block)

    def chunks() -> Iterator[bytes]:
        batch = []
        for index in range(count):
            batch.append(entry(index))
            if len(batch) == 2048:
                yield b"".join(batch)
                batch = []
        yield b"".join(batch) + bytes(1024)
    return chunks


