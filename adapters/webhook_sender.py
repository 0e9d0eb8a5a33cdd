"""One webhook POST over http.client, with separate connect and read timeouts, never
following redirects, reading at most a little of the answer (only its status matters, and
the start of its body explains a failure)."""

from __future__ import annotations

import http.client
import ssl
import time
from urllib.parse import urlsplit

from domain.webhooks import AttemptOutcome

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0
ERROR_BODY_BYTES = 200
USER_AGENT = "portlog-webhook/1"


def post(address: str, body: bytes, headers: dict[str, str], skip_cert_verify: bool = False,
         connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
         read_timeout: float = READ_TIMEOUT_SECONDS) -> AttemptOutcome:
    started, phase = time.monotonic(), "connect"
    connection = _connection(address, skip_cert_verify, connect_timeout)
    try:
        connection.connect()
        connection.sock.settimeout(read_timeout)
        phase = "request"
        connection.request("POST", _path(address), body, {"User-Agent": USER_AGENT, **headers})
        response = connection.getresponse()
        status, excerpt = response.status, response.read(ERROR_BODY_BYTES)
    except (OSError, http.client.HTTPException) as error:
        return AttemptOutcome(None, _elapsed_ms(started), f"{phase}: {_describe(error)}")
    finally:
        connection.close()
    error = None if 200 <= status < 300 else _status_error(status, excerpt)
    return AttemptOutcome(status, _elapsed_ms(started), error)


def _connection(address: str, skip_cert_verify: bool, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(address)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        if skip_cert_verify:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


def _path(address: str) -> str:
    parts = urlsplit(address)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _status_error(status: int, excerpt: bytes) -> str:
    text = excerpt.decode("utf-8", "replace").strip()
    return f"HTTP {status}" + (f": {text}" if text else "")


def _describe(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
