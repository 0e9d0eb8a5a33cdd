"""The event relay: follows the notification log and publishes every public event to the
JetStream stream `PORTLOG` as a CloudEvent (docs/events.md, "NATS JetStream").

NATS is the relay's only record of progress. On every (re)connection it reads the position in
the stream's last message it published (header `Portlog-Position`) and publishes what comes
after, in log order, one message at a time, each acknowledged before the next is sent. So the
stream holds a gapless prefix of the log; a publish whose fate is unknown (an outage between
sending and the PubAck) is either in it, and skipped, or sent again under the same
`Nats-Msg-Id`, which JetStream de-duplicates. Several relays on one log (worker processes,
nodes) are safe for the same reason: a duplicate PubAck means another relay is ahead, and this
one skips to the stream's last message.

nats-py is async: the relay runs its own event loop on its worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable

import nats
import nats.errors
import orjson
from eventsourcing.application import Application
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg, StreamConfig
from nats.js.errors import NotFoundError

from adapters.cloudevents import cloudevent
from domain.event_catalog import describe, is_public

log = logging.getLogger("portlog.relay")

STREAM = "PORTLOG"
SUBJECT_ROOT = "portlog"
STREAM_SUBJECTS = f"{SUBJECT_ROOT}.>"
NO_PROJECT = "_"  # the project token of events about no project (users); not a valid project name
POSITION_HEADER = "Portlog-Position"
MSG_ID_HEADER = "Nats-Msg-Id"
DUPLICATE_WINDOW_SECONDS = 600.0
# Before publishing, a relay re-reads the stream's last message if it has not for this long: an
# event it publishes was then published by no other relay before that read, so within the
# duplicate window, and a repeat is caught.
RESYNC_SECONDS = DUPLICATE_WINDOW_SECONDS / 4
# The log is polled: every 50 ms when idle, every 10 ms for a second after an event, as events
# come in bursts (an image push is blob links, then the manifest, then its tag).
IDLE_POLL_SECONDS, BUSY_POLL_SECONDS, BUSY_SECONDS = 0.05, 0.01, 1.0
BATCH_SIZE = 500
CONNECT_TIMEOUT_SECONDS = 2
ACK_TIMEOUT_SECONDS = 5.0
FIRST_RETRY_SECONDS, LONGEST_RETRY_SECONDS = 0.1, 2.0

_NOT_SUBJECT_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def subject_for(project: str | None, event_type: str) -> str:
    """`portlog.<project>.<type>`, e.g. `portlog.team.artifact.pushed`; `portlog._.user.created`."""
    return f"{SUBJECT_ROOT}.{project_token(project)}.{event_type}"


def project_token(project: str | None) -> str:
    """A project name as one subject token: characters other than letters, digits, `_` and `-`
    (in project names, only `.`) are percent-encoded, so `team.web` becomes `team%2Eweb`."""
    if project is None:
        return NO_PROJECT
    return _NOT_SUBJECT_SAFE.sub(lambda match: "".join(f"%{b:02X}" for b in match.group().encode()), project)


def message_id(source: str, position: int) -> str:
    return f"{source}-{position}"


@dataclass(frozen=True)
class Message:
    subject: str
    body: bytes
    headers: dict[str, str]


def message_for(position: int, event: object, source: str) -> Message | None:
    """What the relay publishes for the event at `position`; None for an internal event."""
    if not is_public(event):
        return None
    public = describe(event)
    return Message(subject_for(public.project, public.type),
                   orjson.dumps(cloudevent(position, public, source), default=str),
                   {MSG_ID_HEADER: message_id(source, position), POSITION_HEADER: str(position)})


async def ensure_stream(js: JetStreamContext) -> None:
    """Creates the stream, or makes an existing one take our subjects and at least our duplicate
    window; an operator's other settings (limits, replicas, storage) are kept."""
    try:
        config = (await js.stream_info(STREAM)).config
    except NotFoundError:
        await js.add_stream(StreamConfig(name=STREAM, subjects=[STREAM_SUBJECTS],
                                         duplicate_window=DUPLICATE_WINDOW_SECONDS))
        return
    subjects = config.subjects or []
    if STREAM_SUBJECTS not in subjects or (config.duplicate_window or 0) < DUPLICATE_WINDOW_SECONDS:
        await js.update_stream(config.evolve(
            subjects=[*subjects, STREAM_SUBJECTS] if STREAM_SUBJECTS not in subjects else subjects,
            duplicate_window=max(config.duplicate_window or 0, DUPLICATE_WINDOW_SECONDS)))


async def last_relayed_position(js: JetStreamContext, source: str) -> int:
    """The log position in the newest message this registry (`source`) published to the stream,
    0 when there is none. Messages from other publishers after it are stepped over."""
    state = (await js.stream_info(STREAM)).state
    if not state.messages:
        return 0
    for seq in range(state.last_seq, state.first_seq - 1, -1):
        message = await _stored_message(js, seq)
        if message is not None and (position := _position_of(message, source)) is not None:
            return position
    return 0


async def _stored_message(js: JetStreamContext, seq: int) -> RawStreamMsg | None:
    try:
        return await js.get_msg(STREAM, seq=seq)
    except NotFoundError:  # deleted
        return None


def _position_of(message: RawStreamMsg, source: str) -> int | None:
    headers = message.headers or {}
    position = headers.get(POSITION_HEADER, "")
    if position.isdigit() and headers.get(MSG_ID_HEADER) == message_id(source, int(position)):
        return int(position)
    return None


class NatsRelay:
    def __init__(self, app: Application, servers: list[str], source: str,
                 on_progress: Callable[[int], None] | None = None) -> None:
        self.app = app
        self.on_progress = on_progress  # told the position after every batch (the metrics)
        self.servers = servers
        self.source = source
        self.position = 0  # every public event up to here is in the stream
        self.published = 0  # messages JetStream stored
        self.duplicates = 0  # messages it already had (another relay's, or ours before an outage)
        self._synced_at = 0.0  # monotonic time `position` was last read from the stream
        self._last_event_at = 0.0  # monotonic time the last notification was read
        self._failures = 0
        self._client_error: Exception | None = None  # the last one nats-py reported
        self._connection = None  # the session's, while it holds the stream
        self.last_error: str | None = None  # why the last session failed, for the health endpoint

    @property
    def connected(self) -> bool:
        """Whether a session holds the stream and its connection is up (the health endpoint asks:
        an idle relay learns of a lost connection only from the client)."""
        connection = self._connection
        return connection is not None and connection.is_connected

    def run(self, stop: threading.Event) -> None:
        """Relays until `stop` is set, reconnecting after any failure."""
        asyncio.run(self._run(stop))

    async def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                await self._session(stop)
            except Exception as error:
                self._failures += 1
                self.last_error = f"{type(error).__name__}: {error}"[:200]
                self._log_failure(error)
                await _pause(stop, min(FIRST_RETRY_SECONDS * 2 ** (self._failures - 1), LONGEST_RETRY_SECONDS))

    async def _session(self, stop: threading.Event) -> None:
        self._client_error = None
        # nats-py's own retries are turned off (it would retry a down server for minutes before
        # returning): max_reconnect_attempts=1 is two attempts per server, the least it makes.
        connection = await nats.connect(
            servers=self.servers, name="portlog-relay", allow_reconnect=False, max_reconnect_attempts=1,
            reconnect_time_wait=FIRST_RETRY_SECONDS, connect_timeout=CONNECT_TIMEOUT_SECONDS,
            error_cb=self._client_failed)
        try:
            js = connection.jetstream(timeout=ACK_TIMEOUT_SECONDS)
            await ensure_stream(js)
            self.position = await last_relayed_position(js, self.source)  # the record, whatever we remember
            self._synced_at = time.monotonic()
            self._connection, self.last_error = connection, None
            log.info("relaying events to NATS stream %s after position %d%s", STREAM, self.position,
                     f" (connected after {self._failures} failed attempts)" if self._failures else "")
            while not stop.is_set():
                read = await self._relay_batch(js)
                if self.on_progress is not None:
                    self.on_progress(self.position)
                self._failures = 0  # only now: a log that cannot be read fails after connecting
                if read < BATCH_SIZE:
                    await asyncio.sleep(self._poll_seconds())
        finally:
            self._connection = None
            await connection.close()

    async def _relay_batch(self, js: JetStreamContext) -> int:
        """Publishes the public events of the next notifications; returns how many were read."""
        notifications = self.app.recorder.select_notifications(
            start=self.position, limit=BATCH_SIZE, inclusive_of_start=False)
        if notifications:
            self._last_event_at = time.monotonic()
        for notification in notifications:
            if time.monotonic() - self._synced_at > RESYNC_SECONDS:
                await self._resync(js)
            if notification.id <= self.position:
                continue
            message = message_for(notification.id, self.app.mapper.to_domain_event(notification), self.source)
            if message is not None and not await self._publish(js, message):
                await self._resync(js)  # another relay is ahead: continue after its last message
                return len(notifications)
            self.position = notification.id
        return len(notifications)

    async def _publish(self, js: JetStreamContext, message: Message) -> bool:
        """False when JetStream already had the message."""
        ack = await js.publish(message.subject, message.body, stream=STREAM, headers=message.headers)
        if ack.duplicate:
            self.duplicates += 1
            return False
        self.published += 1
        return True

    def _poll_seconds(self) -> float:
        busy = time.monotonic() - self._last_event_at < BUSY_SECONDS
        return BUSY_POLL_SECONDS if busy else IDLE_POLL_SECONDS

    async def _resync(self, js: JetStreamContext) -> None:
        """Moves on to the stream's last message, never back (within a connection)."""
        self.position = max(self.position, await last_relayed_position(js, self.source))
        self._synced_at = time.monotonic()

    async def _client_failed(self, error: Exception) -> None:
        self._client_error = error
        log.debug("NATS client: %r", error)

    def _log_failure(self, error: Exception) -> None:
        if self._failures > 1:
            log.debug("NATS relay: attempt %d failed: %r", self._failures, error)
        elif isinstance(error, (nats.errors.Error, OSError, asyncio.TimeoutError)):
            log.warning("NATS relay: %r (%r); reconnecting, to resume after the stream's last message",
                        error, self._client_error)
        else:
            log.exception("NATS relay failed; retrying")


async def _pause(stop: threading.Event, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
