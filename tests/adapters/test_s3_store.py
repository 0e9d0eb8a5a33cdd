"""What the S3 store adds to the BlobStore contract, against a real SeaweedFS: parts and the
5 MiB minimum, upload state shared between nodes, rollback, stale uploads, presigned URLs,
and what an S3 outage does."""

from __future__ import annotations

import hashlib
import io
import random
import socket
import time
import urllib.error
import urllib.request

import orjson
import pytest

from adapters.storage import s3
from adapters.storage.s3 import MIN_PART_SIZE, PART_SIZE, Part, data_key, state_key
from domain.errors import DigestInvalidError, StorageUnavailableError
from tests.support.seaweed import CuttableProxy, s3_client, s3_store

MiB = 1024 * 1024


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def store(seaweedfs, s3_bucket, tmp_path):
    return s3_store(seaweedfs, s3_bucket, tmp_path / "node-a")


@pytest.fixture
def other_node(seaweedfs, s3_bucket, tmp_path):
    return s3_store(seaweedfs, s3_bucket, tmp_path / "node-b")


@pytest.fixture
def bucket(seaweedfs, s3_bucket, store):
    """Looks at the store's bucket with a plain client."""
    return Inspector(s3_client(seaweedfs), s3_bucket)


class Inspector:
    def __init__(self, client, name):
        self.client, self.name = client, name

    def state(self, upload_id: str) -> dict:
        return orjson.loads(self.state_bytes(upload_id))

    def state_bytes(self, upload_id: str) -> bytes:
        response = self.client.get_object(self.name, state_key(upload_id))
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def keys(self, prefix: str = "") -> list[str]:
        return [o.object_name for o in self.client.list_objects(self.name, prefix=prefix, recursive=True)]

    def multipart_uploads(self) -> list[str]:
        return [u.object_name for u in self.client._list_multipart_uploads(self.name).uploads]

    def parts(self, upload_id: str) -> list[tuple[int, int]]:
        """(number, size) of every part sent to the upload's multipart upload."""
        multipart_id = self.state(upload_id)["multipart_id"]
        listing = self.client._list_parts(self.name, data_key(upload_id), multipart_id)
        return [(part.part_number, part.size) for part in listing.parts]


def send(store, upload_id: str, data: bytes, write_size: int = MiB) -> int:
    """One request's worth of bytes, written the way the API does (1 MiB at a time)."""
    writer = store.upload_writer(upload_id)
    for start in range(0, len(data), write_size):
        writer.write(data[start:start + write_size])
    return writer.commit()


def read_all(store, digest: str) -> bytes:
    return b"".join(store.read(digest))


def request_lines(trace: io.StringIO) -> list[str]:
    """The methods of the requests in a minio trace, in order."""
    return [line.split()[0] for line in trace.getvalue().splitlines()
            if line.split()[:1] and line.split()[0] in ("GET", "HEAD", "PUT", "POST", "DELETE")
            and line.endswith(" HTTP/1.1")]


def test_chunks_under_the_part_minimum_are_joined_into_parts(store, other_node, bucket):
    chunks = [random_bytes(400 * 1024, seed) for seed in range(24)]  # 9.4 MiB in 24 requests
    upload_id = store.start_upload("team/app").upload_id
    for number, chunk in enumerate(chunks):
        send((store, other_node)[number % 2], upload_id, chunk)
        state = bucket.state(upload_id)
        assert all(part["size"] >= MIN_PART_SIZE for part in state["parts"])
        assert state["tail"] is None or state["tail"]["size"] < MIN_PART_SIZE
    assert len(state["parts"]) == 1 and state["tail"]["size"] > 0
    data = b"".join(chunks)
    assert store.complete_upload(upload_id, digest_of(data)) == len(data)
    assert read_all(store, digest_of(data)) == data
    assert bucket.keys("uploads/") == [] and bucket.multipart_uploads() == []


def test_large_requests_are_sent_in_parts_as_they_arrive(store, bucket):
    data = random_bytes(3 * PART_SIZE + MiB)
    upload_id = store.start_upload("team/app").upload_id
    assert send(store, upload_id, data[:2 * PART_SIZE + MiB]) == 2 * PART_SIZE + MiB
    assert bucket.parts(upload_id) == [(1, PART_SIZE), (2, PART_SIZE)]
    assert send(store, upload_id, data[2 * PART_SIZE + MiB:]) == len(data)
    assert bucket.parts(upload_id) == [(1, PART_SIZE), (2, PART_SIZE), (3, PART_SIZE)]
    assert bucket.state(upload_id)["tail"]["size"] == MiB
    assert store.complete_upload(upload_id, digest_of(data)) == len(data)
    stat = bucket.client.stat_object(bucket.name, f"blobs/sha256/{digest_of(data)[7:]}")
    assert stat.etag.endswith("-4")  # the assembled 4-part object, copied server-side
    across_parts = b"".join(store.read(digest_of(data), PART_SIZE - 10, 3 * PART_SIZE))
    assert across_parts == data[PART_SIZE - 10:4 * PART_SIZE - 10]
    assert read_all(store, digest_of(data)) == data
    assert bucket.keys("uploads/") == [] and bucket.multipart_uploads() == []


def test_a_small_monolithic_upload_takes_seven_requests_and_no_multipart(store, bucket):
    data = random_bytes(MiB)
    trace = io.StringIO()
    for client in (store.bucket.client, store.bucket.patient):
        client.trace_on(trace)
    upload_id = store.start_upload("team/app").upload_id
    send(store, upload_id, data)
    store.complete_upload(upload_id, digest_of(data))
    assert request_lines(trace) == ["PUT", "GET", "PUT", "PUT", "GET", "PUT", "POST"]
    assert "?uploads" not in trace.getvalue()
    assert read_all(store, digest_of(data)) == data


def test_an_aborted_request_costs_no_rehash(store):
    data = random_bytes(MiB)
    upload_id = store.start_upload("team/app").upload_id
    send(store, upload_id, data)
    writer = store.upload_writer(upload_id)
    writer.write(b"dropped")
    writer.abort()
    trace = io.StringIO()
    store.bucket.client.trace_on(trace)
    store.complete_upload(upload_id, digest_of(data))
    assert request_lines(trace) == ["GET", "POST"]  # state, clean-up: the tail is not read to hash it


def test_another_node_continues_the_upload(store, other_node, bucket):
    first, second, third = random_bytes(6 * MiB, 1), random_bytes(3 * MiB, 2), random_bytes(MiB, 3)
    upload_id = store.start_upload("team/app").upload_id
    send(store, upload_id, first)  # over the minimum: sent as part 1 at commit
    send(other_node, upload_id, second)  # stays a tail object
    assert other_node.upload_info(upload_id).size == 9 * MiB
    send(store, upload_id, third)  # this node starts from the other node's tail
    assert bucket.parts(upload_id) == [(1, 6 * MiB)]
    data = first + second + third
    assert other_node.complete_upload(upload_id, digest_of(data)) == len(data)
    assert read_all(store, digest_of(data)) == data


def test_a_node_without_the_running_hash_still_rejects_a_wrong_digest(store, other_node, bucket):
    upload_id = store.start_upload("team/app").upload_id
    send(store, upload_id, random_bytes(6 * MiB))
    with pytest.raises(DigestInvalidError):
        other_node.complete_upload(upload_id, digest_of(b"something else"))
    assert bucket.keys() == [] and bucket.multipart_uploads() == []


def test_abort_leaves_the_upload_exactly_as_before(store, bucket):
    kept = random_bytes(6 * MiB, 1) + random_bytes(MiB, 2)
    upload_id = store.start_upload("team/app").upload_id
    send(store, upload_id, kept[:6 * MiB])
    send(store, upload_id, kept[6 * MiB:])
    before = bucket.state_bytes(upload_id)

    writer = store.upload_writer(upload_id)
    for _ in range(9):  # with the 1 MiB tail: one part sent, 2 MiB spooled
        writer.write(random_bytes(MiB, 99))
    assert bucket.parts(upload_id) == [(1, 6 * MiB), (2, PART_SIZE)]  # sent, not committed
    writer.abort()
    assert writer.size == len(kept)
    assert bucket.state_bytes(upload_id) == before
    assert store.upload_info(upload_id).size == len(kept)

    retry = random_bytes(2 * MiB, 3)  # takes the aborted part's number, and is shorter
    send(store, upload_id, retry)
    data = kept + retry
    assert store.complete_upload(upload_id, digest_of(data)) == len(data)
    assert read_all(store, digest_of(data)) == data


def test_abort_removes_a_multipart_upload_the_writer_started(store, bucket):
    upload_id = store.start_upload("team/app").upload_id
    writer = store.upload_writer(upload_id)
    writer.write(random_bytes(PART_SIZE))
    assert bucket.multipart_uploads() == [data_key(upload_id)]
    writer.abort()
    assert bucket.multipart_uploads() == []
    assert bucket.state(upload_id)["multipart_id"] is None


@pytest.mark.parametrize("size", [MiB, 9 * MiB], ids=["single-object", "multipart"])
def test_wrong_digest_publishes_nothing(store, bucket, size):
    data = random_bytes(size)
    upload_id = store.start_upload("team/app").upload_id
    send(store, upload_id, data)
    with pytest.raises(DigestInvalidError):
        store.complete_upload(upload_id, digest_of(b"not this"))
    assert bucket.keys() == [] and bucket.multipart_uploads() == []
    assert store.stat(digest_of(data)) is None


def test_completion_continues_after_an_earlier_one_got_as_far_as_assembling(store, bucket):
    data = random_bytes(PART_SIZE + MiB)  # a part and a tail
    upload_id = store.start_upload("team/app").upload_id
    send(store, upload_id, data)
    state = bucket.state(upload_id)
    # What an attempt that failed while publishing did: the tail joined as part 2, completed.
    target, multipart_id = data_key(upload_id), state["multipart_id"]
    etag = store.bucket.copy_part(state["tail"]["key"], target, multipart_id, 2)
    parts = [Part(**state["parts"][0]), Part(2, etag, MiB)]
    store.bucket.complete_multipart(target, multipart_id, parts)
    assert store.complete_upload(upload_id, digest_of(data)) == len(data)
    assert read_all(store, digest_of(data)) == data


def test_stale_uploads_are_aborted(store, bucket):
    with_parts = store.start_upload("team/app").upload_id
    send(store, with_parts, random_bytes(6 * MiB) + random_bytes(MiB, 1))
    with_tail = store.start_upload("team/app").upload_id
    send(store, with_tail, b"a few bytes")
    empty = store.start_upload("team/app").upload_id
    orphaned = store.start_upload("team/app").upload_id
    store.upload_writer(orphaned).write(random_bytes(PART_SIZE))  # its node died: no commit

    assert store.abort_stale_uploads(older_than_seconds=3600) == 0
    assert all(store.upload_info(u) for u in (with_parts, with_tail, empty, orphaned))

    assert store.abort_stale_uploads(older_than_seconds=0) == 4
    assert not any(store.upload_info(u) for u in (with_parts, with_tail, empty, orphaned))
    assert bucket.keys() == [] and bucket.multipart_uploads() == []


def test_only_well_formed_blob_keys_are_listed(store, bucket):
    store.put(digest_of(b"real"), b"real")
    encoded = digest_of(b"stray")[7:]
    for key in (f"blobs/sha256/{encoded}.tmp", f"blobs/sha256/{encoded.upper()}",
                f"blobs/sha256/{encoded[:-1]}", f"blobs/sha256/{encoded[:2]}/{encoded}",
                f"blobs/md5/{'0' * 32}", "blobs/sha256/", f"blobs-old/sha256/{encoded}",
                f"elsewhere/blobs/sha256/{encoded}"):
        bucket.client.put_object(bucket.name, key, io.BytesIO(b"junk"), 4)
    send(store, store.start_upload("team/app").upload_id, random_bytes(PART_SIZE + MiB))
    assert [(blob.digest, blob.size) for blob in store.stored_blobs()] == [(digest_of(b"real"), 4)]


def test_listing_fails_as_storage_unavailable(seaweedfs, s3_bucket, store, tmp_path):
    store.put(digest_of(b"listed"), b"listed")
    proxy = CuttableProxy(seaweedfs.ports["s3"])
    through_proxy = s3_store(seaweedfs, s3_bucket, tmp_path / "proxied", endpoint=proxy.endpoint)
    proxy.cut()
    with pytest.raises(StorageUnavailableError):
        list(through_proxy.stored_blobs())


def test_a_presigned_url_serves_the_blob_to_a_plain_client(store):
    data = random_bytes(MiB)
    store.put(digest_of(data), data)
    url = store.presigned_get_url(digest_of(data), expires_seconds=60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == data
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered, timeout=10)
    assert refused.value.code == 403


def test_a_store_on_a_closed_port_fails_fast(s3_bucket, seaweedfs, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError):
        s3_store(seaweedfs, s3_bucket, tmp_path / "spool", endpoint=f"127.0.0.1:{closed_port}")
    assert time.monotonic() - started < 5


def test_a_server_that_never_answers_fails_within_the_read_timeout(s3_bucket, seaweedfs, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setattr(s3, "READ_TIMEOUT", 0.5)  # 10 s in service: too long for a test
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes connections, never reads
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError):
            s3_store(seaweedfs, s3_bucket, tmp_path / "spool", endpoint=f"127.0.0.1:{silent.getsockname()[1]}")
        assert time.monotonic() - started < 4


def test_an_outage_fails_within_seconds_and_publishes_nothing(seaweedfs, s3_bucket, store, bucket, tmp_path):
    proxy = CuttableProxy(seaweedfs.ports["s3"])
    through_proxy = s3_store(seaweedfs, s3_bucket, tmp_path / "proxied", endpoint=proxy.endpoint)
    committed = random_bytes(6 * MiB, 1) + random_bytes(MiB, 2)
    upload_id = through_proxy.start_upload("team/app").upload_id
    send(through_proxy, upload_id, committed)
    published = random_bytes(MiB, 3)
    through_proxy.put(digest_of(published), published)
    writer = through_proxy.upload_writer(upload_id)
    writer.write(random_bytes(MiB, 4))

    proxy.cut()
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError):
        for _ in range(PART_SIZE // MiB):  # fills a part, which cannot be sent
            writer.write(random_bytes(MiB, 5))
    writer.abort()
    with pytest.raises(StorageUnavailableError):
        through_proxy.complete_upload(upload_id, digest_of(committed))
    with pytest.raises(StorageUnavailableError):
        read_all(through_proxy, digest_of(published))
    assert time.monotonic() - started < 10

    assert store.stat(digest_of(committed)) is None
    assert store.upload_info(upload_id).size == len(committed)
    assert store.complete_upload(upload_id, digest_of(committed)) == len(committed)
    assert read_all(store, digest_of(committed)) == committed
