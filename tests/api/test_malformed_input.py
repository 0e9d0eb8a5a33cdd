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


# Odd numbers (issue 16, item 8): '²'.isdigit() is true but int('²') fails; 30 digits overflow a BIGINT.
THIRTY_DIGITS = "1" * 30
ODD_NUMBERS = [
    ("GET", "/api/v1/gc/runs/%C2%B2"),
    ("GET", f"/api/v1/webhooks/{THIRTY_DIGITS}"),
    ("GET", "/api/v1/users?page=9223372036854775807"),
    ("GET", "/api/v1/events?after=%C2%B2"),
    ("GET", "/api/v1/audit-logs?limit=%C2%B2"),
    ("GET", f"/api/v1/audit-logs?after={THIRTY_DIGITS}"),
    ("GET", "/api/v2.0/projects/%C2%B2"),
    ("GET", f"/api/v2.0/projects/{THIRTY_DIGITS}/summary"),
    ("GET", "/api/v2.0/projects/9223372036854775808/members"),
    ("GET", "/api/v2.0/repositories?q=id=x"),
    ("GET", f"/api/v2.0/repositories?q=id={THIRTY_DIGITS}"),
    ("GET", "/api/v2.0/robots/%C2%B2"),
    ("GET", f"/api/v2.0/registries/{THIRTY_DIGITS}"),
    ("GET", "/v2/_catalog?n=%C2%B2"),
    ("GET", "/v2/team/app/tags/list?n=%C2%B2"),
]


@pytest.mark.parametrize(("method", "path"), ODD_NUMBERS)
def test_odd_numbers_get_a_client_error_in_the_surface_format(client, method, path):
    response = client.request(method, path)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if path.startswith("/api/v1/"):
        assert response.headers["Content-Type"] == "application/problem+json"
    else:  # Harbor's errors and OCI's share the shape
        assert response.json()["errors"][0]["code"]


HARBOR_PERMISSIONS = [{"kind": "project", "namespace": "team",
                       "access": [{"resource": "repository", "action": "pull"}]}]
ODD_BODIES = [
    ("POST", "/api/v2.0/robots", {"name": "r1", "level": "project", "duration": -1,
                                  "permissions": [{"kind": "project", "namespace": "team", "access": ["x"]}]}),
    ("POST", "/api/v2.0/robots", {"name": "r2", "level": "project", "duration": 1e9,
                                  "permissions": HARBOR_PERMISSIONS}),
    ("POST", "/api/v2.0/robots", {"name": "r3", "level": "project", "duration": 2 ** 63 - 1,
                                  "permissions": HARBOR_PERMISSIONS}),
    ("POST", "/api/v1/robots", {"name": "r4", "duration_days": 10 ** 9,
                                "permissions": [{"project": "team", "resource": "repository", "action": "pull"}]}),
    ("POST", "/api/v2.0/projects", {"project_name": "p5", "registry_id": 2 ** 64 - 1}),
    ("POST", "/api/v2.0/replication/executions", {"policy_id": 2 ** 64 - 1}),
    ("POST", "/api/v1/projects/team/immutable-tag-rules", {"tags": "v*", "priority": 2 ** 64 - 1}),
    ("POST", "/api/v1/projects/team/immutable-tag-rules", {"tags": "v*", "priority": True}),
    ("POST", "/api/v1/gc/runs", {"grace_period_seconds": 2 ** 63 - 1}),
    # true is 1 in Python: no id 1 (the admin, the first policy or registry) behind a bool
    ("POST", "/api/v2.0/projects/team/members", {"role_id": 2, "member_user": {"user_id": True}}),
    ("POST", "/api/v2.0/replication/executions", {"policy_id": True}),
    ("POST", "/api/v2.0/registries/ping", {"id": True}),
]


@pytest.mark.parametrize(("method", "path", "body"), ODD_BODIES)
def test_odd_numbers_in_json_bodies_get_a_client_error(client, method, path, body):
    response = client.request(method, path, json=body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    # Nothing out of range reached the log: the read models still apply new events.
    assert client.post("/api/v1/projects", json={"name": "after"}).status_code == 201


def test_ranges_of_thousands_of_digits_are_answered(client):
    """int() refuses strings of more than 4300 digits: such numbers must not reach it."""
    push_blob(client, "team/app", b"blob")
    digits = "9" * 5000
    whole = client.get(f"/v2/team/app/blobs/{BLOB}", headers={"Range": f"bytes=0-{digits}"})
    assert whole.status_code == 200 and whole.content == b"blob"
    upload = client.post("/v2/team/app/blobs/uploads/").headers["Location"]
    chunk = client.patch(upload, content=b"x", headers={"Content-Range": f"0-{digits}"})
    assert chunk.status_code == 416, chunk.text
