"""A file or directory of OSV records an operator imports (`portlog vulndb import`): checked
and counted before anything is stored, and the bytes to store — the file itself, or a
directory packed into one zip (in a private temporary directory, removed afterwards)."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from scanner.vulndb import read_records, record_ecosystems

CHUNK = 1024 * 1024
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the same directory packs to the same bytes


@dataclass(frozen=True)
class OsvFile:
    path: Path  # what to store: the file imported, or the zip a directory was packed into
    file_name: str
    records: int
    ecosystems: dict[str, int]

    def chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as file:
            while chunk := file.read(CHUNK):
                yield chunk

    def default_source_name(self) -> str:
        """The ecosystem family when there is one ("Debian" for Debian:11 and Debian:12 records),
        else the file's name without its extension."""
        families = {ecosystem.split(":")[0] for ecosystem in self.ecosystems}
        return families.pop() if len(families) == 1 else Path(self.file_name).stem or "osv"


@contextmanager
def osv_file(path: Path) -> Iterator[OsvFile]:
    """Raises scanner.vulndb.InvalidVulnerabilityData when the data is not OSV records."""
    records, ecosystems = 0, Counter()
    for _, record in read_records(path):
        records += 1
        ecosystems.update(record_ecosystems(record))
    if not path.is_dir():
        yield OsvFile(path, path.name, records, dict(ecosystems))
        return
    scratch = Path(tempfile.mkdtemp(prefix="portlog-vulndb-"))
    try:
        packed = scratch / f"{path.name or 'osv'}.zip"
        _pack(path, packed)
        yield OsvFile(packed, packed.name, records, dict(ecosystems))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _pack(directory: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in directory.rglob("*.json") if p.is_file() and not _through_link(p, directory)):
            info = zipfile.ZipInfo(file.relative_to(directory).as_posix(), _ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(file, "rb") as source, archive.open(info, "w") as member:
                shutil.copyfileobj(source, member, CHUNK)


def _through_link(file: Path, root: Path) -> bool:
    """Whether the file lies under a symlinked directory (read_records does not follow those)."""
    return any((root / parent).is_symlink() for parent in file.relative_to(root).parents if parent != Path("."))
