"""Tokens ended before their expiry (a web UI session at logout), by their `jti`, in a table of
the read-model database that every worker process and node reads. A row is needed only until
the token would have expired anyway; `purge` removes the others."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import Column, Float, Index, MetaData, String, Table, delete, insert
from sqlalchemy.exc import IntegrityError

if TYPE_CHECKING:
    from projections.database import ReadModelDatabase

JTI_LENGTH = 64

_metadata = MetaData()
_revoked = Table(
    "revoked_tokens", _metadata,
    Column("jti", String(JTI_LENGTH), primary_key=True),
    Column("expires_at", Float, nullable=False),  # epoch seconds: the token's own `exp`
    Index("revoked_tokens_expiry", "expires_at"),
)


class RevokedTokenTable:
    def __init__(self, db: ReadModelDatabase, clock=time.time) -> None:
        self.db = db
        self.clock = clock
        _metadata.create_all(db.writer)

    def revoke(self, jti: str, expires_at: float) -> None:
        try:
            with self.db.writer.begin() as conn:
                conn.execute(insert(_revoked).values(jti=jti[:JTI_LENGTH], expires_at=expires_at))
        except IntegrityError:
            pass  # revoked already

    def is_revoked(self, jti: str) -> bool:
        return bool(self.db.fetch("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti[:JTI_LENGTH],)))

    def purge(self) -> int:
        """Forgets the tokens that have expired by now; returns how many."""
        with self.db.writer.begin() as conn:
            return conn.execute(delete(_revoked).where(_revoked.c.expires_at <= self.clock())).rowcount
