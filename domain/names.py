"""The OCI distribution grammar for repository names, tags and digests."""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import DigestInvalidError, NameInvalidError, TagInvalidError

MAX_NAME_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")

# Algorithms we can verify, with the exact length and alphabet of their hex encoding.
HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_LOWER_HEX = re.compile(r"[a-f0-9]+")


def check_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH:
        raise NameInvalidError(
            f"repository name is longer than {MAX_NAME_LENGTH} characters",
            {"name": name[:64] + "...", "length": len(name)},
        )
    if not NAME_RE.fullmatch(name):
        raise NameInvalidError(
            "invalid repository name: path components are lowercase letters and digits "
            "separated by '.', '_', '__' or '-', joined by '/'",
            {"name": name},
        )
    return name


def is_valid_tag(tag: str) -> bool:
    return TAG_RE.fullmatch(tag) is not None


def check_tag(tag: str) -> str:
    if not TAG_RE.fullmatch(tag):
        raise TagInvalidError(
            "invalid tag: up to 128 characters of [a-zA-Z0-9_.-], not starting with '.' or '-'",
            {"tag": tag[:160]},
        )
    return tag


@dataclass(frozen=True)
class Digest:
    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


def parse_digest(text: str) -> Digest:
    match = DIGEST_RE.fullmatch(text)
    if not match:
        raise DigestInvalidError("invalid digest: expected algorithm:hex", {"digest": text[:160]})
    algorithm, encoded = match.groups()
    length = HEX_LENGTHS.get(algorithm)
    if length is None:
        raise DigestInvalidError(
            f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512",
            {"digest": text[:160]},
        )
    if len(encoded) != length or not _LOWER_HEX.fullmatch(encoded):
        raise DigestInvalidError(
            f"invalid {algorithm} digest: expected {length} lowercase hex characters",
            {"digest": text[:160]},
        )
    return Digest(algorithm, encoded)


def check_digest(text: str) -> str:
    return str(parse_digest(text))


def is_digest_reference(reference: str) -> bool:
    """A manifest reference is a digest when it has a ':' (tags never do)."""
    return ":" in reference
