from __future__ import annotations

import pytest

from tests.support.oci import digest_of, push_blob

pytestmark = pytest.mark.both_databases

NAME = "team/app"


def start(client, name: str = NAME):
    response = client.post(f"/v2/{name}/blobs/uploads/")
    assert response.status_code == 202
    assert response.headers["Range"] == "0-0"
    upload_id = response.headers["Docker-Upload-UUID"]
    assert response.headers["Location"] == f"/v2/{name}/blobs/uploads/{upload_id}"
    return response.headers["Location"]


def test_monolithic_post_then_put(client):
    data = b"monolithic bytes"
    location = start(client)
    response = client.put(f"{location}?digest={digest_of(data)}", content=data)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/{NAME}/blobs/{digest_of(data)}"
    assert response.headers["Docker-Content-Digest"] == digest_of(data)
    assert client.get(f"/v2/{NAME}/blobs/{digest_of(data)}").content == data


def test_single_request_post_with_digest(client):
    data = b"one request"
    digest = push_blob(client, NAME, data)
    assert client.head(f"/v2/{NAME}/blobs/{digest}").headers["Content-Length"] == str(len(data))


def test_chunked_upload_with_content_range(client):
    data = bytes(range(256)) * 40
    location = start(client)
    offset = 0
    for size in (1000, 4000, len(data) - 5000):
        chunk = data[offset:offset + size]
        response = client.patch(location, content=chunk, headers={
            "Content-Range": f"{offset}-{offset + size - 1}", "Content-Type": "application/octet-stream"})
        assert response.status_code == 202
        offset += size
        assert response.headers["Range"] == f"0-{offset - 1}"
    status = client.get(location)
    assert status.status_code == 204 and status.headers["Range"] == f"0-{len(data) - 1}"
    assert client.put(f"{location}?digest={digest_of(data)}").status_code == 201
    assert client.get(f"/v2/{NAME}/blobs/{digest_of(data)}").content == data


def test_streamed_patch_without_content_range(client):
    data = b"s" * 3_000_000
    location = start(client)

    def body():
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]

    response = client.patch(location, content=body())
    assert response.status_code == 202 and response.headers["Range"] == f"0-{len(data) - 1}"
    response = client.put(f"{location}?digest={digest_of(data)}", content=b"tail")
    assert response.status_code == 400  # the tail changed the content: digest no longer matches
    assert client.get(location).status_code == 404  # a failed completion cancels the upload


def test_final_chunk_in_put(client):
    location = start(client)
    assert client.patch(location, content=b"head-").status_code == 202
    digest = digest_of(b"head-tail")
    response = client.put(f"{location}?digest={digest}", content=b"tail",
                          headers={"Content-Range": "5-8"})
    assert response.status_code == 201


def test_out_of_order_chunk_is_refused_with_current_range(client):
    location = start(client)
    client.patch(location, content=b"0123456789", headers={"Content-Range": "0-9"})
    response = client.patch(location, content=b"abc", headers={"Content-Range": "20-22"})
    assert response.status_code == 416
    assert response.headers["Range"] == "0-9"
    assert response.headers["Location"] == location
    assert response.json()["errors"][0]["code"] == "RANGE_INVALID"
    assert client.get(location).headers["Range"] == "0-9"  # nothing was appended


def test_content_range_must_match_length(client):
    location = start(client)
    response = client.patch(location, content=b"abc", headers={"Content-Range": "0-9"})
    assert response.status_code == 416
    assert client.get(location).headers["Range"] == "0-0"


def test_wrong_digest_is_refused_and_nothing_published(client):
    data = b"real content"
    wrong = digest_of(b"other content")
    location = start(client)
    response = client.put(f"{location}?digest={wrong}", content=data)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert client.head(f"/v2/{NAME}/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/{NAME}/blobs/{digest_of(data)}").status_code == 404


def test_monolithic_post_with_wrong_digest_leaves_no_upload(client, services):
    response = client.post(f"/v2/{NAME}/blobs/uploads/?digest={digest_of(b'x')}", content=b"y")
    assert response.status_code == 400
    assert list((services.settings.blob_root / "uploads").iterdir()) == []


def test_put_without_digest(client):
    location = start(client)
    response = client.put(location, content=b"x")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "DIGEST_INVALID"


def test_cancel_upload(client):
    location = start(client)
    assert client.delete(location).status_code == 204
    assert client.get(location).status_code == 404
    assert client.delete(location).status_code == 404


def test_unknown_and_foreign_upload_ids(client):
    location = start(client, "team/one")
    upload_id = location.rsplit("/", 1)[1]
    for url in (f"/v2/team/two/blobs/uploads/{upload_id}",
                "/v2/team/one/blobs/uploads/00000000-0000-0000-0000-000000000000",
                "/v2/team/one/blobs/uploads/not-a-uuid"):
        response = client.patch(url, content=b"x")
        assert response.status_code == 404, url
        assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"


def test_cross_repository_mount(client):
    digest = push_blob(client, "team/source", b"shared layer")
    response = client.post(f"/v2/team/target/blobs/uploads/?mount={digest}&from=team/source")
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/team/target/blobs/{digest}"
    assert client.get(f"/v2/team/target/blobs/{digest}").content == b"shared layer"


def test_mount_falls_back_to_upload_when_source_lacks_blob(client):
    missing = digest_of(b"not anywhere")
    response = client.post(f"/v2/team/target/blobs/uploads/?mount={missing}&from=team/source")
    assert response.status_code == 202
    assert "Docker-Upload-UUID" in response.headers
    no_from = client.post(f"/v2/team/target/blobs/uploads/?mount={missing}")
    assert no_from.status_code == 202
