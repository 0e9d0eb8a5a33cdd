"""What only the filesystem store promises; the BlobStore contract is in test_blob_store_contract.py."""

from __future__ import annotations

import hashlib
import os
import time

from adapters.storage.filesystem import FilesystemBlobStore


def test_blobs_live_at_the_documented_paths_and_uploads_leave_nothing(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    upload_id = store.start_upload("team/app").upload_id
    writer = store.upload_writer(upload_id)
    writer.write(b"layer bytes")
    writer.commit()
    encoded = hashlib.sha256(b"layer bytes").hexdigest()
    store.complete_upload(upload_id, f"sha256:{encoded}")
    assert (tmp_path / "blobs" / "sha256" / encoded[:2] / encoded).read_bytes() == b"layer bytes"
    assert list((tmp_path / "uploads").iterdir()) == []


def test_an_aborted_chunk_is_truncated_away_on_disk(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    upload_id = store.start_upload("team/app").upload_id
    writer = store.upload_writer(upload_id)
    writer.write(b"kept")
    writer.commit()
    writer = store.upload_writer(upload_id)
    writer.write(b"dropped")
    writer.abort()
    assert (tmp_path / "uploads" / upload_id).read_bytes() == b"kept"


def test_only_well_formed_blobs_at_their_shard_are_listed(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    store.put(f"sha256:{hashlib.sha256(b'real').hexdigest()}", b"real")
    encoded = hashlib.sha256(b"stray").hexdigest()
    shard = tmp_path / "blobs" / "sha256" / encoded[:2]
    shard.mkdir(parents=True, exist_ok=True)
    for junk in (f"{encoded}.tmp", encoded.upper(), encoded[:-1], ".nfs0001"):
        (shard / junk).write_bytes(b"junk")
    (shard / encoded).mkdir()  # not a file
    wrong_shard = tmp_path / "blobs" / "sha256" / "zz"
    wrong_shard.mkdir()
    (wrong_shard / encoded).write_bytes(b"stray")  # stat() would never look here
    (tmp_path / "blobs" / "md5").mkdir()
    (tmp_path / "blobs" / "md5" / "d41d8cd98f00b204e9800998ecf8427e").write_bytes(b"")
    (tmp_path / "blobs" / "sha256" / "loose-file").write_bytes(b"")
    assert [blob.digest for blob in store.stored_blobs()] == [
        f"sha256:{hashlib.sha256(b'real').hexdigest()}"]


def test_publishing_stamps_the_blob_with_the_time_of_publishing(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    upload_id = store.start_upload("team/app").upload_id
    writer = store.upload_writer(upload_id)
    writer.write(b"chunk an hour old")
    writer.commit()
    an_hour_ago = time.time() - 3600
    os.utime(tmp_path / "uploads" / upload_id, (an_hour_ago, an_hour_ago))
    manifest = f"sha256:{hashlib.sha256(b'manifest').hexdigest()}"
    store.put(manifest, b"manifest")
    blob = tmp_path / "blobs" / "sha256" / manifest[7:9] / manifest[7:]
    os.utime(blob, (an_hour_ago, an_hour_ago))
    before = time.time()
    store.complete_upload(upload_id, f"sha256:{hashlib.sha256(b'chunk an hour old').hexdigest()}")
    store.put(manifest, b"manifest")  # stored already: refreshed, not rewritten
    after = time.time()
    blobs = list(store.stored_blobs())
    assert len(blobs) == 2
    assert all(before <= blob.modified_at <= after for blob in blobs), blobs
