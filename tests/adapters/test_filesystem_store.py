"""What only the filesystem store promises; the BlobStore contract is in test_blob_store_contract.py."""

from __future__ import annotations

import hashlib

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
