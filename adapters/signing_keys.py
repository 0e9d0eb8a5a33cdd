"""Token signing keys, generated on first start. The newest key signs; every key listed
verifies, so rotation is: add a key (`portlog keys rotate`), wait one token lifetime, then
retire the old one (`--retire`).

Embedded, they live in `<data-dir>/token-keys.json` (mode 0600). Nodes of a scale-out
deployment must share them (a token one node issued is presented to any other): there they
live in a table of the shared database. Never in the event log, which is exported and kept."""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import orjson
from sqlalchemy import Column, Engine, LargeBinary, MetaData, String, Table, delete, insert, select


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


_metadata = MetaData()
_keys = Table(
    "token_signing_keys", _metadata,
    Column("kid", String(32), primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("created", String(40), nullable=False),
)


class SigningKeyTable:
    """The same keys in a database table shared by every node (created if missing)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _metadata.create_all(engine)

    def load(self) -> list[SigningKey]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(_keys.c.kid, _keys.c.secret, _keys.c.created)
                                .order_by(_keys.c.created.desc())).all()
            if not rows:  # first start; callers hold the schema lock, so only one node gets here
                key = _new_key()
                conn.execute(insert(_keys).values(kid=key.kid, secret=key.secret, created=key.created))
                return [key]
        return [SigningKey(kid, bytes(secret), created) for kid, secret, created in rows]

    def rotate(self, retire_old: bool = False) -> SigningKey:
        key = _new_key()
        with self.engine.begin() as conn:
            if retire_old:
                conn.execute(delete(_keys))
            conn.execute(insert(_keys).values(kid=key.kid, secret=key.secret, created=key.created))
        return key


def _new_key() -> SigningKey:
    created = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    return SigningKey(secrets.token_hex(8), secrets.token_bytes(32), created)
