"""The HTTP protocol `portlog serve` runs: uvicorn's, with a deadline for each request's headers,
and a quiet answer to clients trying TLS first.

uvicorn's keep-alive timeout only covers a connection idle between requests, and stops at the
first byte of the next one: a client sending a header line a minute (slowloris) would hold its
connection for ever. Bodies have their own idle timeout (api/middleware.py).

skopeo and podman with `--tls-verify=false` open every connection to a registry with a TLS
handshake and fall back to plain HTTP when it fails: uvicorn would log each of those as a
WARNING ("Invalid HTTP request received."). Such a probe gets the same 400 at debug level;
other malformed requests still warn."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """Closes a connection whose next request's headers have not all arrived in time."""

    def __init__(self, *args, header_timeout: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._first_data = True
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        first, self._first_data = self._first_data, False
        if first and is_tls_handshake(data):
            self.logger.debug("TLS handshake on the plain-HTTP port from %s (a client probing TLS)", self.client)
            self.send_400_response("Invalid HTTP request received.")
            return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # the next request's headers are already here
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def is_tls_handshake(data: bytes) -> bool:
    """A TLS record carrying a handshake (content type 22, protocol major version 3)."""
    return len(data) >= 3 and data[0] == 0x16 and data[1] == 0x03
