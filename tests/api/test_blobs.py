from __future__ import annotations

import json
import os

import pytest

from api.v2.blob_body import WINDOW
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of, push_blob, push_image

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


def refusal(response) -> dict:
    assert response.status_code == 405, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "UNSUPPORTED"
    return error


def test_a_blob_a_manifest_uses_cannot_be_deleted(client):
    """Deleting a layer or config of a tagged manifest would leave it pointing at a 404."""
    manifest, _ = push_image(client, NAME, "v1", seed="used")
    config, layer = digest_of(b'{"architecture": "amd64", "os": "linux", "seed": "used"}'), digest_of(b"layer-used")
    for blob in (layer, config):
        error = refusal(client.delete(f"/v2/{NAME}/blobs/{blob}"))
        assert error["message"] == (f"blob {blob} is referenced by manifest {manifest} (tagged v1) of {NAME}: "
                                    "delete that manifest first")
        assert error["detail"] == {"digest": blob, "manifests": [manifest]}
        assert client.get(f"/v2/{NAME}/blobs/{blob}").status_code == 200

    second, _ = push_image(client, NAME, "v2", seed="used", annotations={"second": "manifest"})
    assert client.delete(f"/v2/{NAME}/manifests/{manifest}").status_code == 202
    assert refusal(client.delete(f"/v2/{NAME}/blobs/{layer}"))["detail"]["manifests"] == [second]
    assert client.delete(f"/v2/{NAME}/manifests/v2").status_code == 202  # the tag only: untagged, still used
    assert refusal(client.delete(f"/v2/{NAME}/blobs/{layer}"))["message"] == (
        f"blob {layer} is referenced by manifest {second} of {NAME}: delete that manifest first")
    assert client.delete(f"/v2/{NAME}/manifests/{second}").status_code == 202
    assert client.delete(f"/v2/{NAME}/blobs/{layer}").status_code == 202  # no manifest uses it now
    assert client.head(f"/v2/{NAME}/blobs/{layer}").status_code == 404


def test_a_child_manifest_linked_as_a_blob_cannot_be_deleted_while_an_index_lists_it(client):
    _, child = push_image(client, NAME, "amd64")
    push_blob(client, NAME, child)  # the child's bytes linked as a blob as well
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, child)]}).encode()
    put = client.put(f"/v2/{NAME}/manifests/multi", content=index, headers={"Content-Type": OCI_INDEX})
    assert put.status_code == 201
    error = refusal(client.delete(f"/v2/{NAME}/blobs/{digest_of(child)}"))
    assert error["detail"]["manifests"] == [digest_of(index)]


def test_malformed_digests_are_400_never_500(client):
    for digest in ("sha256:xyz", "nocolon", "md5:" + "a" * 32, "sha256:" + "A" * 64):
        response = client.get(f"/v2/{NAME}/blobs/{digest}")
        assert response.status_code == 400, digest
        assert response.json()["errors"][0]["code"] == "DIGEST_INVALID"


def test_unknown_blob(client):
    response = client.head(f"/v2/{NAME}/blobs/{digest_of(b'none')}")
    assert response.status_code == 404 and response.content == b""
