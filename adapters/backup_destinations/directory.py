"""A backup in a directory: each file written to a temporary name, flushed to disk and renamed,
so a file is there whole or not at all; directories 0700, files 0600 (a backup holds every
private image and the secret key)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator

from adapters.private_files import PRIVATE_FILE, private_dir

CHUNK = 1024 * 1024
_TEMPORARY = ".partial-"


class DirectoryDestination:
    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def size(self, name: str) -> int | None:
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, name: str) -> BinaryIO:
        return open(self._path(name), "rb")

    def write(self, name: str, stream: BinaryIO, size: int) -> None:
        target = self._path(name)
        private_dir(target.parent)
        temporary = target.with_name(f"{_TEMPORARY}{uuid.uuid4().hex}")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
            with os.fdopen(descriptor, "wb") as file:
                remaining = size
                while remaining > 0 and (chunk := stream.read(min(CHUNK, remaining))):
                    file.write(chunk)
                    remaining -= len(chunk)
                if remaining:
                    raise EOFError(f"{name}: {remaining} bytes short")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def write_bytes(self, name: str, data: bytes) -> None:
        import io

        self.write(name, io.BytesIO(data), len(data))

    def delete(self, names: list[str]) -> None:
        for name in names:
            self._path(name).unlink(missing_ok=True)

    def names(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for directory, _, files in os.walk(self.root):
            for file in files:
                if not file.startswith(_TEMPORARY):
                    yield Path(directory, file).relative_to(self.root).as_posix()

    def _path(self, name: str) -> Path:
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"not a name inside the backup: {name!r}")
        return self.root / name
