"""One webhook POST over http.client, with separate connect and read timeouts, never
following redirects, connecting only where the outbound guard allows (adapters/outbound.py).
Only the answer's status matters: its body is never read, and a failure is told by the status
and a short reason, never by what the peer sent (a service that is no webhook receiver could
answer with anything)."""

from __future__ import annotations

import http
import http.client
import ssl
import time
from urllib.parse import urlsplit

from adapters.outbound import OutboundGuard, OutboundRefused
from domain.webhooks import AttemptOutcome

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0
USER_AGENT = "portlog-webhook/1"


def post(address: str, body: bytes, headers: dict[str, str], skip_cert_verify: bool = False,
         connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
         read_timeout: float = READ_TIMEOUT_SECONDS, *, outbound: OutboundGuard) -> AttemptOutcome:
    started, phase = time.monotonic(), "connect"
    connection = _connection(address, skip_cert_verify, connect_timeout, outbound)
    with outbound.request_span("POST", address) as outgoing:
        try:
            connection.connect()
            connection.sock.settimeout(read_timeout)
            phase = "request"
            connection.request("POST", _path(address), body, {"User-Agent": USER_AGENT, **headers, **outgoing.headers})
            status = connection.getresponse().status
        except OutboundRefused as error:
            return AttemptOutcome(None, _elapsed_ms(started), str(error))
        except (OSError, http.client.HTTPException) as error:
            return AttemptOutcome(None, _elapsed_ms(started), f"{phase}: {_describe(error)}")
        finally:
            connection.close()
        outgoing.status(status)
    error = None if 200 <= status < 300 else _status_error(status)
    return AttemptOutcome(status, _elapsed_ms(started), error)


def _connection(address: str, skip_cert_verify: bool, timeout: float,
                outbound: OutboundGuard) -> http.client.HTTPConnection:
    parts = urlsplit(address)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        if skip_cert_verify:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    # The socket comes from the guard, to an address it checked; Host and SNI stay the name.
    connection._create_connection = outbound.connect
    return connection


def _path(address: str) -> str:
    parts = urlsplit(address)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _status_error(status: int) -> str:
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _describe(error: Exception) -> str:
    """A short reason in Portlog's words: an http.client error's text quotes the peer's bytes."""
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, http.client.HTTPException):
        return f"no valid HTTP answer ({type(error).__name__})"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {getattr(error, 'verify_message', None) or error.reason or type(error).__name__}"
    return (error.strerror or type(error).__name__).lower() if isinstance(error, OSError) else type(error).__name__


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
