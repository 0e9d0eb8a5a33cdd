"""The event log as stored rows, with their positions: what backups copy, what a follower ships
and applies, and what "an aggregate as it was at position P" needs (issue 21, docs/time-travel.md).

The eventsourcing library reads and writes events without their notification ids; these
operations need them. A `LoggedEvent` is one stored event exactly as the store holds it
(`state` is the library's bytes, untouched), so a copy applied elsewhere with the same ids
rebuilds read models equal row for row: numeric ids in read models are log positions.

One class per store (SQLite, PostgreSQL), chosen from the recorder the application built.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder


class LogOrderError(Exception):
    """Events offered to `append_verbatim` out of order: an id at or below the head, ids not
    ascending, or a version that does not follow its aggregate's last one."""


@dataclass(frozen=True)
class LoggedEvent:
    position: int  # the notification id
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes

    def digest(self, previous: str) -> str:
        """This event's link in a hash chain over the log (sha256 hex): tampering with any event,
        dropping one or reordering them changes every link after it."""
        hasher = hashlib.sha256(previous.encode())
        hasher.update(f"\n{self.position}\n{self.originator_id}\n{self.originator_version}\n{self.topic}\n".encode())
        hasher.update(self.state)
        return hasher.hexdigest()

    def to_json(self) -> dict:
        """The JSON form carried by backups and the follower stream (state as latin-1 text
        would be ambiguous: it is base64)."""
        return {"position": self.position, "originator_id": str(self.originator_id),
                "originator_version": self.originator_version, "topic": self.topic,
                "state": base64.b64encode(self.state).decode()}

    @classmethod
    def from_json(cls, data: dict) -> LoggedEvent:
        """Parses the JSON form; ValueError (with what is wrong) for anything malformed."""
        try:
            position, version = data["position"], data["originator_version"]
            topic, state = data["topic"], data["state"]
            if not (isinstance(position, int) and isinstance(version, int) and position > 0 and version > 0
                    and isinstance(topic, str) and isinstance(state, str) and not isinstance(position, bool)
                    and not isinstance(version, bool)):
                raise ValueError("position, originator_version (positive integers), topic and state (strings)")
            return cls(position, UUID(data["originator_id"]), version, topic, base64.b64decode(state, validate=True))
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"malformed logged event: {error}") from None
        except binascii.Error:
            raise ValueError("malformed logged event: state is not base64") from None


class LogStore(Protocol):
    def head(self) -> int: ...

    def read(self, after: int, limit: int, up_to: int | None = None) -> list[LoggedEvent]: ...

    def append_verbatim(self, events: Sequence[LoggedEvent]) -> int: ...

    def version_at(self, originator_id: UUID, position: int) -> int | None: ...


def log_store_for(recorder: ApplicationRecorder) -> LogStore:
    """The log store over the recorder the application built (the composition root calls this)."""
    if type(recorder).__module__.startswith("eventsourcing.postgres"):
        return PostgresLogStore(recorder)
    return SqliteLogStore(recorder)


def read_all(store: LogStore, after: int = 0, up_to: int | None = None, batch: int = 1000) -> Iterator[LoggedEvent]:
    """Every event after `after` (and at or before `up_to`), in order, in batches."""
    while events := store.read(after, batch, up_to):
        yield from events
        after = events[-1].position


class SqliteLogStore:
    """SQLite: the notification id is the rowid of eventsourcing's events table."""

    def __init__(self, recorder) -> None:
        self.recorder = recorder
        self.table = recorder.events_table_name

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int, up_to: int | None = None) -> list[LoggedEvent]:
        bound = up_to if up_to is not None else (1 << 62)
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.table} "
                           "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?", (after, bound, limit))
            return [LoggedEvent(row[0], UUID(row[1]), row[2], row[3], bytes(row[4])) for row in cursor.fetchall()]

    def append_verbatim(self, events: Sequence[LoggedEvent]) -> int:
        """Inserts the events with their own positions, in one transaction; returns the new head.
        Raises LogOrderError, inserting nothing, when they do not continue the log."""
        if not events:
            return self.head()
        with self.recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute(f"SELECT MAX(rowid) FROM {self.table}")
            head = cursor.fetchone()[0] or 0
            _check_order(head, events, lambda oid: self._last_version(cursor, oid))
            for event in events:
                cursor.execute(f"INSERT INTO {self.table} (rowid, originator_id, originator_version, topic, state) "
                               "VALUES (?, ?, ?, ?, ?)",
                               (event.position, event.originator_id.hex, event.originator_version, event.topic,
                                event.state))
        return events[-1].position

    def _last_version(self, cursor, originator_id: UUID) -> int:
        cursor.execute(f"SELECT MAX(originator_version) FROM {self.table} WHERE originator_id = ?",
                       (originator_id.hex,))
        return cursor.fetchone()[0] or 0

    def version_at(self, originator_id: UUID, position: int) -> int | None:
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT MAX(originator_version) FROM {self.table} WHERE originator_id = ? AND rowid <= ?",
                           (originator_id.hex, position))
            return cursor.fetchone()[0]


class PostgresLogStore:
    """PostgreSQL: the notification id is the `notification_id` bigserial column."""

    def __init__(self, recorder) -> None:
        from psycopg.sql import SQL, Identifier
        self.recorder = recorder
        self.table = SQL("{0}.{1}").format(Identifier(recorder.datastore.schema),
                                           Identifier(recorder.events_table_name))
        self._sql = SQL

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int, up_to: int | None = None) -> list[LoggedEvent]:
        bound = up_to if up_to is not None else (1 << 62)
        query = self._sql("SELECT notification_id, originator_id, originator_version, topic, state FROM {0} "
                          "WHERE notification_id > %s AND notification_id <= %s "
                          "ORDER BY notification_id LIMIT %s").format(self.table)
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(query, (after, bound, limit))
            return [LoggedEvent(row["notification_id"], _uuid(row["originator_id"]), row["originator_version"],
                                row["topic"], bytes(row["state"])) for row in cursor.fetchall()]

    def append_verbatim(self, events: Sequence[LoggedEvent]) -> int:
        """As SqliteLogStore.append_verbatim; the table is locked as the library's own inserts
        lock it (readers never pass a gap filled later), and the id sequence moves past the
        last id so that a promoted follower's own writes continue the log."""
        if not events:
            return self.head()
        sql = self._sql
        with self.recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute(sql("LOCK TABLE {0} IN EXCLUSIVE MODE").format(self.table))
            cursor.execute(sql("SELECT MAX(notification_id) AS head FROM {0}").format(self.table))
            head = cursor.fetchone()["head"] or 0

            def last_version(originator_id: UUID) -> int:
                cursor.execute(sql("SELECT MAX(originator_version) AS v FROM {0} WHERE originator_id = %s")
                               .format(self.table), (originator_id,))
                return cursor.fetchone()["v"] or 0

            _check_order(head, events, last_version)
            cursor.executemany(sql("INSERT INTO {0} (notification_id, originator_id, originator_version, topic, state)"
                                   " VALUES (%s, %s, %s, %s, %s)").format(self.table),
                               [(e.position, e.originator_id, e.originator_version, e.topic, e.state)
                                for e in events])
            cursor.execute(sql("SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)"),
                           (f"{self.recorder.datastore.schema}.{self.recorder.events_table_name}",
                            events[-1].position))
        return events[-1].position

    def version_at(self, originator_id: UUID, position: int) -> int | None:
        query = self._sql("SELECT MAX(originator_version) AS v FROM {0} "
                          "WHERE originator_id = %s AND notification_id <= %s").format(self.table)
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(query, (originator_id, position))
            return cursor.fetchone()["v"]


def _uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _check_order(head: int, events: Sequence[LoggedEvent], last_version) -> None:
    previous = head
    versions: dict[UUID, int] = {}
    for event in events:
        if event.position <= previous:
            raise LogOrderError(f"event at position {event.position} does not follow position {previous}")
        expected = versions.get(event.originator_id)
        if expected is None:
            expected = last_version(event.originator_id) + 1
        if event.originator_version != expected:
            raise LogOrderError(f"event at position {event.position}: version {event.originator_version} of "
                                f"{event.originator_id}, expected {expected}")
        versions[event.originator_id] = expected + 1
        previous = event.position
