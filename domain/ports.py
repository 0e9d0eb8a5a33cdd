"""Ports the domain needs from the outside world; adapters implement them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator, Protocol
from uuid import UUID


@dataclass(frozen=True)
class UploadInfo:
    upload_id: str
    repository: str
    size: int


@dataclass(frozen=True)
class StoredBlob:
    """A published blob as its store lists it (for garbage collection)."""

    digest: str  # "sha256:<hex>"
    size: int
    modified_at: float  # POSIX seconds: when these bytes were last published at this address


class UploadWriter(Protocol):
    """Appends one request's bytes to an upload; `commit` keeps them, `abort` rolls back."""

    size: int

    def write(self, data: bytes) -> None: ...

    def commit(self) -> int: ...

    def abort(self) -> None: ...


class BlobStore(Protocol):
    """Content-addressed blob bytes plus the scratch space of uploads in flight."""

    name: str
    local_files: bool  # open() gives a real local file (the API may memory-map it)

    def redirect_url(self, digest: str) -> str | None:
        """Where clients may fetch the blob directly (a presigned URL), if configured."""
        ...

    def stat(self, digest: str) -> int | None: ...

    def check(self) -> None:
        """Raises when blobs can be neither listed nor written (the health endpoints)."""
        ...

    def capacity(self) -> tuple[int, int] | None:
        """(total, free) bytes of the volume the blobs are on, or None where unknowable (S3)."""
        ...

    def read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]: ...

    def open(self, digest: str) -> BinaryIO: ...

    def put(self, digest: str, data: bytes) -> None: ...

    def delete(self, digest: str) -> None: ...

    def stored_blobs(self) -> Iterator[StoredBlob]:
        """Every published blob (what `stat`, `read` and `delete` see), streamed in no
        particular order, never held in memory as a whole; never uploads in flight nor their
        scratch objects, nor anything at the blobs' location that is not a well-formed digest.
        Publishing (`put`, `complete_upload`), even of bytes already stored, sets `modified_at`
        to the time of publishing. Blobs published or deleted during a listing may or may not
        be in it."""
        ...

    def start_upload(self, repository: str) -> UploadInfo: ...

    def upload_info(self, upload_id: str) -> UploadInfo | None: ...

    def upload_writer(self, upload_id: str) -> UploadWriter: ...

    def complete_upload(self, upload_id: str, digest: str) -> int: ...

    def cancel_upload(self, upload_id: str) -> None: ...

    def abort_stale_uploads(self, older_than_seconds: float) -> int:
        """Removes uploads untouched for that long (clients that gave up); returns how many."""
        ...


class SecretHasher(Protocol):
    """One-way hashing of passwords and robot secrets (a slow, salted KDF)."""

    def hash(self, secret: str) -> str: ...

    def verify(self, hashed: str, secret: str) -> bool: ...


class SecretBox(Protocol):
    """Encrypts secrets the registry must use again (a remote registry's password), so that
    the event log and the read models hold only ciphertext."""

    def seal(self, secret: str) -> str: ...

    def open(self, sealed: str) -> str: ...


class LogPositions(Protocol):
    """Where aggregates' events stand in the log (adapters/log_store.py)."""

    def version_at(self, originator_id: UUID, position: int) -> int | None:
        """The version of the aggregate's last event at or before `position` (None: none)."""
        ...

    def head(self) -> int:
        """The position of the log's last event (0: none)."""
        ...
