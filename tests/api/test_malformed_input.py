"""Malformed input gets a clear 4xx in the protocol's own format — never a 500."""

from __future__ import annotations

import pytest

from tests.support.oci import digest_of, push_blob

BLOB = digest_of(b"blob")

CASES = [
    ("GET", "/v2/team/app/blobs/sha256:", {}, b""),
    ("GET", f"/v2/team/app/blobs/{BLOB}", {"Range": "bytes=5-1"}, b""),
    ("POST", "/v2/team/app/blobs/uploads/?digest=sha256:short", {}, b"x"),
    ("POST", "/v2/team/app/blobs/uploads/?mount=nonsense&from=team/other", {}, b""),
    ("POST", f"/v2/team/app/blobs/uploads/?mount={BLOB}&from=NOT..VALID", {}, b""),
    ("PATCH", "/v2/team/app/blobs/uploads/not-a-uuid", {"Content-Range": "zzz"}, b"x"),
    ("PUT", "/v2/team/app/manifests/latest", {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
     b'{"schemaVersion": 2, "config": "nope", "layers": []}'),
    ("PUT", "/v2/team/app/manifests/latest", {}, b'{"schemaVersion": 2, "manifests": [1, 2]}'),
    ("PUT", "/v2/team/app/manifests/latest", {}, b"\xff\xfe\x00"),
    ("PUT", "/v2/team/app/manifests/latest", {}, b"null"),
    ("PUT", f"/v2/team/app/manifests/{BLOB}", {}, b"{}"),
    ("GET", "/v2/team/app/manifests/sha256:zz", {}, b""),
    ("GET", "/v2/team/app/tags/list?n=abc", {}, b""),
    ("GET", "/v2/_catalog?n=-5", {}, b""),
    ("GET", "/v2/team/app/referrers/notadigest", {}, b""),
    ("GET", "/v2/", {"Authorization": "Basic !!!notbase64"}, b""),
    ("GET", "/v2/", {"Authorization": "Bearer"}, b""),
    ("GET", "/v2/", {"Authorization": "Basic " + "w4A=" }, b""),
    ("POST", "/api/v1/projects", {"Content-Type": "application/json"}, b"[1, 2]"),
    ("POST", "/api/v1/users", {"Content-Type": "application/json"}, b'{"username": 5, "password": []}'),
    ("POST", "/api/v1/robots", {"Content-Type": "application/json"},
     b'{"name": "r", "permissions": [{"project": "team", "resource": "x", "action": "y"}]}'),
    ("POST", "/api/v1/robots", {"Content-Type": "application/json"}, b'{"name": "r", "permissions": ["str"]}'),
    ("GET", "/api/v1/audit-logs?since=notatime", {}, b""),
    ("GET", "/api/v1/audit-logs?after=-1", {}, b""),
    ("GET", "/api/v1/projects?page_size=abc", {}, b""),
    ("PATCH", "/api/v1/projects/team", {"Content-Type": "application/json"}, b'{"public": "yes"}'),
]


# Odd but answerable: a full answer, capped, or a token holding nothing.
ANSWERABLE = [
    ("GET", f"/v2/team/app/blobs/{BLOB}", {"Range": "bytes=abc"}, b""),
    ("GET", "/v2/team/app/tags/list?n=999999999999999999999", {}, b""),
    ("GET", "/service/token?scope=repository:::", {}, b""),
    ("GET", "/service/token?scope=repository:UPPER/x:pull", {}, b""),
]


@pytest.mark.parametrize(("method", "path", "headers", "body"), CASES)
def test_malformed_requests_get_a_client_error(client, method, path, headers, body):
    push_blob(client, "team/app", b"blob")
    auth = None if "Authorization" in headers else client.auth
    response = client.request(method, path, headers=headers, content=body, auth=auth)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if path.startswith("/v2/") and method != "HEAD":
        assert response.json()["errors"][0]["code"]
    if path.startswith("/api/"):
        assert response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(("method", "path", "headers", "body"), ANSWERABLE)
def test_odd_requests_are_answered(client, method, path, headers, body):
    push_blob(client, "team/app", b"blob")
    response = client.request(method, path, headers=headers, content=body)
    assert response.status_code == 200, response.text
