"""Where backups are written (docs/operations.md, Backups): a directory, or a bucket (and an
optional prefix) on an S3 server. One module per kind; the composition root chooses one from the
destination's URL (config/bootstrap.py `backup_destination`).

A destination holds named files (`backup.json`, `log/…`, `blobs/sha256/…`, `secret.key`),
written whole or not at all (a temporary file renamed, an S3 object), read back as streams.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator, Protocol


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
