from __future__ import annotations

import hashlib

import pytest

from adapters.storage.filesystem import FilesystemBlobStore
from api.v2.manifest_cache import ManifestCache
from domain.errors import BlobUnknownError


def stored(store: FilesystemBlobStore, data: bytes) -> str:
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    store.put(digest, data)
    return digest


def test_a_read_manifest_is_served_from_memory_and_the_oldest_leave_first(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    cache = ManifestCache(store, max_bytes=8 * 100)
    first = stored(store, b"1" * 100)
    assert cache.read(first) == b"1" * 100
    store.delete(first)
    assert cache.read(first) == b"1" * 100  # no second read from the store
    later = [stored(store, bytes([n]) * 100) for n in range(8)]
    for digest in later:
        cache.read(digest)
    with pytest.raises(BlobUnknownError):
        cache.read(first)  # evicted: 9 × 100 bytes do not fit in 800


def test_large_manifests_are_not_kept(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    cache = ManifestCache(store, max_bytes=800)
    big = stored(store, b"x" * 101)  # over an eighth of the budget
    assert cache.read(big) == b"x" * 101
    store.delete(big)
    with pytest.raises(BlobUnknownError):
        cache.read(big)
