"""Failed logins per (account, source address), in a table of the read-model database: every
worker process and every node counts in the same rows. After MAX_FAILURES from one address,
that address is locked out of that account (and only that one: the owner elsewhere still logs
in) for FIRST_LOCK_SECONDS, doubled by each further failure up to MAX_LOCK_SECONDS. A row is
forgotten after FORGET_AFTER_SECONDS without failures, or once its lock is over if that is later.

Counters, not events: the log is kept forever and an attacker would write into it at will;
the audit trail keeps its aggregated `User.LoginsFailed` events (api/authn.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, and_, case, delete
from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from projections.database import ReadModelDatabase

MAX_FAILURES = 5
FIRST_LOCK_SECONDS = 60
MAX_LOCK_SECONDS = 15 * 60
FORGET_AFTER_SECONDS = 15 * 60
ACCOUNT_LENGTH, SOURCE_LENGTH = 255, 64

_metadata = MetaData()
_failures = Table(
    "login_failures", _metadata,
    Column("account", String(ACCOUNT_LENGTH), primary_key=True),
    Column("source", String(SOURCE_LENGTH), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("locked_until", Float, nullable=False),  # epoch seconds; 0 while not locked
    Column("expires_at", Float, nullable=False),
    Index("login_failures_expiry", "expires_at"),
)


def lock_seconds(failures: int) -> float:
    if failures < MAX_FAILURES:
        return 0
    return min(FIRST_LOCK_SECONDS * 2 ** min(failures - MAX_FAILURES, 32), MAX_LOCK_SECONDS)


class LoginFailureTable:
    def __init__(self, db: ReadModelDatabase, clock=time.time) -> None:
        self.db = db
        self.clock = clock
        _metadata.create_all(db.writer)

    def lock_remaining(self, account: str, source: str) -> float | None:
        """Seconds the address is still locked out of the account; 0 when failures are counted
        but not (or no longer) locked; None when none are."""
        rows = self.db.fetch("SELECT locked_until, expires_at FROM login_failures WHERE account = ? AND source = ?",
                             _key(account, source))
        now = self.clock()
        if not rows or rows[0][1] <= now:
            return None
        return max(rows[0][0] - now, 0)

    def record(self, account: str, source: str) -> float:
        """Counts one failure; returns the lock it starts (0: none yet)."""
        now = self.clock()
        account, source = _key(account, source)
        insert = (postgresql.insert if self.db.writer.dialect.name == "postgresql" else sqlite.insert)(_failures)
        counted = case((_failures.c.expires_at > now, _failures.c.failures + 1), else_=1)
        upsert = insert.values(account=account, source=source, failures=1, locked_until=0,
                               expires_at=now + FORGET_AFTER_SECONDS) \
            .on_conflict_do_update(index_elements=["account", "source"], set_={"failures": counted}) \
            .returning(_failures.c.failures)
        with self.db.writer.begin() as conn:  # the row stays locked until the lock is written
            failures = conn.execute(upsert).scalar_one()
            lock = lock_seconds(failures)
            conn.execute(_failures.update().where(_is(account, source)).values(
                locked_until=now + lock if lock else 0, expires_at=now + max(lock, FORGET_AFTER_SECONDS)))
        return lock

    def clear(self, account: str, source: str) -> None:
        with self.db.writer.begin() as conn:
            conn.execute(delete(_failures).where(_is(*_key(account, source))))

    def purge(self) -> int:
        """Removes the rows whose time is over; returns how many."""
        with self.db.writer.begin() as conn:
            return conn.execute(delete(_failures).where(_failures.c.expires_at <= self.clock())).rowcount


def _key(account: str, source: str) -> tuple[str, str]:
    return account[:ACCOUNT_LENGTH], source[:SOURCE_LENGTH]


def _is(account: str, source: str):
    return and_(_failures.c.account == account, _failures.c.source == source)
