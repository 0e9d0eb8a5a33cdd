"""Blob store on a local filesystem: streaming writes with incremental sha256,
atomic publish (write aside, verify, fsync, rename), streaming reads.

A published blob's mtime is when it was last published (set just before the rename, so the
blob never shows at its address with the time of an upload's last chunk; a `put` of bytes
already stored refreshes it): garbage collection spares blobs published recently."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path
from stat import S_ISREG
from typing import BinaryIO, Iterator

import orjson

from adapters.private_files import PRIVATE_FILE, private_dir, write_private
from adapters.storage.hashing import MAX_CACHED_HASHERS, HasherCache
from adapters.storage.paths import blob_path, tmp_dir, upload_paths
from domain.errors import BlobUnknownError, DigestInvalidError, UploadUnknownError
from domain.names import parse_digest
from domain.ports import StoredBlob, UploadInfo

READ_CHUNK = 4 * 1024 * 1024  # fewer thread-pool round trips per streamed blob


class FilesystemBlobStore:
    name = "filesystem"
    local_files = True

    def __init__(self, root: Path, upload_hashers: int = MAX_CACHED_HASHERS) -> None:
        self.root = Path(root)
        for sub in ("blobs", "uploads", "tmp"):
            private_dir(self.root / sub)
        self._hashers = HasherCache(upload_hashers)

    # Health

    def check(self) -> None:
        """Lists the blob directory and writes, then removes, a file in its scratch directory: a
        volume unmounted, removed or mounted read-only fails here."""
        with os.scandir(self.root / "blobs") as entries:
            next(entries, None)
        probe = tmp_dir(self.root) / f"health-{uuid.uuid4()}"
        probe.write_bytes(b"")
        probe.unlink()

    def capacity(self) -> tuple[int, int]:
        usage = shutil.disk_usage(self.root)
        return usage.total, usage.free

    # Published blobs

    def stat(self, digest: str) -> int | None:
        try:
            return blob_path(self.root, digest).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(blob_path(self.root, digest), "rb")
        except FileNotFoundError:
            raise BlobUnknownError("blob unknown to registry", {"digest": digest}) from None

    def read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        return read_chunks(self.open(digest), offset, length)

    def put(self, digest: str, data: bytes) -> None:
        target = blob_path(self.root, digest)
        try:
            os.utime(target, ns=_now_ns())  # stored already: published again, now
            return
        except FileNotFoundError:
            pass
        scratch = tmp_dir(self.root) / str(uuid.uuid4())
        with os.fdopen(os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _publish(scratch, target)

    def delete(self, digest: str) -> None:
        blob_path(self.root, digest).unlink(missing_ok=True)

    def stored_blobs(self) -> Iterator[StoredBlob]:
        """Walks blobs/<algorithm>/<shard>/ one directory entry at a time."""
        for algorithm in _subdirectories(self.root / "blobs"):
            for shard in _subdirectories(algorithm.path):
                for entry in _scan(shard.path):
                    if entry.name[:2] != shard.name:  # not where stat() looks
                        continue
                    digest = _well_formed_digest(algorithm.name, entry.name)
                    if digest is None:
                        continue
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:  # deleted meanwhile
                        continue
                    if S_ISREG(info.st_mode):
                        yield StoredBlob(digest, info.st_size, info.st_mtime)

    def redirect_url(self, digest: str) -> None:
        return None

    # Uploads

    def start_upload(self, repository: str) -> UploadInfo:
        upload_id = str(uuid.uuid4())
        data, info = upload_paths(self.root, upload_id)
        write_private(info, orjson.dumps({"repository": repository}))
        data.touch(mode=PRIVATE_FILE, exist_ok=False)
        self._hashers.put(upload_id, 0, hashlib.sha256())
        return UploadInfo(upload_id, repository, 0)

    def upload_info(self, upload_id: str) -> UploadInfo | None:
        paths = upload_paths(self.root, upload_id)
        if paths is None:
            return None
        try:
            info = orjson.loads(paths[1].read_bytes())
            size = paths[0].stat().st_size
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        return UploadInfo(upload_id, info["repository"], size)

    def upload_writer(self, upload_id: str) -> FileUploadWriter:
        return FileUploadWriter(self._data_path(upload_id), upload_id, self._hashers)

    def complete_upload(self, upload_id: str, digest: str) -> int:
        data_path = self._data_path(upload_id)
        with open(data_path, "rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            size = os.fstat(f.fileno()).st_size
            actual = self._hashers.digest(upload_id, size, digest) or _hash_file(f, digest)
            if actual != digest:
                self._remove_upload(upload_id)
                raise DigestInvalidError(
                    "uploaded content does not match the digest",
                    {"expected": digest, "actual": actual, "size": size},
                )
            os.fsync(f.fileno())
            _publish(data_path, blob_path(self.root, digest))
        self._remove_upload(upload_id)
        return size

    def cancel_upload(self, upload_id: str) -> None:
        self._remove_upload(upload_id)

    def abort_stale_uploads(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        stale = 0
        for data_path in (self.root / "uploads").iterdir():
            upload_id = data_path.name
            if upload_paths(self.root, upload_id) is None:  # the .json halves, strays
                continue
            try:
                idle = data_path.stat().st_mtime < cutoff
            except FileNotFoundError:  # completed meanwhile
                continue
            if idle:
                self._remove_upload(upload_id)
                stale += 1
        return stale

    def _data_path(self, upload_id: str) -> Path:
        paths = upload_paths(self.root, upload_id)
        if paths is None or not paths[0].exists():
            raise UploadUnknownError("upload unknown to registry", {"upload": upload_id})
        return paths[0]

    def _remove_upload(self, upload_id: str) -> None:
        self._hashers.drop(upload_id)
        for path in upload_paths(self.root, upload_id) or ():
            path.unlink(missing_ok=True)


class FileUploadWriter:
    """Holds an exclusive lock on the upload's data file until commit or abort."""

    def __init__(self, path: Path, upload_id: str, hashers: HasherCache) -> None:
        self._file = open(path, "ab")
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        if not _same_file(path, self._file):
            self._file.close()
            raise UploadUnknownError("upload completed or cancelled meanwhile", {"upload": upload_id})
        self.size = self._start = os.fstat(self._file.fileno()).st_size
        self._upload_id = upload_id
        self._hashers = hashers
        self._hasher = hashers.take(upload_id, self._start)

    def write(self, data: bytes) -> None:
        self._file.write(data)
        if self._hasher is not None:
            self._hasher.update(data)
        self.size += len(data)

    def commit(self) -> int:
        self._file.close()
        if self._hasher is not None:
            self._hashers.put(self._upload_id, self.size, self._hasher)
        return self.size

    def abort(self) -> None:
        self._file.flush()
        os.ftruncate(self._file.fileno(), self._start)
        self._file.close()
        self.size = self._start


def read_chunks(f: BinaryIO, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
    with f:
        f.seek(offset)
        remaining = length
        while remaining is None or remaining > 0:
            chunk = f.read(READ_CHUNK if remaining is None else min(READ_CHUNK, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def _same_file(path: Path, f: BinaryIO) -> bool:
    """After waiting for the lock: is `path` still the file we opened (not completed away)?"""
    try:
        return os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


def _hash_file(f: BinaryIO, digest: str) -> str:
    algorithm = digest.split(":", 1)[0]
    hasher = hashlib.new(algorithm)
    f.seek(0)
    while chunk := f.read(READ_CHUNK):
        hasher.update(chunk)
    return f"{algorithm}:{hasher.hexdigest()}"


def _publish(source: Path, target: Path) -> None:
    """Renames the verified bytes to their address, stamped with the time of publishing."""
    private_dir(target.parent)
    os.utime(source, ns=_now_ns())
    os.replace(source, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _now_ns() -> tuple[int, int]:
    """(atime, mtime) for os.utime: this clock exactly, not the kernel's coarser file clock."""
    now = time.time_ns()
    return now, now


def _scan(directory: str | Path) -> Iterator[os.DirEntry]:
    try:
        with os.scandir(directory) as entries:
            yield from entries
    except FileNotFoundError:
        return


def _subdirectories(directory: str | Path) -> Iterator[os.DirEntry]:
    for entry in _scan(directory):
        if entry.is_dir(follow_symlinks=False):
            yield entry


def _well_formed_digest(algorithm: str, encoded: str) -> str | None:
    try:
        return str(parse_digest(f"{algorithm}:{encoded}"))
    except DigestInvalidError:
        return None
