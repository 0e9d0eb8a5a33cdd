"""A 1 GiB blob through a live server, whose resident memory must stay bounded and flat.

The test runs its own server so that nothing else inflates the measurement, and never holds
the blob in memory either: the bytes are generated on the fly, 1 MiB at a time.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.support.server import LiveServer, start_server

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
BLOB_MIB = 1024
CHUNK_MIB = 64
RSS_LIMIT = 200 * MIB
RSS_GROWTH_LIMIT = 48 * MIB  # over the RSS before the transfer: flat as blobs grow
SAMPLE_SECONDS = 0.05
REPO = "big/blob"


class PatternedBlob:
    """`total_mib` MiB of a pseudo-random 1 MiB block, each copy stamped with its index."""

    def __init__(self, total_mib: int, seed: int = 20240501) -> None:
        self.total_mib = total_mib
        self.size = total_mib * MIB
        self._block = random.Random(seed).randbytes(MIB)

    def block(self, index: int) -> bytes:
        stamp = index.to_bytes(8, "big") * 4
        return stamp + self._block[len(stamp):]

    def blocks(self, first: int, count: int, hasher) -> Iterator[bytes]:
        for index in range(first, first + count):
            data = self.block(index)
            hasher.update(data)
            yield data


class RssSampler:
    """Samples a server's VmRSS in a background thread; `.peak` is the largest sample."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.server.rss_bytes())
            self.samples += 1
            if self._stop.wait(SAMPLE_SECONDS):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def server(tmp_path) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "data", tmp_path / "serve.log", projects=("big",))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, auth=server.admin_auth, timeout=300) as client:
        yield client


def mib(n: int) -> str:
    return f"{n / MIB:.1f} MiB"


def upload_in_chunks(http: httpx.Client, blob: PatternedBlob) -> tuple[httpx.Response, str]:
    """POST, one PATCH per CHUNK_MIB with Content-Range, then PUT ?digest=."""
    started = http.post(f"/v2/{REPO}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    hasher = hashlib.sha256()
    for first in range(0, blob.total_mib, CHUNK_MIB):
        count = min(CHUNK_MIB, blob.total_mib - first)
        start, end = first * MIB, (first + count) * MIB - 1
        response = http.patch(location, content=blob.blocks(first, count, hasher), headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{end}",
            "Content-Length": str(end - start + 1),
        })
        assert response.status_code == 202, response.text
        assert response.headers["Range"] == f"0-{end}"
        location = response.headers["Location"]
    digest = f"sha256:{hasher.hexdigest()}"
    return http.put(location, params={"digest": digest}), digest


def download(http: httpx.Client, digest: str) -> tuple[httpx.Response, str, int]:
    hasher, length = hashlib.sha256(), 0
    with http.stream("GET", f"/v2/{REPO}/blobs/{digest}") as response:
        for chunk in response.iter_bytes(MIB):
            hasher.update(chunk)
            length += len(chunk)
    return response, f"sha256:{hasher.hexdigest()}", length


@contextmanager
def bounded_rss(server: LiveServer, what: str) -> Iterator[RssSampler]:
    before = server.rss_bytes()
    with RssSampler(server) as sampler:
        yield sampler
    print(f"\n{what}: server peak RSS sampled {mib(sampler.peak)} "
          f"({sampler.samples} samples), VmHWM {mib(server.peak_rss_bytes())}")
    assert sampler.samples > 1
    assert sampler.peak < RSS_LIMIT, f"{what}: server RSS reached {mib(sampler.peak)}"
    assert sampler.peak - before < RSS_GROWTH_LIMIT, (
        f"{what}: server RSS grew by {mib(sampler.peak - before)} from {mib(before)}")
    assert server.peak_rss_bytes() < RSS_LIMIT, (
        f"{what}: server VmHWM reached {mib(server.peak_rss_bytes())}")


def test_1_gib_blob_streams_through_flat_memory(server, http):
    blob = PatternedBlob(BLOB_MIB)
    print(f"\nserver RSS before upload: {mib(server.rss_bytes())}")

    with bounded_rss(server, "upload"):
        completed, digest = upload_in_chunks(http, blob)
    assert completed.status_code == 201, completed.text
    assert completed.headers["Docker-Content-Digest"] == digest

    head = http.head(f"/v2/{REPO}/blobs/{digest}")
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == blob.size

    with bounded_rss(server, "download"):
        response, received_digest, length = download(http, digest)
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == digest
    assert length == blob.size
    assert received_digest == digest
