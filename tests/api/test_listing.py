from __future__ import annotations

import pytest

from tests.support.oci import push_blob, push_image

pytestmark = pytest.mark.both_databases


def test_tags_list_is_sorted_and_paginated(client):
    for tag in ("b", "a", "c", "d"):
        push_image(client, "team/app", tag)
    everything = client.get("/v2/team/app/tags/list")
    assert everything.json() == {"name": "team/app", "tags": ["a", "b", "c", "d"]}
    assert "Link" not in everything.headers
    first = client.get("/v2/team/app/tags/list?n=2")
    assert first.json()["tags"] == ["a", "b"]
    assert first.headers["Link"] == '</v2/team/app/tags/list?n=2&last=b>; rel="next"'
    second = client.get("/v2/team/app/tags/list?n=2&last=b")
    assert second.json()["tags"] == ["c", "d"]
    assert client.get("/v2/team/app/tags/list?n=2&last=d").json()["tags"] == []
    assert client.get("/v2/team/app/tags/list?n=0").json()["tags"] == []


def test_tags_list_of_unknown_repository(client):
    response = client.get("/v2/team/nothing/tags/list")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_repository_with_only_blobs_has_empty_tag_list(client):
    push_blob(client, "team/blobsonly", b"x")
    assert client.get("/v2/team/blobsonly/tags/list").json() == {"name": "team/blobsonly", "tags": []}


def test_bad_page_size(client):
    push_image(client, "team/app", "a")
    response = client.get("/v2/team/app/tags/list?n=-1")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"


def test_catalog_pagination(client):
    for name in ("z/app", "a/app", "m/app"):
        push_blob(client, name, b"x")
    assert client.get("/v2/_catalog").json() == {"repositories": ["a/app", "m/app", "z/app"]}
    first = client.get("/v2/_catalog?n=1")
    assert first.json() == {"repositories": ["a/app"]}
    assert first.headers["Link"] == '</v2/_catalog?n=1&last=a%2Fapp>; rel="next"'
    assert client.get("/v2/_catalog?n=5&last=a/app").json() == {"repositories": ["m/app", "z/app"]}


def test_multi_level_names(client):
    push_image(client, "team/sub/deeper/app", "1")
    assert client.get("/v2/team/sub/deeper/app/tags/list").json()["tags"] == ["1"]
    assert client.get("/v2/team/sub/deeper/app/manifests/1").status_code == 200
