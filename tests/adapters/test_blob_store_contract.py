"""The BlobStore contract, run against every store: the filesystem store and the S3 store on
a real SeaweedFS. `backend()` makes another instance on the same storage, as a second process
or node of one registry would be."""

from __future__ import annotations

import hashlib
import itertools
import time

import pytest

from adapters.storage.filesystem import FilesystemBlobStore
from domain.errors import BlobUnknownError, DigestInvalidError, UploadUnknownError
from tests.support.seaweed import s3_store

UNKNOWN_UPLOAD = "00000000-0000-0000-0000-000000000000"


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.fixture(params=["filesystem", "s3"])
def backend(request, tmp_path):
    if request.param == "filesystem":
        return lambda: FilesystemBlobStore(tmp_path / "blobs")
    server, bucket = request.getfixturevalue("seaweedfs"), request.getfixturevalue("s3_bucket")
    nodes = itertools.count()
    return lambda: s3_store(server, bucket, tmp_path / f"spool-{next(nodes)}")


@pytest.fixture
def store(backend):
    return backend()


def upload(store, *parts: bytes) -> str:
    upload_id = store.start_upload("team/app").upload_id
    for part in parts:
        writer = store.upload_writer(upload_id)
        writer.write(part)
        writer.commit()
    return upload_id


def test_upload_is_published_at_its_content_address(store):
    upload_id = upload(store, b"hello ", b"world")
    assert store.complete_upload(upload_id, digest_of(b"hello world")) == 11
    assert b"".join(store.read(digest_of(b"hello world"))) == b"hello world"
    assert store.stat(digest_of(b"hello world")) == 11
    assert store.upload_info(upload_id) is None


def test_another_instance_resumes_the_upload_by_rehashing(store, backend):
    upload_id = upload(store, b"first half, ")
    other = backend()
    writer = other.upload_writer(upload_id)
    assert writer.size == len(b"first half, ")
    writer.write(b"second half")
    writer.commit()
    data = b"first half, second half"
    assert other.complete_upload(upload_id, digest_of(data)) == len(data)
    assert b"".join(store.read(digest_of(data))) == data


def test_upload_info_follows_the_commits(store):
    info = store.start_upload("team/app")
    assert (info.repository, info.size) == ("team/app", 0)
    writer = store.upload_writer(info.upload_id)
    writer.write(b"12345")
    assert writer.commit() == 5
    assert store.upload_info(info.upload_id).size == 5
    assert store.upload_info(info.upload_id).repository == "team/app"


def test_abort_rolls_the_upload_back(store):
    upload_id = upload(store, b"kept")
    writer = store.upload_writer(upload_id)
    writer.write(b"dropped")
    writer.abort()
    assert writer.size == 4
    assert store.upload_info(upload_id).size == 4
    assert store.complete_upload(upload_id, digest_of(b"kept")) == 4


def test_a_request_without_bytes_changes_nothing(store):
    upload_id = upload(store, b"some bytes", b"")
    assert store.upload_info(upload_id).size == 10
    assert store.complete_upload(upload_id, digest_of(b"some bytes")) == 10


def test_wrong_digest_removes_the_upload_and_publishes_nothing(store):
    upload_id = upload(store, b"content")
    with pytest.raises(DigestInvalidError):
        store.complete_upload(upload_id, digest_of(b"different"))
    assert store.stat(digest_of(b"content")) is None
    assert store.stat(digest_of(b"different")) is None
    assert store.upload_info(upload_id) is None


def test_sha512_digests_are_verified(store):
    data = b"sha512 content"
    upload_id = upload(store, data)
    digest = f"sha512:{hashlib.sha512(data).hexdigest()}"
    assert store.complete_upload(upload_id, digest) == len(data)
    assert store.stat(digest) == len(data)


def test_an_empty_upload_publishes_an_empty_blob(store):
    upload_id = upload(store)
    assert store.complete_upload(upload_id, digest_of(b"")) == 0
    assert store.stat(digest_of(b"")) == 0
    assert b"".join(store.read(digest_of(b""))) == b""


def test_cancel_removes_the_upload(store):
    upload_id = upload(store, b"abandoned")
    store.cancel_upload(upload_id)
    assert store.upload_info(upload_id) is None
    with pytest.raises(UploadUnknownError):
        store.upload_writer(upload_id)
    with pytest.raises(UploadUnknownError):
        store.complete_upload(upload_id, digest_of(b"abandoned"))
    store.cancel_upload(upload_id)  # twice is fine


def test_ranged_reads(store):
    data = bytes(range(256)) * 8192  # 2 MiB, more than one read chunk
    store.put(digest_of(data), data)
    assert b"".join(store.read(digest_of(data), 1000, 5)) == data[1000:1005]
    assert b"".join(store.read(digest_of(data), len(data) - 3)) == data[-3:]
    assert b"".join(store.read(digest_of(data))) == data


def test_open_reads_a_manifest_as_a_file(store):
    manifest = b'{"schemaVersion": 2}'
    store.put(digest_of(manifest), manifest)
    store.put(digest_of(manifest), manifest)  # idempotent
    with store.open(digest_of(manifest)) as f:
        assert f.read() == manifest


def test_delete_removes_the_blob(store):
    store.put(digest_of(b"gone"), b"gone")
    store.delete(digest_of(b"gone"))
    assert store.stat(digest_of(b"gone")) is None
    with pytest.raises(BlobUnknownError):
        store.open(digest_of(b"gone"))
    store.delete(digest_of(b"gone"))  # twice is fine


def test_unknown_things(store):
    with pytest.raises(BlobUnknownError):
        store.open(digest_of(b"none"))
    with pytest.raises(BlobUnknownError):
        store.read(digest_of(b"none"))
    assert store.stat(digest_of(b"none")) is None
    with pytest.raises(UploadUnknownError):
        store.upload_writer(UNKNOWN_UPLOAD)
    with pytest.raises(UploadUnknownError):
        store.complete_upload(UNKNOWN_UPLOAD, digest_of(b""))
    assert store.upload_info("../../etc") is None
    assert store.upload_info(UNKNOWN_UPLOAD) is None


def test_writer_after_completion_does_not_touch_the_published_blob(store):
    upload_id = upload(store, b"final")
    store.complete_upload(upload_id, digest_of(b"final"))
    with pytest.raises(UploadUnknownError):
        store.upload_writer(upload_id)
    assert b"".join(store.read(digest_of(b"final"))) == b"final"


def test_stale_uploads_are_removed_and_fresh_ones_kept(store):
    stale = upload(store, b"abandoned by its client")
    assert store.abort_stale_uploads(older_than_seconds=3600) == 0
    assert store.upload_info(stale) is not None
    time.sleep(0.01)
    assert store.abort_stale_uploads(older_than_seconds=0) == 1
    assert store.upload_info(stale) is None
    fresh = upload(store, b"still going")
    assert store.abort_stale_uploads(older_than_seconds=3600) == 0
    assert store.upload_info(fresh).size == len(b"still going")


def test_only_configured_stores_redirect(store):
    digest = digest_of(b"served by the node")
    store.put(digest, b"served by the node")
    assert store.redirect_url(digest) is None


def listing(store) -> dict[str, int]:
    """digest -> size of every blob the store lists."""
    blobs = list(store.stored_blobs())
    assert len({blob.digest for blob in blobs}) == len(blobs)  # each blob once
    return {blob.digest: blob.size for blob in blobs}


def test_stored_blobs_lists_what_put_and_completed_uploads_published(store):
    assert listing(store) == {}
    store.put(digest_of(b"manifest"), b"manifest")
    store.put(digest_of(b"manifest"), b"manifest")
    layer = upload(store, b"layer ", b"bytes")
    store.complete_upload(layer, digest_of(b"layer bytes"))
    store.complete_upload(upload(store), digest_of(b""))
    sha512 = f"sha512:{hashlib.sha512(b'long digest').hexdigest()}"
    store.complete_upload(upload(store, b"long digest"), sha512)
    assert listing(store) == {
        digest_of(b"manifest"): len(b"manifest"),
        digest_of(b"layer bytes"): len(b"layer bytes"),
        digest_of(b""): 0,
        sha512: len(b"long digest"),
    }


def test_stored_blobs_streams(store):
    store.put(digest_of(b"one"), b"one")
    blobs = store.stored_blobs()
    assert iter(blobs) is blobs  # an iterator, not a list built first
    assert [blob.digest for blob in blobs] == [digest_of(b"one")]


def test_uploads_in_flight_are_not_listed(store):
    store.put(digest_of(b"published"), b"published")
    upload(store, b"started, ", b"never completed")
    store.start_upload("team/app")
    writer = store.upload_writer(upload(store, b"committed"))
    writer.write(b"in the middle of a request")
    assert listing(store) == {digest_of(b"published"): len(b"published")}
    writer.abort()
    assert listing(store) == {digest_of(b"published"): len(b"published")}


def test_deleted_and_rejected_blobs_are_not_listed(store):
    store.put(digest_of(b"kept"), b"kept")
    store.put(digest_of(b"gone"), b"gone")
    store.delete(digest_of(b"gone"))
    with pytest.raises(DigestInvalidError):
        store.complete_upload(upload(store, b"content"), digest_of(b"different"))
    store.cancel_upload(upload(store, b"cancelled"))
    assert listing(store) == {digest_of(b"kept"): len(b"kept")}


def test_modified_at_is_the_time_of_publishing(store):
    """Not that of the upload's last chunk, nor of an earlier publish of the same bytes: GC
    spares blobs published within its grace period. S3 dates have one-second resolution."""
    layer = upload(store, b"chunk written early")
    store.put(digest_of(b"stored before"), b"stored before")
    time.sleep(1.1)
    before = time.time()
    store.complete_upload(layer, digest_of(b"chunk written early"))
    store.put(digest_of(b"stored before"), b"stored before")  # published again
    store.put(digest_of(b"new"), b"new")
    after = time.time()
    blobs = list(store.stored_blobs())
    assert len(blobs) == 3
    for blob in blobs:
        assert before - 1 <= blob.modified_at <= after + 1, blob
