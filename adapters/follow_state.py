"""A follower's state, in one row of the read-model database: what `GET /api/v1/follow` shows,
what `portlog follow promote` changes, and what every process of the follower reads (the
running server notices a promotion within a second: FollowMode caches the row that long).

Not a read model: nothing in the log says a registry follows another, and a rebuild keeps it.
`position` is the last leader position applied or passed over by the project filter; the log's
own head is the truth for what was applied (a crash between the append and this row's update
only makes the follower read the passed-over events again)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, select
from sqlalchemy.exc import SQLAlchemyError

from domain.errors import FollowerReadOnlyError
from domain.follower import FOLLOWING, PROMOTED, STOPPED, FollowStatus

if TYPE_CHECKING:
    from projections.database import ReadModelDatabase

CACHE_SECONDS = 0.5
_ROW = 1
_metadata = MetaData()
_state = Table(
    "follow_state", _metadata,
    Column("id", Integer, primary_key=True),
    Column("leader", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("position", Integer, nullable=False),
    Column("leader_head", Integer, nullable=False),
    Column("behind_since", Float),  # epoch seconds the leader's head was first seen past `position`
    Column("last_error", Text),
    # The one process shipping the log (worker processes and nodes share the row), until when.
    Column("shipper", String(255)),
    Column("shipper_until", Float),
)


class FollowStateTable:
    def __init__(self, db: ReadModelDatabase, clock=time.time) -> None:
        self.db = db
        self.clock = clock
        _metadata.create_all(db.writer)

    def status(self) -> FollowStatus | None:
        with self.db.writer.connect() as conn:
            row = conn.execute(select(_state).where(_state.c.id == _ROW)).first()
        if row is None:
            return None
        behind = row.behind_since is not None and row.leader_head > row.position
        lag = max(self.clock() - row.behind_since, 0.0) if behind else 0.0
        return FollowStatus(row.leader, row.state, row.position, row.leader_head, lag, row.last_error)

    def start(self, leader: str, position: int) -> FollowStatus:
        """Following `leader` from `position` (a restart retries after a stop), unless promoted."""
        with self.db.writer.begin() as conn:
            row = conn.execute(select(_state).where(_state.c.id == _ROW)).first()
            if row is None:
                conn.execute(_state.insert().values(id=_ROW, leader=leader, state=FOLLOWING, position=position,
                                                    leader_head=position, behind_since=None, last_error=None))
            elif row.state != PROMOTED:
                conn.execute(_state.update().where(_state.c.id == _ROW).values(
                    leader=leader, state=FOLLOWING, position=max(position, row.position), last_error=None))
        return self.status()

    def claim(self, owner: str, seconds: float) -> bool:
        """Makes `owner` the shipper for `seconds` (again, if it is already), unless another
        one's claim runs; True when it is."""
        now = self.clock()
        free = (_state.c.shipper.is_(None)) | (_state.c.shipper == owner) | (_state.c.shipper_until < now)
        with self.db.writer.begin() as conn:
            claimed = conn.execute(_state.update().where((_state.c.id == _ROW) & free)
                                   .values(shipper=owner, shipper_until=now + seconds))
            return claimed.rowcount == 1

    def advance(self, position: int, leader_head: int) -> None:
        """Applied (or passed over) up to `position`; the leader's head is `leader_head`."""
        now = self.clock()
        with self.db.writer.begin() as conn:
            row = conn.execute(select(_state.c.behind_since, _state.c.state).where(_state.c.id == _ROW)).first()
            if row is None or row.state == PROMOTED:
                return
            behind_since = (row.behind_since or now) if leader_head > position else None
            conn.execute(_state.update().where(_state.c.id == _ROW).values(
                position=position, leader_head=max(leader_head, position), behind_since=behind_since,
                last_error=None))

    def note_error(self, error: str) -> None:
        """A failure the follower retries (the leader unreachable, refusing its credentials)."""
        with self.db.writer.begin() as conn:
            conn.execute(_state.update().where((_state.c.id == _ROW) & (_state.c.state == FOLLOWING))
                         .values(last_error=error[:2000]))

    def stop(self, error: str) -> None:
        with self.db.writer.begin() as conn:
            conn.execute(_state.update().where((_state.c.id == _ROW) & (_state.c.state == FOLLOWING))
                         .values(state=STOPPED, last_error=error[:2000]))

    def promote(self) -> FollowStatus | None:
        """Turns the follower into a leader (None: it was never a follower)."""
        with self.db.writer.begin() as conn:
            conn.execute(_state.update().where(_state.c.id == _ROW).values(state=PROMOTED, behind_since=None))
        return self.status()


class FollowMode:
    """Whether this process may write: the Registry's guard and the HTTP surfaces ask it. A
    registry follows when it was started with --follow (`configured`), and stays a follower —
    whatever a later process is given — as long as its state row says so, until promoted: a
    command line run on a follower's data without the setting must not write either."""

    def __init__(self, configured: str | None, table: FollowStateTable) -> None:
        self.configured = configured
        self.table = table
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._status: FollowStatus | None = None
        # A leader stays one: no row and no --follow (a row is only made by a process started
        # with --follow), or promoted (nothing turns a promoted follower back). Settled, the
        # row is not read again: a leader's writes never wait on it, nor fail while its
        # database restarts.
        self._settled = False

    @property
    def leader(self) -> str | None:
        status = self._current()
        return status.leader if status is not None else self.configured

    def following(self) -> bool:
        """True until the follower is promoted (a stopped follower still refuses writes)."""
        status = self._current()
        return status.state != PROMOTED if status is not None else self.configured is not None

    def known(self) -> bool | None:
        """`following()` when it needs no database read, else None (the event loop asks this)."""
        with self._lock:
            fresh = self._settled or time.monotonic() - self._checked_at < CACHE_SECONDS
        return self.following() if fresh else None

    def _current(self) -> FollowStatus | None:
        with self._lock:
            now = time.monotonic()
            if self._settled or now - self._checked_at < CACHE_SECONDS:
                return self._status
            try:
                self._status = self.table.status()
            except SQLAlchemyError:
                if self._checked_at == float("-inf"):
                    raise
                return self._status  # the last state read, while the database is unreachable
            self._checked_at = now
            self._settled = (self._status.state == PROMOTED if self._status is not None
                             else self.configured is None)
            return self._status

    def refusal(self) -> FollowerReadOnlyError:
        leader = self.leader
        return FollowerReadOnlyError(f"this registry is a read-only follower of {leader}: write to the leader",
                                     {"leader": leader})

    def check_write(self) -> None:
        """The Registry's guard: raises while following."""
        if self.following():
            raise self.refusal()
