"""Running digests of uploads in flight, shared by the blob stores.

A `hashlib` state cannot be serialized, so the running sha256 of an upload lives in the
memory of the process that received its bytes. Whoever completes the upload asks this cache
first and re-hashes the stored bytes only on a miss (a restart, or another process or node
took some of the chunks).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Hashable, Iterable

MAX_CACHED_HASHERS = 10_000


class HasherCache:
    """Running sha256 per upload, valid only at the position it was stored for: the upload's
    size (filesystem), or any token that changes with every commit of the upload (S3)."""

    def __init__(self, max_items: int = MAX_CACHED_HASHERS) -> None:
        self._max_items = max_items  # abandoned uploads leave theirs: the oldest go
        self._items: OrderedDict[str, tuple[Hashable, object]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, upload_id: str, position: Hashable, hasher) -> None:
        with self._lock:
            self._items[upload_id] = (position, hasher)
            self._items.move_to_end(upload_id)
            while len(self._items) > self._max_items:
                self._items.popitem(last=False)

    def take(self, upload_id: str, position: Hashable):
        with self._lock:
            cached = self._items.pop(upload_id, None)
        if cached is None or cached[0] != position:
            return None
        return cached[1]

    def digest(self, upload_id: str, position: Hashable, expected: str) -> str | None:
        if not expected.startswith("sha256:"):
            return None
        hasher = self.take(upload_id, position)
        return None if hasher is None else f"sha256:{hasher.hexdigest()}"

    def drop(self, upload_id: str) -> None:
        with self._lock:
            self._items.pop(upload_id, None)


def digest_of_chunks(chunks: Iterable[bytes], algorithm: str) -> str:
    """`<algorithm>:<hex>` of the concatenated chunks, consumed one at a time."""
    hasher = hashlib.new(algorithm)
    for chunk in chunks:
        hasher.update(chunk)
    return f"{algorithm}:{hasher.hexdigest()}"
