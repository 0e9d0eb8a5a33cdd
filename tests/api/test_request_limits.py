"""Request input limits against a live `portlog serve` (issue 16, item 5 and the forwarding
headers): strangers are refused before their body is read, bodies outside /v2/ are capped and
counted as they stream, and clients that stall on headers or a body are cut off."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.support.oci import digest_of
from tests.support.server import start_server

MAX_BODY = 64 * 1024
HEADER_TIMEOUT, BODY_TIMEOUT = 2, 3
IMMEDIATE = 1.5  # well under every timeout: an answer this fast did not wait for the body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    server = start_server(root / "data", root / "serve.log", projects=("team",), extra_env={
        "PORTLOG_MAX_BODY_BYTES": str(MAX_BODY), "PORTLOG_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "PORTLOG_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT)})
    yield server
    server.stop()


def connect(server, timeout: float = IMMEDIATE) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: registry", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response (its Content-Length), or of all until close."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds` (reading past any response)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_a_stranger_big_body_is_refused_before_it_is_read(server):
    """256 MiB announced, a few bytes sent: the 401 comes at once, without waiting for the rest."""
    with connect(server) as sock:
        sock.sendall(head("POST", "/api/v1/users", {"Content-Type": "application/json",
                                                    "Content-Length": str(256 * 1024 * 1024)}) + b'{"user')
        started = time.monotonic()
        status, headers, body = read_response(sock)
    assert status == 401, body
    assert time.monotonic() - started < IMMEDIATE
    assert headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/api/v2.0/projects", "/service/token", "/c/login"])
def test_strangers_on_other_surfaces_are_refused_at_once(server, path):
    with connect(server) as sock:
        sock.sendall(head("POST", path, {"Content-Type": "application/x-www-form-urlencoded",
                                         "Content-Length": str(256 * 1024 * 1024)}) + b"grant_type=")
        status, _, body = read_response(sock)
    assert status in (401, 413), body


def test_an_oversized_body_from_a_user_gets_413_before_it_is_read(server):
    with connect(server) as sock:
        sock.sendall(head("POST", "/api/v1/projects", {"Authorization": server.basic_authorization,
                                                       "Content-Type": "application/json",
                                                       "Content-Length": str(MAX_BODY + 1)}) + b'{"name"')
        status, headers, body = read_response(sock)
    assert status == 413, body
    assert headers["content-type"] == "application/problem+json"
    assert b"server.max_body_bytes" in body


def test_an_oversized_harbor_body_gets_413_in_harbor_format(server):
    with server.client() as client:
        response = client.post("/api/v2.0/projects", content=b"x" * (MAX_BODY + 1),
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "PAYLOAD_TOO_LARGE"


def test_a_chunked_body_past_the_cap_gets_413(server):
    """No Content-Length: the body is counted as it streams."""
    chunk = b"x" * 8192
    with connect(server) as sock:
        sock.sendall(head("POST", "/api/v1/projects", {"Authorization": server.basic_authorization,
                                                       "Content-Type": "application/json",
                                                       "Transfer-Encoding": "chunked"}))
        for _ in range(MAX_BODY // len(chunk) + 2):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, _, body = read_response(sock)
    assert status == 413, body


def test_a_body_within_the_cap_is_taken(server):
    with server.client() as client:
        response = client.post("/api/v1/projects", json={"name": "within", "description": "d" * (MAX_BODY // 2)})
    assert response.status_code in (201, 422), response.text  # read and answered: not 413


def test_blob_uploads_stream_past_the_cap(server):
    data = b"b" * (MAX_BODY * 4)
    with server.client() as client:
        started = client.post("/v2/team/app/blobs/uploads/")
        assert started.status_code == 202, started.text
        response = client.put(started.headers["Location"], params={"digest": digest_of(data)}, content=data,
                              headers={"Content-Type": "application/octet-stream"})
        assert response.status_code == 201, response.text
        assert client.head(f"/v2/team/app/blobs/{digest_of(data)}").status_code == 200


def test_a_client_stalling_on_its_headers_is_disconnected(server):
    with connect(server) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\nX-Slow: ")
        assert closed_within(sock, HEADER_TIMEOUT + 3)


def test_a_header_trickle_does_not_extend_the_deadline(server):
    with connect(server) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n")
        deadline = time.monotonic() + HEADER_TIMEOUT + 3
        try:
            while time.monotonic() < deadline:
                sock.sendall(b"X-Slow: 1\r\n")
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            return
        assert closed_within(sock, 1)


@pytest.mark.parametrize("surface", ["management", "blob upload"])
def test_a_client_stalling_on_its_body_is_disconnected(server, surface):
    method, path = "POST", "/api/v1/projects"
    if surface == "blob upload":
        with server.client() as client:
            method, path = "PATCH", client.post("/v2/team/app/blobs/uploads/").headers["Location"]
    with connect(server, timeout=BODY_TIMEOUT + 3) as sock:
        sock.sendall(head(method, path, {"Authorization": server.basic_authorization,
                                         "Content-Type": "application/octet-stream",
                                         "Content-Length": "100"}) + b"0123456789")
        status, headers, _ = read_response(sock)
        assert status == 408
        assert headers.get("connection") == "close"
        assert closed_within(sock, 2)
    if surface == "blob upload":  # the upload is as before the stalled chunk
        with server.client() as client:
            assert client.get(path).headers["Range"] == "0-0"


def test_a_keep_alive_connection_serves_several_requests(server):
    """The header deadline is per request, not per connection."""
    with httpx.Client(base_url=server.url, auth=server.admin_auth) as client:
        for _ in range(3):
            assert client.get("/v2/").status_code == 200
            time.sleep(HEADER_TIMEOUT / 2)


def test_forwarding_headers_from_an_untrusted_client_are_ignored(server):
    with server.client() as client:
        client.post("/api/v1/projects", json={"name": "forwarded"},
                    headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
        entries = client.get("/api/v1/audit-logs", params={"order": "desc", "limit": 5}).json()
    assert {e["source"] for e in entries if e["resource"].startswith("forwarded")} == {"127.0.0.1"}


def test_forwarding_headers_from_a_trusted_proxy_are_believed(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "serve.log",
                          extra_env={"PORTLOG_TRUSTED_PROXIES": "127.0.0.0/8"})
    try:
        with server.client() as client:
            client.post("/api/v1/projects", json={"name": "proxied"}, headers={"X-Forwarded-For": "203.0.113.7"})
            entries = client.get("/api/v1/audit-logs", params={"order": "desc", "limit": 5}).json()
    finally:
        server.stop()
    assert {e["source"] for e in entries if e["resource"].startswith("proxied")} == {"203.0.113.7"}


@pytest.mark.parametrize("sent", ["x" * 200, "a b", "é", "<script>", "id\tx"])
def test_an_odd_client_request_id_is_replaced_by_a_generated_one(client, sent):
    response = client.post("/api/v1/projects", json={"name": "rid"}, headers={"X-Request-Id": sent.encode()})
    assert response.status_code == 201
    assert response.headers["X-Request-Id"] != sent
    entries = client.get("/api/v1/audit-logs", params={"order": "desc", "limit": 5}).json()
    assert {e["request_id"] for e in entries if e["resource"].startswith("rid")} == {response.headers["X-Request-Id"]}


def test_a_plain_client_request_id_is_kept(client):
    assert client.get("/v2/", headers={"X-Request-Id": "ci-42.a:b_C"}).headers["X-Request-Id"] == "ci-42.a:b_C"


def test_every_surface_answers_nosniff(client):
    data = b"<html><script>alert(1)</script></html>"
    upload = client.post("/v2/team/app/blobs/uploads/").headers["Location"]
    assert client.put(upload, params={"digest": digest_of(data)}, content=data).status_code == 201
    for path in (f"/v2/team/app/blobs/{digest_of(data)}", "/v2/team/app/blobs/sha256:" + "0" * 64, "/v2/",
                 "/api/v1/projects", "/api/v2.0/projects", "/service/token", "/ui/projects"):
        assert client.get(path).headers["X-Content-Type-Options"] == "nosniff", path
