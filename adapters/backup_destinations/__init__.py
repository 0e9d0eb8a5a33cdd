"""Where backups are written (docs/operations.md, Backups): a directory, or a bucket (and an
optional prefix) on an S3 server. One module per kind; `destination_for` reads the URL.

A destination holds named files (`backup.json`, `log/…`, `blobs/sha256/…`, `secret.key`),
written whole or not at all (a temporary file renamed, an S3 object), read back as streams.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Iterator, Protocol

from adapters.outbound import OutboundGuard
from domain.errors import InvalidInputError


class Destination(Protocol):
    def describe(self) -> str:
        """The destination as people may see it: without credentials."""
        ...

    def size(self, name: str) -> int | None: ...

    def open(self, name: str) -> BinaryIO:
        """The file's bytes as a stream; FileNotFoundError when there is no such file."""
        ...

    def write(self, name: str, stream: BinaryIO, size: int) -> None:
        """Stores exactly `size` bytes read from `stream` (never held whole in memory)."""
        ...

    def write_bytes(self, name: str, data: bytes) -> None: ...

    def flush(self) -> None:
        """Everything written so far is durable (before the manifest that lists it is written)."""
        ...

    def delete(self, names: list[str]) -> None: ...

    def names(self) -> Iterator[str]:
        """Every file there, streamed."""
        ...


def destination_for(url: str, outbound: OutboundGuard | None = None) -> Destination:
    """The destination a URL names: `s3://ACCESS:SECRET@HOST:PORT/BUCKET[/PREFIX]?secure=false`
    or a directory (a path, or file:///PATH). `outbound`: the guard an S3 server a user named
    is reached through (None: an operator's own, from the command line)."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInputError("a backup destination is a directory or an s3:// URL", {"field": "destination"})
    if url.startswith("s3://"):
        from adapters.backup_destinations.s3 import S3Destination  # only S3 destinations load the SDK

        return S3Destination.from_url(url, outbound)
    from adapters.backup_destinations.directory import DirectoryDestination

    if url.startswith("file://"):
        url = url.removeprefix("file://")
    elif "://" in url:
        raise InvalidInputError("a backup destination is a directory or an s3:// URL", {"field": "destination"})
    return DirectoryDestination(Path(url).absolute())
