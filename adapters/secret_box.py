"""Secrets encrypted at rest with AES-256-GCM (the `cryptography` package): what the log and the
read models hold of a remote registry's password is `v1:<base64 of nonce + ciphertext>`.

The key comes from the configuration (`security.secret_key`, PORTLOG_SECRET_KEY: any string of
32 characters or more, stretched with SHA-256) — every node of a scale-out deployment must have
the same one. An embedded registry without one generates a key file beside its data
(`<data-dir>/secret.key`, mode 0600) on first use; losing it loses the stored credentials, not
the registry.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.errors import ConflictError, InvalidInputError

PREFIX = "v1:"
NONCE_BYTES = 12
MIN_KEY_CHARACTERS = 32


class AesGcmSecretBox:
    def __init__(self, key_text: str) -> None:
        if len(key_text) < MIN_KEY_CHARACTERS:
            raise InvalidInputError(f"the secret key must be at least {MIN_KEY_CHARACTERS} characters")
        self._aead = AESGCM(hashlib.sha256(key_text.encode()).digest())

    def seal(self, secret: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        return PREFIX + base64.b64encode(nonce + self._aead.encrypt(nonce, secret.encode(), None)).decode()

    def open(self, sealed: str) -> str:
        try:
            raw = base64.b64decode(sealed.removeprefix(PREFIX), validate=True)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None).decode()
        except (InvalidTag, ValueError) as error:
            raise ConflictError("a stored credential cannot be decrypted: the secret key changed "
                                "(security.secret_key); enter the credential again") from error


class NoSecretBox:
    """Scale-out without a configured key: credentials cannot be stored (nodes would not share a
    generated key, and keeping the key in the shared database would defeat the encryption)."""

    def seal(self, secret: str) -> str:
        raise InvalidInputError("storing credentials needs security.secret_key (PORTLOG_SECRET_KEY) "
                                "configured, the same on every node")

    def open(self, sealed: str) -> str:
        raise InvalidInputError("stored credentials need security.secret_key (PORTLOG_SECRET_KEY), the key "
                                "they were stored with")


def key_file_text(path: Path) -> str:
    """The key in `path`, created (0600) with 48 random characters if it does not exist yet."""
    for _ in range(50):
        if path.exists() and (text := path.read_text().strip()):
            return text
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            time.sleep(0.02)  # another process of this registry is writing it
            continue
        text = secrets.token_urlsafe(36)
        with os.fdopen(descriptor, "w") as file:
            file.write(text + "\n")
        return text
    raise ConflictError(f"{path} exists but is empty: remove it or configure security.secret_key")
