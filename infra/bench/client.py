"""A minimal HTTP/1.1 client over one keep-alive connection, just enough for the benchmark.

`http.client` parses every response's headers through the `email` package; at tens of
thousands of small responses per second that alone would make the load generator the
bottleneck. This one reads the status line, the headers, and a Content-Length or chunked
body, and can discard a large body into one reused buffer instead of keeping it. With an
`auth` (see auth.py) it answers a registry's token challenge and retries once.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

SCRATCH_BYTES = 1024 * 1024
SMALL_BODY = 64 * 1024


class HttpError(Exception):
    """The conversation with the server broke (not an HTTP error status)."""


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(repr=False)  # lower-case names
    body: bytes = field(repr=False)  # empty when the body was discarded
    length: int  # body bytes received

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


class Connection:
    def __init__(self, host: str, port: int, auth=None, timeout: float = 120.0) -> None:
        self.host, self.port, self.auth, self.timeout = host, port, auth, timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._scratch: bytearray | None = None
        self._unanswered = False  # no byte of the current response received yet

    def connect(self) -> None:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock, self._buffer = sock, bytearray()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes | memoryview = b"", keep_body: bool = True) -> Response:
        """Sends one request and reads its response; the connection is closed on any failure."""
        response = self._exchange(method, target, headers, body, keep_body)
        if response.status == 401 and self.auth and self.auth.challenged(response, target, method):
            response = self._exchange(method, target, headers, body, keep_body)
        return response

    def _exchange(self, method, target, headers, body, keep_body) -> Response:
        if self.auth:
            headers = {**self.auth.headers(self, target, method), **(headers or {})}
        reused = self._sock is not None
        self.connect()
        self._unanswered = True
        try:
            self._send(method, target, headers or {}, body)
            return self._receive(method, keep_body)
        except (HttpError, ConnectionError):
            self.close()
            if reused and self._unanswered:
                # The server closed the idle keep-alive connection (uvicorn: after 5 s), as
                # HTTP clients expect; like them, send it again on a new connection.
                return self._exchange(method, target, headers, body, keep_body)
            raise
        except BaseException:
            self.close()
            raise

    def _send(self, method: str, target: str, headers: dict[str, str], body) -> None:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if len(body) <= SMALL_BODY:
            self._sock.sendall(head + bytes(body))
        else:
            self._sock.sendall(head)
            self._sock.sendall(body)

    def _receive(self, method: str, keep_body: bool) -> Response:
        self._unanswered = not self._buffer
        status_line, *header_lines = self._read_until(b"\r\n\r\n").split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if method == "HEAD" or status in (204, 304) or status < 200:
            body, length = b"", 0
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body, length = self._read_chunked(keep_body)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body = self._read_body(length, keep_body)
        else:
            raise HttpError(f"{method} {status}: response without a length")
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, body, length)

    def _fill(self) -> None:
        data = self._sock.recv(SCRATCH_BYTES)
        if not data:
            raise HttpError("connection closed by the server")
        self._unanswered = False
        self._buffer += data

    def _read_until(self, marker: bytes) -> bytes:
        while (end := self._buffer.find(marker)) < 0:
            self._fill()
        data = bytes(self._buffer[:end])
        del self._buffer[:end + len(marker)]
        return data

    def _read_body(self, length: int, keep: bool) -> bytes:
        if keep:
            while len(self._buffer) < length:
                self._fill()
            body = bytes(self._buffer[:length])
            del self._buffer[:length]
            return body
        taken = min(length, len(self._buffer))
        del self._buffer[:taken]
        remaining = length - taken
        if self._scratch is None:
            self._scratch = bytearray(SCRATCH_BYTES)
        view = memoryview(self._scratch)
        while remaining:
            received = self._sock.recv_into(view, min(remaining, SCRATCH_BYTES))
            if not received:
                raise HttpError("connection closed in the middle of a body")
            remaining -= received
        return b""

    def _read_chunked(self, keep: bool) -> tuple[bytes, int]:
        parts, total = [], 0
        while size := int(self._read_until(b"\r\n").split(b";")[0], 16):
            parts.append(self._read_body(size, keep))
            total += size
            self._read_until(b"\r\n")
        while self._read_until(b"\r\n"):  # trailers, up to the empty line
            pass
        return b"".join(parts), total
