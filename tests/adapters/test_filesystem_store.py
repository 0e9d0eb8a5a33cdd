from __future__ import annotations

import hashlib

import pytest

from adapters.storage.filesystem import FilesystemBlobStore
from domain.errors import BlobUnknownError, DigestInvalidError, UploadUnknownError


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.fixture
def store(tmp_path):
    return FilesystemBlobStore(tmp_path / "blobs")


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
    assert store.upload_info(upload_id) is None


def test_a_second_store_on_the_same_root_resumes_by_rehashing(store, tmp_path):
    upload_id = upload(store, b"first half, ")
    other = FilesystemBlobStore(tmp_path / "blobs")  # as another process would
    writer = other.upload_writer(upload_id)
    writer.write(b"second half")
    writer.commit()
    data = b"first half, second half"
    assert other.complete_upload(upload_id, digest_of(data)) == len(data)


def test_abort_rolls_the_upload_back(store):
    upload_id = upload(store, b"kept")
    writer = store.upload_writer(upload_id)
    writer.write(b"dropped")
    writer.abort()
    assert store.upload_info(upload_id).size == 4
    assert store.complete_upload(upload_id, digest_of(b"kept")) == 4


def test_wrong_digest_removes_the_upload_and_publishes_nothing(store):
    upload_id = upload(store, b"content")
    with pytest.raises(DigestInvalidError):
        store.complete_upload(upload_id, digest_of(b"different"))
    assert store.stat(digest_of(b"content")) is None
    assert store.upload_info(upload_id) is None


def test_sha512_digests_are_verified(store):
    data = b"sha512 content"
    upload_id = upload(store, data)
    digest = f"sha512:{hashlib.sha512(data).hexdigest()}"
    assert store.complete_upload(upload_id, digest) == len(data)
    assert store.stat(digest) == len(data)


def test_ranged_reads(store):
    data = bytes(range(256)) * 8192  # 2 MiB, more than one read chunk
    store.put(digest_of(data), data)
    assert b"".join(store.read(digest_of(data), 1000, 5)) == data[1000:1005]
    assert b"".join(store.read(digest_of(data), len(data) - 3)) == data[-3:]


def test_unknown_things(store):
    with pytest.raises(BlobUnknownError):
        store.open(digest_of(b"none"))
    with pytest.raises(UploadUnknownError):
        store.upload_writer("00000000-0000-0000-0000-000000000000")
    assert store.upload_info("../../etc") is None
    assert store.upload_info("00000000-0000-0000-0000-000000000000") is None


def test_writer_after_completion_does_not_touch_the_published_blob(store):
    upload_id = upload(store, b"final")
    store.complete_upload(upload_id, digest_of(b"final"))
    with pytest.raises(UploadUnknownError):
        store.upload_writer(upload_id)
    assert b"".join(store.read(digest_of(b"final"))) == b"final"
