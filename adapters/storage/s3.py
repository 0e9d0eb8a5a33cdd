"""Blob store on an S3 server (verified against SeaweedFS) through the minio SDK.

Keys in the bucket:

    blobs/<algorithm>/<hex>           published blob and manifest bytes, immutable
    uploads/<id>/state.json           the upload's state; the upload exists while this does
    uploads/<id>/tail-<generation>    bytes after the last part (under 5 MiB), never rewritten
    uploads/<id>/data                 the S3 multipart upload, then the assembled object while
                                      the upload completes

Upload state is shared, so any node can take the next chunk. `state.json` holds the
repository, creation time, size, a generation (new on every commit), the S3 multipart upload
id, the committed parts (number, etag, size) and the tail object (key, size). A writer spools
the request to a temporary file under `spool_dir` (never the whole request in memory), sends
it as a part every PART_SIZE bytes (the multipart upload is created with the first part) and
at commit sends the remainder as a part when it reaches S3's 5 MiB minimum, else stores it as
a new tail object. Writing `state.json` is the commit point: an aborted or failed request
leaves the upload exactly as it was, and because part numbers continue from the committed
state, a retry overwrites what the failed request sent; completion names only committed parts.
One part (8 MiB) is in memory while it is sent: the SDK signs the payload's sha256.

Small uploads never become multipart uploads: under 5 MiB the bytes are only the tail object,
and completion is one server-side copy of it. A 1 MiB push (POST, then PUT with the body)
costs this store 7 requests: start_upload 1 (write the state), the writer 3 (read the state,
write the tail, write the state), complete_upload 3 (read the state, copy, delete the upload's
objects in one request); the application's two upload_info calls add a state read each.

Hashing: a running sha256 cannot be serialized, so it stays in this process (HasherCache),
keyed by upload id and (size, generation). The writer continues it when it finds it, starts a
fresh one for an empty upload, and otherwise hashes nothing; completion uses it on a hit and
on a miss (another node took some chunks, a restart, sha512) re-hashes by streaming the
assembled object from S3. Re-hashing costs a read of the blob; the alternative, sending every
chunk of an upload to one node, needs affinity that load balancers of registries rarely give.

Completion joins the tail to the multipart upload as its last part (UploadPartCopy), completes
it at `uploads/<id>/data`, verifies the digest and copies the object server-side to its content
address. S3 makes an object visible only once whole, so a blob key never shows partial bytes,
whatever fails. Then the upload's objects are deleted.

Listing (`stored_blobs`, for garbage collection) pages through `blobs/` with ListObjects;
`modified_at` is the object's Last-Modified on the server's clock: when it was written, and a
server-side copy is a new write, so completion and `put` (always a fresh PUT, even of bytes
already stored) leave the time of publishing, never that of the upload's chunks.

Concurrent writers on one upload (OCI chunks are sequential, so only a misbehaving client):
both continue the same committed state and the last commit wins; the loser's bytes are lost.
The generation in the hasher key keeps the loser's running hash from vouching for the winner's
bytes, so completion re-hashes and publishes only bytes that match the digest.

S3 unreachable or failing surfaces as StorageUnavailableError, in seconds: a refused
connection after two quick retries (under a second), an unreachable host after 3 × 2 s, a
server that takes requests and never answers after 2 × 10 s (server-side copies, which answer
only when done, get 300 s).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import certifi
import orjson
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import Part as MinioPart
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error

from adapters.storage.hashing import MAX_CACHED_HASHERS, HasherCache, digest_of_chunks
from adapters.storage.paths import UPLOAD_ID_RE
from domain.errors import (
    BlobUnknownError,
    DigestInvalidError,
    SizeInvalidError,
    StorageUnavailableError,
    UploadInvalidError,
    UploadUnknownError,
)
from domain.names import parse_digest
from domain.ports import StoredBlob, UploadInfo

MiB = 1024 * 1024
PART_SIZE = 8 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PARTS = 10_000  # S3's limit: uploads up to ~78 GiB with 8 MiB parts
MAX_SINGLE_COPY = 5 * 1024 * MiB  # larger sources need a multipart copy
READ_CHUNK = 4 * MiB
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 10.0  # silence from a server that took the request
SERVER_SIDE_TIMEOUT = 300.0  # copies and multipart completions answer only when done
RETRIES = 2  # refused connections and 5xx answers
READ_RETRIES = 1  # a pooled connection the server closed meanwhile; idempotent requests only
MAX_CONNECTIONS = 32

log = logging.getLogger(__name__)

_FAILURES = (MinioException, urllib3.exceptions.HTTPError)


def _unavailable(error: Exception) -> StorageUnavailableError:
    log.warning("S3 request failed: %s", error)
    return StorageUnavailableError("blob storage unavailable, retry later", {"storage": "s3"})


def _storage_call(method):
    """S3 failures leave as StorageUnavailableError; domain errors pass unchanged."""

    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except _FAILURES as error:
            raise _unavailable(error) from error

    return call


def _is_missing(error: S3Error, code: str = "NoSuchKey") -> bool:
    return error.code == code


# Keys


BLOBS_PREFIX = "blobs/"


def blob_key(digest: str) -> str:
    algorithm, encoded = digest.split(":", 1)
    return f"{BLOBS_PREFIX}{algorithm}/{encoded}"


def digest_of_key(key: str) -> str | None:
    """The digest a blob key holds; None for any other key (not a well-formed digest)."""
    if not key.startswith(BLOBS_PREFIX):
        return None
    algorithm, _, encoded = key[len(BLOBS_PREFIX):].partition("/")
    try:
        return str(parse_digest(f"{algorithm}:{encoded}"))
    except DigestInvalidError:
        return None


UPLOADS_PREFIX = "uploads/"


def state_key(upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/state.json"


def data_key(upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/data"


def tail_key(upload_id: str, generation: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/tail-{generation}"


def upload_id_of(key: str) -> str:
    return key[len(UPLOADS_PREFIX):].split("/", 1)[0]


# Upload state


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class Tail:
    key: str
    size: int


@dataclass(frozen=True)
class UploadState:
    repository: str
    created: str
    generation: str
    size: int = 0
    multipart_id: str | None = None
    parts: tuple[Part, ...] = field(default_factory=tuple)
    tail: Tail | None = None

    @classmethod
    def new(cls, repository: str) -> UploadState:
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return cls(repository, created, _new_generation())

    @property
    def position(self) -> tuple[int, str]:
        """Where a running hash of this upload must stand to be valid."""
        return self.size, self.generation

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, data: bytes) -> UploadState:
        fields = orjson.loads(data)
        tail = fields.pop("tail")
        return cls(**fields | {
            "parts": tuple(Part(**part) for part in fields["parts"]),
            "tail": Tail(**tail) if tail else None,
        })


def _new_generation() -> str:
    return uuid.uuid4().hex


# The store


class S3BlobStore:
    name = "s3"
    local_files = False

    def __init__(self, endpoint: str, bucket: str, access_key: str, secret_key: str, *,
                 region: str = "us-east-1", secure: bool = False, spool_dir: Path,
                 redirect: bool = False, upload_hashers: int = MAX_CACHED_HASHERS) -> None:
        def client(read_timeout: float) -> Minio:
            return Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                         region=region, http_client=_http_client(read_timeout))

        self.bucket = _Bucket(client(READ_TIMEOUT), client(SERVER_SIDE_TIMEOUT), bucket)
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.redirect = redirect  # the API may answer blob GETs with presigned_get_url
        self._hashers = HasherCache(upload_hashers)
        _storage_call(self.bucket.create_if_missing)()

    # Health

    def check(self) -> None:
        """The SDK's own error when S3 does not answer (the health endpoints show its reason)."""
        if not self.bucket.client.bucket_exists(self.bucket.name):
            raise StorageUnavailableError(f"the bucket {self.bucket.name} does not exist")

    def capacity(self) -> None:
        return None  # S3 has no volume size to report

    # Published blobs

    @_storage_call
    def stat(self, digest: str) -> int | None:
        return self.bucket.size_of(blob_key(digest))

    @_storage_call
    def open(self, digest: str) -> BinaryIO:
        return S3ObjectReader(self._get_blob(digest))

    @_storage_call
    def read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        if length == 0:
            if self.stat(digest) is None:
                raise _blob_unknown(digest)
            return iter(())
        try:
            return _stream(self._get_blob(digest, offset, length))
        except S3Error as error:
            if error.code != "InvalidRange":
                raise
            return iter(())  # from past the end: nothing, as a file reads

    @_storage_call
    def put(self, digest: str, data: bytes) -> None:
        self.bucket.put(blob_key(digest), io.BytesIO(data), len(data))

    @_storage_call
    def delete(self, digest: str) -> None:
        self.bucket.delete([blob_key(digest)])

    def stored_blobs(self) -> Iterator[StoredBlob]:
        """Streams the listing one page (up to 1000 keys) at a time."""
        try:
            for key, size, modified in self.bucket.list_objects(BLOBS_PREFIX):
                digest = digest_of_key(key)
                if digest is not None and modified is not None:  # no date: never collect it
                    yield StoredBlob(digest, size, modified.timestamp())
        except _FAILURES as error:
            raise _unavailable(error) from error

    def redirect_url(self, digest: str) -> str | None:
        return self.presigned_get_url(digest) if self.redirect else None

    @_storage_call
    def presigned_get_url(self, digest: str, expires_seconds: int = 600) -> str:
        return self.bucket.presigned_get(blob_key(digest), timedelta(seconds=expires_seconds))

    def _get_blob(self, digest: str, offset: int = 0, length: int | None = None):
        response = self.bucket.get(blob_key(digest), offset, length)
        if response is None:
            raise _blob_unknown(digest)
        return response

    # Uploads

    @_storage_call
    def start_upload(self, repository: str) -> UploadInfo:
        upload_id = str(uuid.uuid4())
        self._save_state(upload_id, UploadState.new(repository))
        return UploadInfo(upload_id, repository, 0)

    @_storage_call
    def upload_info(self, upload_id: str) -> UploadInfo | None:
        state = self._load_state(upload_id)
        return None if state is None else UploadInfo(upload_id, state.repository, state.size)

    @_storage_call
    def upload_writer(self, upload_id: str) -> S3UploadWriter:
        return S3UploadWriter(self, upload_id, self._require_state(upload_id))

    @_storage_call
    def complete_upload(self, upload_id: str, digest: str) -> int:
        state = self._require_state(upload_id)
        source = self._assemble(upload_id, state)
        actual = (self._hashers.digest(upload_id, state.position, digest)
                  or self._hash_object(source, digest.split(":", 1)[0]))
        if actual != digest:
            self._remove_upload(upload_id, state)
            raise DigestInvalidError(
                "uploaded content does not match the digest",
                {"expected": digest, "actual": actual, "size": state.size},
            )
        self._publish(source, blob_key(digest), state.size)
        self._forget_completed_upload(upload_id, state)
        return state.size

    @_storage_call
    def cancel_upload(self, upload_id: str) -> None:
        self._hashers.drop(upload_id)
        state = self._load_state(upload_id)
        if state is not None:
            self._remove_upload(upload_id, state)

    @_storage_call
    def abort_stale_uploads(self, older_than_seconds: float) -> int:
        """Removes uploads with no activity for the given age: their objects and multipart
        uploads, including multipart uploads that no state names any more. Returns how many.
        Ages come from the S3 server's clock, compared with ours."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than_seconds)
        objects: dict[str, list[str]] = defaultdict(list)
        multiparts: dict[str, list[tuple[str, str]]] = defaultdict(list)
        active: set[str] = set()
        for key, _, modified in self.bucket.list_objects(UPLOADS_PREFIX):
            objects[upload_id_of(key)].append(key)
            if modified > cutoff:
                active.add(upload_id_of(key))
        for key, multipart_id, initiated in self.bucket.list_multipart_uploads(UPLOADS_PREFIX):
            multiparts[upload_id_of(key)].append((key, multipart_id))
            if initiated > cutoff:
                active.add(upload_id_of(key))
        stale = (objects.keys() | multiparts.keys()) - active
        for upload_id in stale:
            self._hashers.drop(upload_id)
            for key, multipart_id in multiparts.get(upload_id, ()):
                self.bucket.abort_multipart(key, multipart_id)
            self.bucket.delete(objects.get(upload_id, ()))
        return len(stale)

    # Upload internals

    def _load_state(self, upload_id: str) -> UploadState | None:
        if not UPLOAD_ID_RE.fullmatch(upload_id):
            return None
        data = self.bucket.get_small(state_key(upload_id))
        return None if data is None else UploadState.from_json(data)

    def _require_state(self, upload_id: str) -> UploadState:
        state = self._load_state(upload_id)
        if state is None:
            raise UploadUnknownError("upload unknown to registry", {"upload": upload_id})
        return state

    def _save_state(self, upload_id: str, state: UploadState) -> None:
        self.bucket.put_small(state_key(upload_id), state.to_json())

    def _assemble(self, upload_id: str, state: UploadState) -> str | None:
        """The key of one object holding the whole upload; None for an empty upload."""
        if state.multipart_id is None:
            return state.tail.key if state.tail else None
        target = data_key(upload_id)
        parts = list(state.parts)
        try:
            if state.tail:
                number = len(parts) + 1
                etag = self.bucket.copy_part(state.tail.key, target, state.multipart_id, number)
                parts.append(Part(number, etag, state.tail.size))
            self.bucket.complete_multipart(target, state.multipart_id, parts)
        except S3Error as error:
            if _is_missing(error, "NoSuchUpload") and self.bucket.size_of(target) == state.size:
                return target  # a completion that failed later got this far
            if error.code in ("NoSuchUpload", "InvalidPart"):
                # Only a concurrent writer or a sweep of a live upload can get here.
                self._remove_upload(upload_id, state)
                raise UploadInvalidError("upload changed while completing", {"upload": upload_id}) from None
            raise
        return target

    def _hash_object(self, key: str | None, algorithm: str) -> str:
        if key is None:
            return digest_of_chunks((), algorithm)
        return digest_of_chunks(_stream(self.bucket.get(key)), algorithm)

    def _publish(self, source: str | None, target: str, size: int) -> None:
        if source is None:
            self.bucket.put(target, io.BytesIO(b""), 0)
        else:
            self.bucket.copy(source, target, size)

    def _upload_keys(self, upload_id: str, state: UploadState) -> list[str]:
        keys = [state_key(upload_id), data_key(upload_id)]
        return keys + [state.tail.key] if state.tail else keys

    def _remove_upload(self, upload_id: str, state: UploadState) -> None:
        self._hashers.drop(upload_id)
        if state.multipart_id is not None:
            self.bucket.abort_multipart(data_key(upload_id), state.multipart_id)
        self.bucket.delete(self._upload_keys(upload_id, state))

    def _forget_completed_upload(self, upload_id: str, state: UploadState) -> None:
        """The blob is published: a failure now is not the client's; the sweep retries it."""
        self._hashers.drop(upload_id)
        try:
            self.bucket.delete(self._upload_keys(upload_id, state))
        except _FAILURES as error:
            log.warning("could not remove completed upload %s: %s", upload_id, error)


class S3UploadWriter:
    """Appends one request's bytes to an upload. Nothing is visible to others until commit()
    writes the new state; abort() discards what this writer sent."""

    def __init__(self, store: S3BlobStore, upload_id: str, state: UploadState) -> None:
        self._store, self._bucket, self._upload_id = store, store.bucket, upload_id
        self._state = state
        self.size = state.size
        self._spool = tempfile.TemporaryFile(dir=store.spool_dir)
        self._spooled = 0
        self._tail_loaded = state.tail is None
        self._multipart_id = state.multipart_id
        self._created_multipart = False
        self._new_parts: list[Part] = []
        self._hasher = _resume_hasher(store._hashers, upload_id, state)
        self._hasher_at_start = self._hasher.copy() if self._hasher is not None else None

    @_storage_call
    def write(self, data: bytes) -> None:
        if not data:
            return
        self._load_tail()
        view = memoryview(data)
        while view:
            piece = view[:PART_SIZE - self._spooled]
            self._spool.write(piece)
            self._spooled += len(piece)
            view = view[len(piece):]
            if self._spooled == PART_SIZE:
                self._send_spool_as_part()
        if self._hasher is not None:
            self._hasher.update(data)
        self.size += len(data)

    @_storage_call
    def commit(self) -> int:
        if self.size == self._state.size:
            self._finish(self._state, self._hasher)
            return self.size
        if self._spooled >= MIN_PART_SIZE:
            self._send_spool_as_part()
        generation = _new_generation()
        tail = self._save_tail(generation) if self._spooled else None
        state = replace(self._state, size=self.size, generation=generation,
                        multipart_id=self._multipart_id,
                        parts=self._state.parts + tuple(self._new_parts), tail=tail)
        self._store._save_state(self._upload_id, state)
        self._finish(state, self._hasher)
        if self._state.tail is not None:
            self._delete_quietly(self._state.tail.key)
        return self.size

    def abort(self) -> None:
        """Never raises: it runs while another error is on its way to the client."""
        self._finish(self._state, self._hasher_at_start)
        self.size = self._state.size
        if self._created_multipart:
            try:
                self._bucket.abort_multipart(data_key(self._upload_id), self._multipart_id)
            except _FAILURES as error:
                log.warning("could not abort multipart upload of %s: %s", self._upload_id, error)

    def _finish(self, state: UploadState, hasher) -> None:
        self._spool.close()
        if hasher is not None:
            self._store._hashers.put(self._upload_id, state.position, hasher)

    def _load_tail(self) -> None:
        """The committed tail goes first into the spool: the next part must start with it."""
        if self._tail_loaded:
            return
        response = self._bucket.get(self._state.tail.key)
        if response is None:
            raise UploadUnknownError("upload completed or cancelled meanwhile", {"upload": self._upload_id})
        for chunk in _stream(response):
            self._spool.write(chunk)
        self._spooled = self._state.tail.size
        self._tail_loaded = True

    def _send_spool_as_part(self) -> None:
        number = len(self._state.parts) + len(self._new_parts) + 1
        if number > MAX_PARTS:
            raise SizeInvalidError("upload too large", {"max_parts": MAX_PARTS, "part_size": PART_SIZE})
        if self._multipart_id is None:
            self._multipart_id = self._bucket.start_multipart(data_key(self._upload_id))
            self._created_multipart = True
        self._spool.seek(0)
        body = self._spool.read(self._spooled)
        etag = self._bucket.upload_part(data_key(self._upload_id), self._multipart_id, number, body)
        self._new_parts.append(Part(number, etag, len(body)))
        self._spool.seek(0)
        self._spool.truncate()
        self._spooled = 0

    def _save_tail(self, generation: str) -> Tail:
        key = tail_key(self._upload_id, generation)
        self._spool.seek(0)
        self._bucket.put(key, self._spool, self._spooled)
        return Tail(key, self._spooled)

    def _delete_quietly(self, key: str) -> None:
        try:
            self._bucket.delete([key])
        except _FAILURES as error:
            log.warning("could not delete the previous tail %s: %s", key, error)


def _resume_hasher(hashers: HasherCache, upload_id: str, state: UploadState):
    """The running sha256 at the committed state, or None when this process does not have it."""
    if state.size == 0:
        return hashlib.sha256()
    return hashers.take(upload_id, state.position)


class S3ObjectReader(io.RawIOBase):
    """An object's bytes from one GET, read as a file; close() frees the connection."""

    def __init__(self, response) -> None:
        super().__init__()
        self._response = response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self._response.readinto(buffer)
        except _FAILURES as error:
            raise _unavailable(error) from error

    def read(self, size: int = -1) -> bytes:
        try:
            return self._response.read(None if size is None or size < 0 else size)
        except _FAILURES as error:
            raise _unavailable(error) from error

    def readall(self) -> bytes:
        return self.read()

    def close(self) -> None:
        if not self.closed:
            _release(self._response)
        super().close()


def _stream(response) -> Iterator[bytes]:
    try:
        yield from response.stream(READ_CHUNK)
    except _FAILURES as error:
        raise _unavailable(error) from error
    finally:
        _release(response)


def _release(response) -> None:
    """A fully read connection goes back to the pool; a partly read one is closed."""
    response.close()
    response.release_conn()


def _blob_unknown(digest: str) -> BlobUnknownError:
    return BlobUnknownError("blob unknown to registry", {"digest": digest})


def _http_client(read_timeout: float) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=read_timeout),
        maxsize=MAX_CONNECTIONS,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=RETRIES, read=READ_RETRIES, backoff_factor=0.2,
                              status_forcelist=(500, 502, 503, 504)),
    )


class _Bucket:
    """The S3 operations the store needs, on one bucket, named for what they do. Missing
    objects are None, not errors; every other failure propagates. The multipart calls are the
    SDK's own low-level ones (private names, stable across 7.x). Requests that make the server
    copy bytes before it answers go through `patient`, a client with a long read timeout."""

    def __init__(self, client: Minio, patient: Minio, name: str) -> None:
        self.client, self.patient, self.name = client, patient, name

    def create_if_missing(self) -> None:
        if self.client.bucket_exists(self.name):
            return
        try:
            self.client.make_bucket(self.name)
        except S3Error as error:
            if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def size_of(self, key: str) -> int | None:
        try:
            return self.client.stat_object(self.name, key).size
        except S3Error as error:
            if _is_missing(error):
                return None
            raise

    def get(self, key: str, offset: int = 0, length: int | None = None):
        """A streaming response (Range GET when offset or length is given), or None."""
        try:
            return self.client.get_object(self.name, key, offset=offset, length=length or 0)
        except S3Error as error:
            if _is_missing(error):
                return None
            raise

    def get_small(self, key: str) -> bytes | None:
        response = self.get(key)
        if response is None:
            return None
        try:
            return response.read()
        finally:
            _release(response)

    def put(self, key: str, stream: BinaryIO, length: int) -> None:
        self.client.put_object(self.name, key, stream, length)

    def put_small(self, key: str, data: bytes) -> None:
        self.put(key, io.BytesIO(data), len(data))

    def delete(self, keys: Iterable[str]) -> None:
        """One request for all keys; missing keys are not an error."""
        objects = [DeleteObject(key) for key in keys]
        if not objects:
            return
        for error in self.client.remove_objects(self.name, objects):
            raise MinioException(f"could not delete {error.name}: {error.code} {error.message}")

    def copy(self, source: str, target: str, size: int) -> None:
        """Server-side copy. The SDK's copy_object first asks for the source's size, which we
        know: up to S3's single-copy limit one PUT does, beyond it the SDK copies in parts."""
        if size > MAX_SINGLE_COPY:
            self.patient.copy_object(self.name, target, CopySource(self.name, source))
            return
        headers = CopySource(self.name, source).gen_copy_headers()
        self.patient._execute("PUT", self.name, target, headers=headers)

    def start_multipart(self, key: str) -> str:
        return self.client._create_multipart_upload(self.name, key, {})

    def upload_part(self, key: str, multipart_id: str, number: int, body: bytes) -> str:
        return self.client._upload_part(self.name, key, body, None, multipart_id, number)

    def copy_part(self, source: str, key: str, multipart_id: str, number: int) -> str:
        headers = CopySource(self.name, source).gen_copy_headers()
        etag, _ = self.patient._upload_part_copy(self.name, key, multipart_id, number, headers)
        return etag

    def complete_multipart(self, key: str, multipart_id: str, parts: list[Part]) -> None:
        self.patient._complete_multipart_upload(
            self.name, key, multipart_id, [MinioPart(part.number, part.etag) for part in parts])

    def abort_multipart(self, key: str, multipart_id: str) -> None:
        try:
            self.client._abort_multipart_upload(self.name, key, multipart_id)
        except S3Error as error:
            if not _is_missing(error, "NoSuchUpload"):
                raise

    def list_objects(self, prefix: str) -> Iterator[tuple[str, int, datetime]]:
        """(key, size, last modified) of every object under the prefix, page by page."""
        for item in self.client.list_objects(self.name, prefix=prefix, recursive=True):
            yield item.object_name, item.size, item.last_modified

    def list_multipart_uploads(self, prefix: str) -> Iterator[tuple[str, str, datetime]]:
        key_marker = upload_id_marker = None
        while True:
            page = self.client._list_multipart_uploads(
                self.name, prefix=prefix, key_marker=key_marker, upload_id_marker=upload_id_marker)
            for upload in page.uploads:
                yield upload.object_name, upload.upload_id, upload.initiated_time
            if not page.is_truncated or not page.uploads:
                return
            key_marker, upload_id_marker = page.uploads[-1].object_name, page.uploads[-1].upload_id

    def presigned_get(self, key: str, expires: timedelta) -> str:
        return self.client.presigned_get_object(self.name, key, expires=expires)

