"""skopeo and podman with --tls-verify=false try TLS first on a plain-HTTP registry: that
probe is expected and must not put a WARNING on the server's standard error every time."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time

import pytest

pytestmark = pytest.mark.e2e


def tls_handshake(port: int) -> None:
    """A real TLS ClientHello, as Go's and Python's clients send it; the handshake fails."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            context.wrap_socket(raw, server_hostname="127.0.0.1").close()


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        return conn.recv(4096)


def warnings_in(log_path) -> list[str]:
    return [line for line in log_path.read_text(errors="replace").splitlines() if "WARNING" in line]


def test_a_tls_probe_logs_no_warning(live_server):
    before = warnings_in(live_server.log_path)
    for _ in range(3):
        tls_handshake(live_server.port)
    assert raw_request(live_server.port, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 401")
    time.sleep(0.5)
    assert warnings_in(live_server.log_path) == before


def test_skopeo_without_tls_verification_logs_no_warning(live_server):
    before = warnings_in(live_server.log_path)
    inspected = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--creds", live_server.admin_creds,
                                f"docker://{live_server.host}/team/none:1"], capture_output=True, text=True, timeout=60)
    assert "name unknown" in inspected.stderr, inspected.stderr  # it reached the registry over HTTP
    time.sleep(0.5)
    assert warnings_in(live_server.log_path) == before


def test_a_malformed_plain_http_request_still_warns(live_server):
    before = warnings_in(live_server.log_path)
    assert raw_request(live_server.port, b"NOT HTTP AT ALL\x00\r\n\r\n").startswith(b"HTTP/1.1 400")
    time.sleep(0.5)
    assert warnings_in(live_server.log_path)[len(before):] == ["WARNING:  Invalid HTTP request received."]
