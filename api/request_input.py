"""Request input: numbers parsed in one place, and the errors of malformed, oversized or stalled
input, which every surface renders in its own format (api/app.py).

Numbers are ASCII digits only (`'²'.isdigit()` is true, `int('²')` fails) and bounded by what
SQLite INTEGER and PostgreSQL BIGINT hold, or less where a parameter sensibly allows less."""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")

MAX_BIGINT = 2 ** 63 - 1
MIN_BIGINT = -(2 ** 63)


class InputError(Exception):
    """Input the server will not take: 400 unless a subclass says otherwise."""

    status = 400
    kind = "bad-request"  # the problem type on /api/v1
    oci_code = "UNSUPPORTED"  # the OCI error code on /v2/ and /service/token

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BodyTooLargeError(InputError):
    status = 413
    kind = "payload-too-large"
    oci_code = "SIZE_INVALID"


class BodyTimeoutError(InputError):
    status = 408
    kind = "request-timeout"
    oci_code = "BLOB_UPLOAD_INVALID"


def as_id(text: str) -> int | None:
    """A row id named in a path: ASCII digits within BIGINT, else None (no such row)."""
    if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= MAX_BIGINT else None


def by_id(lookup: Callable[[int], T | None], text: str) -> T | None:
    """The row `lookup` finds under the id `text` names; None when `text` is no id."""
    value = as_id(text)
    return None if value is None else lookup(value)


def parse_int(text: str, name: str, minimum: int = 0, maximum: int = MAX_BIGINT) -> int:
    """A whole number from a query parameter or header, within [minimum, maximum]."""
    value = as_id(text)
    if value is None:
        raise InputError(f"{name} must be a whole number (ASCII digits), not {text[:40]!r}")
    return bounded(value, name, minimum, maximum)


def parse_flag(text: str, name: str) -> bool:
    """`true` or `false` from a query parameter."""
    if text not in ("true", "false"):
        raise InputError(f"{name} must be true or false, not {text[:40]!r}")
    return text == "true"


def check_json_numbers(document: object) -> None:
    """Every integer in a parsed JSON body fits a BIGINT (orjson reads up to 2**64 - 1, and a
    column holds less). Iterative: bodies nest up to orjson's 1024 levels."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, int) and not MIN_BIGINT <= value <= MAX_BIGINT:
            raise InputError(f"integers in a request body are from {MIN_BIGINT} to {MAX_BIGINT}")


def bounded(value: int, name: str, minimum: int, maximum: int) -> int:
    if not minimum <= value <= maximum:
        raise InputError(f"{name} must be from {minimum} to {maximum}")
    return value
