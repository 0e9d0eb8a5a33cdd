"""Argon2id hashing of passwords and robot secrets (argon2-cffi, RFC 9106 parameters)."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Each Argon2id computation takes 64 MiB for a moment: bound how many run at once, so a burst
# of logins cannot balloon the server's memory (it showed as peak RSS in the benchmark).
CONCURRENT_HASHES = 2


class Argon2SecretHasher:
    def __init__(self, fast: bool = False) -> None:
        self._slots = threading.BoundedSemaphore(CONCURRENT_HASHES)
        # `fast` is for tests only: the same algorithm with a small cost.
        self._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1) if fast \
            else PasswordHasher()

    def hash(self, secret: str) -> str:
        with self._slots:
            return self._hasher.hash(secret)

    def verify(self, hashed: str, secret: str) -> bool:
        try:
            with self._slots:
                return self._hasher.verify(hashed, secret)
        except (VerificationError, InvalidHashError):
            return False
