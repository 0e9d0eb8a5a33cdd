"""Concurrent pushes through a live server: optimistic concurrency loses no event, and
every 201 is readable at once (read-your-writes)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.oci import push_image

WRITERS = 8


def test_parallel_pushes_to_one_repository_are_all_readable_at_once(live_server):
    def push_and_read(i: int) -> tuple[str, str]:
        with live_server.client() as client:
            digest, _ = push_image(client, "race/app", f"t{i}", seed=f"s{i}")
            read = client.get(f"/v2/race/app/manifests/t{i}")
            assert read.status_code == 200, read.text
            return digest, read.headers["Docker-Content-Digest"]

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(push_and_read, range(WRITERS)))
    assert all(pushed == read for pushed, read in results)
    tags = httpx.get(f"{live_server.url}/v2/race/app/tags/list", auth=live_server.admin_auth).json()["tags"]
    assert sorted(tags) == sorted(f"t{i}" for i in range(WRITERS))


def test_racing_on_one_tag_ends_at_one_of_the_digests(live_server):
    def push(i: int) -> str:
        with live_server.client() as client:
            return push_image(client, "race/tag", "latest", seed=f"r{i}")[0]

    with ThreadPoolExecutor(WRITERS) as pool:
        digests = set(pool.map(push, range(WRITERS)))
    final = httpx.get(f"{live_server.url}/v2/race/tag/manifests/latest", auth=live_server.admin_auth)
    assert final.headers["Docker-Content-Digest"] in digests
    for digest in digests:  # every pushed manifest is still there by digest
        response = httpx.head(f"{live_server.url}/v2/race/tag/manifests/{digest}", auth=live_server.admin_auth)
        assert response.status_code == 200
