from __future__ import annotations

import os

import pytest

from api.v2.blob_body import WINDOW
from tests.support.oci import digest_of, push_blob

pytestmark = pytest.mark.both_databases

NAME = "team/app"
DATA = bytes(range(256)) * 16


def test_base_endpoint(client):
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.headers["X-Request-Id"]


def test_request_id_is_echoed(client):
    assert client.get("/v2/", headers={"X-Request-Id": "ci-42"}).headers["X-Request-Id"] == "ci-42"


def test_head_and_get(client):
    digest = push_blob(client, NAME, DATA)
    head = client.head(f"/v2/{NAME}/blobs/{digest}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(DATA))
    assert head.headers["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/{NAME}/blobs/{digest}").content == DATA


def test_range_requests(client):
    digest = push_blob(client, NAME, DATA)
    url = f"/v2/{NAME}/blobs/{digest}"
    part = client.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == DATA[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(DATA)}"
    assert client.get(url, headers={"Range": "bytes=4000-"}).content == DATA[4000:]
    assert client.get(url, headers={"Range": "bytes=-5"}).content == DATA[-5:]
    beyond = client.get(url, headers={"Range": f"bytes={len(DATA)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(DATA)}"


def test_blob_larger_than_a_send_window_arrives_whole_and_in_ranges(client):
    data = os.urandom(WINDOW * 2 + 12345)
    digest = push_blob(client, NAME, data)
    url = f"/v2/{NAME}/blobs/{digest}"
    assert client.get(url).content == data
    start, end = WINDOW - 4097, WINDOW * 2 + 100  # unaligned, across both window edges
    part = client.get(url, headers={"Range": f"bytes={start}-{end}"})
    assert part.status_code == 206 and part.content == data[start:end + 1]


def test_empty_blob(client):
    digest = push_blob(client, NAME, b"")
    response = client.get(f"/v2/{NAME}/blobs/{digest}")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["Content-Length"] == "0"


def test_blob_is_scoped_to_its_repository(client):
    digest = push_blob(client, NAME, DATA)
    response = client.get(f"/v2/team/other/blobs/{digest}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_delete_blob(client):
    digest = push_blob(client, NAME, DATA)
    assert client.delete(f"/v2/{NAME}/blobs/{digest}").status_code == 202
    assert client.head(f"/v2/{NAME}/blobs/{digest}").status_code == 404
    again = client.delete(f"/v2/{NAME}/blobs/{digest}")
    assert again.status_code == 404 and again.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_malformed_digests_are_400_never_500(client):
    for digest in ("sha256:xyz", "nocolon", "md5:" + "a" * 32, "sha256:" + "A" * 64):
        response = client.get(f"/v2/{NAME}/blobs/{digest}")
        assert response.status_code == 400, digest
        assert response.json()["errors"][0]["code"] == "DIGEST_INVALID"


def test_unknown_blob(client):
    response = client.head(f"/v2/{NAME}/blobs/{digest_of(b'none')}")
    assert response.status_code == 404 and response.content == b""
