from __future__ import annotations

import pytest

from tests.support.oci import digest_of


@pytest.mark.parametrize("name", ["UPPER/case", "team//app", "a" * 256, "-x/app", "app./x"])
def test_invalid_names_are_name_invalid(client, name):
    for method, suffix in (("GET", "tags/list"), ("POST", "blobs/uploads/"),
                           ("PUT", "manifests/latest"), ("GET", f"blobs/{digest_of(b'x')}")):
        response = client.request(method, f"/v2/{name}/{suffix}", content=b"{}")
        assert response.status_code == 400, (method, suffix)
        assert response.json()["errors"][0]["code"] == "NAME_INVALID"
    assert client.get("/v2/_catalog").json() == {"repositories": []}


def test_dot_dot_in_name_never_escapes(client):
    response = client.get("/v2/team/%2E%2E/app/tags/list")
    assert response.status_code in (400, 404)
    assert response.json()["errors"][0]["code"] in ("NAME_INVALID", "NAME_UNKNOWN")


def test_unknown_route_and_method(client):
    response = client.get("/v2/team/app/nothing-here")
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "NOT_FOUND"
    response = client.post("/v2/team/app/tags/list")
    assert response.status_code == 405 and response.json()["errors"][0]["code"] == "UNSUPPORTED"
