"""Clients that promise a body and hang up half-way, over raw sockets to a live server.

A truncated request must leave no trace: an upload stays where it stood before the request,
and a one-request (monolithic) upload leaves neither a blob nor upload files.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.oci import digest_of
from tests.support.server import LiveServer

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
WAIT_SECONDS = 2.0


@contextmanager
def truncated_request(server: LiveServer, method: str, target: str, declared: int,
                      body: bytes, headers: dict[str, str] | None = None) -> Iterator[None]:
    """Sends a request announcing `declared` body bytes but only `body`; closes the
    connection when the block ends (the server is left waiting for the rest till then)."""
    assert len(body) < declared
    lines = [f"{method} {target} HTTP/1.1", f"Host: {server.host}",
             "Content-Type: application/octet-stream", f"Content-Length: {declared}",
             f"Authorization: {server.basic_authorization}",
             *(f"{name}: {value}" for name, value in (headers or {}).items())]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)
        yield


def wait_for(condition: Callable[[], bool], timeout: float = WAIT_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def start_upload(http: httpx.Client, repo: str) -> str:
    response = http.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, response.text
    return response.headers["Location"]


def upload_range(http: httpx.Client, location: str) -> str:
    response = http.get(location)
    assert response.status_code == 204, response.text
    return response.headers["Range"]


def patch_chunk(http: httpx.Client, location: str, start: int, data: bytes) -> httpx.Response:
    return http.patch(location, content=data, headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": f"{start}-{start + len(data) - 1}",
    })


def complete(http: httpx.Client, location: str, data: bytes) -> str:
    digest = digest_of(data)
    response = http.put(location, params={"digest": digest})
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    return response.headers["Location"]


def upload_data(server: LiveServer, location: str) -> Path:
    return server.data_dir / "storage" / "uploads" / location.rsplit("/", 1)[1]


def uploads_of(server: LiveServer, repo: str) -> list[Path]:
    """Upload files on disk (data and info) that belong to `repo`."""
    found = []
    for info_path in (server.data_dir / "storage" / "uploads").glob("*.json"):
        try:
            info = json.loads(info_path.read_bytes())
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        if info.get("repository") == repo:
            found += [path for path in (info_path, info_path.with_suffix("")) if path.exists()]
    return found


@pytest.fixture
def http(live_server) -> httpx.Client:
    with live_server.client() as client:
        yield client


def test_truncated_patch_leaves_the_upload_as_it_was(live_server, http):
    repo, data = "trunc/patch", os.urandom(1000)
    location = start_upload(http, repo)

    with truncated_request(live_server, "PATCH", location, 1000, data[:500],
                           headers={"Content-Range": "0-999"}):
        pass

    assert upload_range(http, location) == "0-0"
    response = patch_chunk(http, location, 0, data)
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == "0-999"
    blob = complete(http, location, data)
    assert http.get(blob).content == data


def test_truncated_patch_after_flushed_bytes_rolls_back(live_server, http):
    """Like above, but on top of a first chunk, and cut after more than the server's
    1 MiB write buffer, so part of the lost body had already reached the disk."""
    repo = "trunc/patch-large"
    first, second = os.urandom(1000), os.urandom(3 * MIB)
    location = start_upload(http, repo)
    assert patch_chunk(http, location, 0, first).status_code == 202

    end = len(first) + len(second) - 1
    data_file = upload_data(live_server, location)
    with truncated_request(live_server, "PATCH", location, len(second), second[:2 * MIB],
                           headers={"Content-Range": f"{len(first)}-{end}"}):
        assert wait_for(lambda: data_file.stat().st_size > len(first)), "nothing flushed"

    assert wait_for(lambda: upload_range(http, location) == "0-999"), (
        f"upload stands at {upload_range(http, location)} after the truncated chunk")
    response = patch_chunk(http, location, len(first), second)
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == f"0-{end}"
    blob = complete(http, location, first + second)
    assert digest_of(http.get(blob).content) == digest_of(first + second)


def test_truncated_monolithic_upload_leaves_nothing(live_server, http):
    repo, data = "trunc/monolithic", os.urandom(1000)
    digest = digest_of(data)

    with truncated_request(live_server, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}",
                           1000, data[:500]):
        assert wait_for(lambda: uploads_of(live_server, repo)), "the upload never started"

    assert wait_for(lambda: not uploads_of(live_server, repo)), (
        f"leftover upload files: {uploads_of(live_server, repo)}")
    assert http.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
    blobs = live_server.data_dir / "storage" / "blobs" / "sha256"
    assert not (blobs / digest[7:9] / digest[7:]).exists()


def test_monolithic_upload_succeeds_after_a_truncated_attempt(live_server, http):
    repo, data = "trunc/retry", os.urandom(1000)
    digest = digest_of(data)
    with truncated_request(live_server, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}",
                           1000, data[:500]):
        assert wait_for(lambda: uploads_of(live_server, repo)), "the upload never started"

    response = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert response.status_code == 201, response.text
    assert http.get(f"/v2/{repo}/blobs/{digest}").content == data
    assert wait_for(lambda: not uploads_of(live_server, repo))
