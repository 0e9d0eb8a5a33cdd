"""A tar stream read entry by entry, headers only unless the caller asks for an entry's bytes.

Written for hostile input instead of using `tarfile`: tarfile reads a PAX or GNU long-name
header of any announced size into memory, while here every header is bounded, every entry is
counted before anything else happens, and an entry's data is either read whole (by a caller who
checked its size) or skipped in small chunks. Formats: ustar, PAX (`path`, `linkpath`, `size`)
and GNU (long names, base-256 sizes). Nothing is ever written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

from scanner.limits import ScanFailed, format_bytes

BLOCK = 512
SKIP_CHUNK = 1024 * 1024
_ZERO_BLOCK = bytes(BLOCK)
_REGULAR, _HARDLINK, _SYMLINK, _DIRECTORY = (b"0", b"\0", b"7"), b"1", b"2", b"5"
_NO_DATA = (b"1", b"2", b"3", b"4", b"5", b"6")  # links, devices, directories, FIFOs
_PAX, _PAX_GLOBAL, _GNU_LONG_NAME, _GNU_LONG_LINK = b"x", b"g", b"L", b"K"
_HIGH_BYTES = bytes(range(128, 256))


class Readable(Protocol):
    def read(self, size: int) -> bytes: ...


@dataclass(frozen=True)
class TarEntry:
    name: str  # as archived: may be absolute, hold "..", or anything else
    kind: str  # "file", "directory", "symlink", "hardlink" or "other"
    size: int  # bytes of data (files)
    linkname: str  # a link's target


class TarReader:
    def __init__(self, stream: Readable, count_entry: Callable[[], None], header_bytes: int) -> None:
        """`count_entry` is called for every header before it is acted upon (it raises to stop);
        `header_bytes` bounds an extended header."""
        self._stream = stream
        self._count_entry = count_entry
        self._header_bytes = header_bytes
        self._unread = 0  # data (with padding) of the current entry not read yet
        self._buffer = b""  # read ahead from the stream: headers are small, reads are not
        self._offset = 0

    def entries(self) -> Iterator[TarEntry]:
        """Every entry in order. The caller may `read_data` the entry just yielded; whatever it
        leaves is skipped before the next one."""
        extended: dict[str, str] = {}
        while True:
            self._skip(self._unread)
            self._unread = 0
            header = self._read_block()
            if header is None or header == _ZERO_BLOCK:
                return  # the end-of-archive marker (or a stream ending on a block boundary)
            self._count_entry()
            _check_checksum(header)
            kind, size = header[156:157], _number(header[124:136], "size")
            if kind in (_PAX, _PAX_GLOBAL, _GNU_LONG_NAME, _GNU_LONG_LINK):
                self._extended(kind, size, extended)
                continue
            name = extended.pop("path", None) or _ustar_name(header)
            linkname = extended.pop("linkpath", None) or _text(header[157:257])
            if "size" in extended:
                size = _pax_size(extended["size"])
            extended.clear()
            has_data = kind not in _NO_DATA
            self._unread = _padded(size) if has_data else 0
            yield TarEntry(name, _kind(kind), size if has_data else 0, linkname)

    def read_data(self, entry: TarEntry) -> bytes:
        """The whole data of the entry just yielded (the caller bounded `entry.size`)."""
        data = self._read_exact(entry.size, "an entry's data")
        self._unread -= entry.size
        return data

    def _extended(self, kind: bytes, size: int, extended: dict[str, str]) -> None:
        if size > self._header_bytes:
            raise ScanFailed(f"a tar extended header of {size} bytes is over the limit of "
                             f"{format_bytes(self._header_bytes)}")
        data = self._read_exact(size, "an extended header")
        self._skip(_padded(size) - size)
        if kind == _PAX:
            extended.update(_pax_records(data))
        elif kind == _GNU_LONG_NAME:
            extended["path"] = _text(data)
        elif kind == _GNU_LONG_LINK:
            extended["linkpath"] = _text(data)
        # PAX global headers only carry defaults Portlog does not use.

    def _read_block(self) -> bytes | None:
        first = self._take(BLOCK)
        if not first:
            return None
        rest = self._read_exact(BLOCK - len(first), "a tar header") if len(first) < BLOCK else b""
        return first + rest

    def _read_exact(self, size: int, what: str) -> bytes:
        parts, missing = [], size
        while missing:
            chunk = self._take(missing)
            if not chunk:
                raise ScanFailed(f"the layer ends in the middle of {what} (a truncated tar stream)")
            parts.append(chunk)
            missing -= len(chunk)
        return b"".join(parts)

    def _skip(self, size: int) -> None:
        while size:
            chunk = self._take(size)
            if not chunk:
                raise ScanFailed("the layer ends in the middle of an entry (a truncated tar stream)")
            size -= len(chunk)

    def _take(self, size: int) -> bytes:
        """Up to `size` bytes: from what was read ahead, else one read of the stream."""
        if self._offset == len(self._buffer):
            self._buffer, self._offset = self._stream.read(SKIP_CHUNK), 0
        chunk = self._buffer[self._offset:self._offset + size]
        self._offset += len(chunk)
        return chunk


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _kind(flag: bytes) -> str:
    if flag in _REGULAR:
        return "file"
    return {_DIRECTORY: "directory", _SYMLINK: "symlink", _HARDLINK: "hardlink"}.get(flag, "other")


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _ustar_name(header: bytes) -> str:
    name = _text(header[0:100])
    if header[257:263] == b"ustar\0":  # POSIX ustar; GNU's magic is "ustar  " and has no prefix
        prefix = _text(header[345:500])
        if prefix:
            return f"{prefix}/{name}"
    return name


def _number(field: bytes, what: str) -> int:
    """A numeric header field: octal text, or GNU's base-256 (first byte 0x80; 0xff is negative)."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    if field[:1] == b"\xff":
        raise ScanFailed(f"a tar header has a negative {what}")
    text = field.replace(b"\0", b" ").strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise ScanFailed(f"a tar header has a malformed {what} field (not a tar archive?)") from None


def _check_checksum(header: bytes) -> None:
    """The sum of the header's bytes (the checksum field as spaces), unsigned or, as some old
    tars wrote it, signed."""
    recorded = _number(header[148:156], "checksum")
    blanked = header[:148] + b" " * 8 + header[156:]
    unsigned = sum(blanked)
    if recorded != unsigned and recorded != unsigned - 256 * (BLOCK - len(blanked.translate(None, _HIGH_BYTES))):
        raise ScanFailed("a tar header's checksum does not match (not a tar archive, or a corrupt layer)")


def _pax_records(data: bytes) -> dict[str, str]:
    """`<length> <key>=<value>\\n` records; length counts the whole record."""
    records, offset = {}, 0
    while offset < len(data):
        space = data.find(b" ", offset, offset + 20)
        try:
            length = int(data[offset:space]) if space > offset else 0
        except ValueError:
            length = 0
        end = offset + length
        if length <= 0 or end > len(data) or data[end - 1:end] != b"\n" or b"=" not in data[space + 1:end]:
            raise ScanFailed("a malformed PAX extended header")
        key, value = data[space + 1:end - 1].split(b"=", 1)
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        offset = end
    return records


def _pax_size(text: str) -> int:
    if not text.isdigit():
        raise ScanFailed("a PAX header has a malformed size")
    return int(text)
