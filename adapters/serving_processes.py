"""The `portlog serve` processes running on a registry, in a table of the read-model database
that every node shares: each one's row, refreshed every HEARTBEAT_SECONDS, is how
`portlog projections rebuild` knows to refuse (dropping the read models under a running server
breaks its workers). A row not refreshed for STALE_AFTER_SECONDS is a process that died, as is
one of this machine whose process is gone."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, delete, insert, select

if TYPE_CHECKING:
    from projections.database import ReadModelDatabase

HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 20.0

_metadata = MetaData()
_serving = Table(
    "serving_processes", _metadata,
    Column("id", String(36), primary_key=True),
    Column("address", String(300), nullable=False),  # where it listens: host:port
    Column("machine", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("seen_at", Float, nullable=False),  # epoch seconds
)


@dataclass(frozen=True)
class ServingProcess:
    address: str
    machine: str
    pid: int
    seen_at: float


class ServingProcesses:
    def __init__(self, db: ReadModelDatabase, clock=time.time) -> None:
        self.db = db
        self.clock = clock
        _metadata.create_all(db.writer)

    def announce(self, process_id: str, address: str) -> None:
        """Records (or refreshes) that this process serves at `address`."""
        with self.db.writer.begin() as conn:
            conn.execute(delete(_serving).where(_serving.c.id == process_id))
            conn.execute(insert(_serving).values(id=process_id, address=address[:300],
                                                 machine=socket.gethostname()[:255], pid=os.getpid(),
                                                 seen_at=self.clock()))

    def leave(self, process_id: str) -> None:
        with self.db.writer.begin() as conn:
            conn.execute(delete(_serving).where(_serving.c.id == process_id))

    def running(self) -> list[ServingProcess]:
        """The processes seen within STALE_AFTER_SECONDS."""
        with self.db.reader.connect() as conn:
            rows = conn.execute(select(_serving.c.address, _serving.c.machine, _serving.c.pid, _serving.c.seen_at)
                                .where(_serving.c.seen_at > self.clock() - STALE_AFTER_SECONDS)).all()
        here = socket.gethostname()[:255]
        return [ServingProcess(*row) for row in rows if row.machine != here or _alive(row.pid)]


@contextmanager
def serving(table: ServingProcesses, address: str) -> Iterator[None]:
    """This process's row, refreshed on a thread of its own for as long as the block runs."""
    process_id = str(uuid.uuid4())
    table.announce(process_id, address)
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                table.announce(process_id, address)
            except Exception:  # the database is away for a moment: the next beat tries again
                pass

    thread = threading.Thread(target=refresh, name="portlog-serving-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        table.leave(process_id)


def _alive(pid: int) -> bool:
    """Whether a process of this machine still runs (one killed outright left its row behind)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's
    return True
