"""Argon2id hashing of passwords and robot secrets (argon2-cffi, RFC 9106 parameters)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2SecretHasher:
    def __init__(self, fast: bool = False) -> None:
        # `fast` is for tests only: the same algorithm with a small cost.
        self._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1) if fast \
            else PasswordHasher()

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, hashed: str, secret: str) -> bool:
        try:
            return self._hasher.verify(hashed, secret)
        except (VerificationError, InvalidHashError):
            return False
