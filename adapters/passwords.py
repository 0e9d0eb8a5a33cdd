"""Argon2id hashing of passwords and robot secrets (argon2-cffi), with OWASP's recommended
parameters (19 MiB, 2 passes, 1 lane): the library default takes 64 MiB per computation, which
dominated the server's peak memory. Hashes carry their parameters, so older ones still verify."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Each computation takes its memory for a moment: bound how many run at once, so a burst of
# logins cannot balloon the server's memory. A process that is one of several workers takes one
# at a time (the node still computes one per worker at once): 19 MiB less at each worker's peak.
CONCURRENT_HASHES = 2


class Argon2SecretHasher:
    def __init__(self, fast: bool = False, concurrent: int = CONCURRENT_HASHES) -> None:
        self._slots = threading.BoundedSemaphore(concurrent)
        # `fast` is for tests only: the same algorithm with a small cost.
        self._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1) if fast \
            else PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

    def hash(self, secret: str) -> str:
        with self._slots:
            return self._hasher.hash(secret)

    def verify(self, hashed: str, secret: str) -> bool:
        try:
            with self._slots:
                return self._hasher.verify(hashed, secret)
        except (VerificationError, InvalidHashError):
            return False
