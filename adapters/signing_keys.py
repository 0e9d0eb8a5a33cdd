"""Token signing keys, generated on first start and kept in `<data-dir>/token-keys.json`
(mode 0600). The newest key signs; every key listed verifies, so rotation is: add a key
(`portlog keys rotate`), wait one token lifetime, then retire the old one (`--retire`)."""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import orjson


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: bytes
    created: str


class SigningKeyFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[SigningKey]:
        """The keys, newest first; creates the file with one key on first use."""
        if not self.path.exists():
            self._write([_new_key()])
        doc = orjson.loads(self.path.read_bytes())
        keys = [SigningKey(k["kid"], base64.b64decode(k["secret"]), k["created"]) for k in doc["keys"]]
        return sorted(keys, key=lambda k: k.created, reverse=True)

    def rotate(self, retire_old: bool = False) -> SigningKey:
        key = _new_key()
        self._write([key] + ([] if retire_old else self.load()))
        return key

    def _write(self, keys: list[SigningKey]) -> None:
        doc = {"keys": [{"kid": k.kid, "secret": base64.b64encode(k.secret).decode(),
                         "created": k.created} for k in keys]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_suffix(".tmp")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
            f.flush()
            os.fsync(f.fileno())
        os.replace(scratch, self.path)


def _new_key() -> SigningKey:
    created = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    return SigningKey(secrets.token_hex(8), secrets.token_bytes(32), created)
