"""A follower's log shipper (docs/time-travel.md): reads the leader's log as a stream
(GET /api/v1/log/events, api/management/log_stream.py), stores the bytes each event needs
(GET /api/v1/log/blobs/{digest}, streamed into the blob store, which checks the digest), then
appends the events verbatim — the same positions — and lets the read models catch up. Bytes the
leader's garbage collection deleted (`Blob.Collected`) are deleted here once that event is applied.

Its position is its own log's head (or further, when a project filter passed events over), so
a crash, a kill -9 or a leader restart resumes without a gap or a duplicate. Network trouble
and a leader that refuses us are retried (`last_error` says what happened). What would make the
follower diverge — bytes that do not match their digest, events out of order, a malformed
stream — stops it: state `stopped`, `last_error` naming the cause; a restart tries again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import httpx
import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from adapters.log_store import LoggedEvent, LogOrderError
from adapters.outbound import OutboundRefused
from config.bootstrap import Services
from domain.blob import Blob
from domain.errors import DigestInvalidError, RegistryError
from domain.follower import PROMOTED, digests_to_delete
from domain.names import check_digest

log = logging.getLogger("portlog")
RETRY_SECONDS = 2.0
# A shipper renews its claim at every heartbeat (every second at least); one killed holds it this
# long. Two shippers at once (a long blob fetch outliving the claim) are harmless, only wasteful:
# the second finds the events applied already.
LEASE_SECONDS = 5.0
BLOB_CHUNK = 1024 * 1024
MAX_PENDING = 1000  # events held before they are applied, whatever the leader's heartbeats
UPLOAD_OWNER = "portlog-follower"  # the name a follower's blob fetches are kept under while they run
COLLECTED_TOPIC = get_topic(Blob.Collected)


class Diverging(Exception):
    """The leader sent what the follower must not apply: it stops rather than diverge."""


def ship_log(services: Services, stop: threading.Event) -> None:
    LogShipper(services).run(stop)


class LogShipper:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.state = services.follow_state
        self.follow = services.settings.follow
        self.position = 0
        self.leader_head = 0
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"

    def run(self, stop: threading.Event) -> None:
        known = self.state.status()
        self.position = max(self.services.log_store.head(), known.position if known else 0)
        if self.state.start(self.follow.url, self.position).state == PROMOTED:
            return
        while not stop.is_set() and not self._promoted():
            if not self.state.claim(self.owner, LEASE_SECONDS):  # another process ships: stand by
                stop.wait(RETRY_SECONDS)
                continue
            known = self.state.status()  # another process may have shipped meanwhile
            self.position = max(self.position, self.services.log_store.head(), known.position if known else 0)
            try:
                with self.services.leader_client() as client:
                    self._follow(client, stop)
            except Diverging as error:
                log.error("following %s stopped: %s", self.follow.url, error)
                self.state.stop(str(error))
                return
            except (httpx.HTTPError, OSError, OutboundRefused, RegistryError) as error:
                self._retry_later(f"{type(error).__name__}: {error}", stop)
            except Exception as error:  # a database outage: keep trying, say why
                log.exception("following %s failed", self.follow.url)
                self._retry_later(f"{type(error).__name__}: {error}", stop)

    def _promoted(self) -> bool:
        status = self.state.status()
        return status is not None and status.state == PROMOTED

    def _retry_later(self, error: str, stop: threading.Event) -> None:
        log.warning("following %s: %s; trying again", self.follow.url, error)
        self.state.note_error(error)
        stop.wait(RETRY_SECONDS)

    def _follow(self, client: httpx.Client, stop: threading.Event) -> None:
        """One stream, until it ends, the follower stops or is promoted."""
        params = {"after": str(self.position)}
        if self.follow.projects:
            params["projects"] = ",".join(self.follow.projects)
        with client.stream("GET", "/api/v1/log/events", params=params) as response:
            if response.status_code != 200:
                response.read()
                raise httpx.HTTPStatusError(f"the leader answered {response.status_code}: {_detail(response)}",
                                            request=response.request, response=response)
            pending: list[LoggedEvent] = []
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if not line:
                    continue
                data = _parse(line)
                if data.get("heartbeat") is True:
                    self.leader_head = _position(data, "head")
                    self._apply(pending, _position(data, "position"))
                    pending = []
                    if self._promoted() or not self.state.claim(self.owner, LEASE_SECONDS):
                        return
                    continue
                event = _event(data)
                if event.position <= (pending[-1].position if pending else self.position):
                    raise Diverging(f"event at position {event.position} is out of order (the follower is at "
                                    f"{pending[-1].position if pending else self.position})")
                try:
                    for digest in _blobs(data):
                        self._store(client, digest)
                except Diverging:
                    self._apply(pending, pending[-1].position if pending else self.position)  # the good ones
                    raise
                pending.append(event)
                if len(pending) >= MAX_PENDING:
                    self._apply(pending, pending[-1].position)
                    pending = []
            self._apply(pending, pending[-1].position if pending else self.position)

    def _apply(self, events: list[LoggedEvent], passed: int) -> None:
        """Appends the events (after their bytes were stored), then notes how far the stream has
        passed (`passed`: past events a project filter left out, too)."""
        if events:
            appended = True
            try:
                self.services.log_store.append_verbatim(events)
            except LogOrderError as error:
                if not self._applied_already(events):
                    raise Diverging(f"events out of order: {error}") from None
                appended = False  # the shipper that appended them deletes what they collected
            self.services.projections.catch_up()
            if appended:
                self._delete_collected(events)
        self.position = max(self.position, passed, events[-1].position if events else 0)
        self.leader_head = max(self.leader_head, self.position)
        self.state.advance(self.position, self.leader_head)

    def _delete_collected(self, events: list[LoggedEvent]) -> None:
        """Deletes the bytes the leader's garbage collection deleted in `events` (Blob.Collected),
        after the events are applied and the read models caught up — in the leader's order: links
        gone first, then the bytes. A follower killed in between keeps those bytes; no event
        knows them any more, so once promoted its collector removes them as orphans."""
        if not any(event.topic == COLLECTED_TOPIC for event in events):
            return
        mapper = self.services.registry.mapper
        decoded = [mapper.to_domain_event(StoredEvent(e.originator_id, e.originator_version, e.topic, e.state))
                   for e in events]
        for digest in digests_to_delete(decoded):
            self.services.blobs.delete(digest)

    def _applied_already(self, events: list[LoggedEvent]) -> bool:
        """Whether another shipper (a second worker process, another node on the same database)
        appended these very events meanwhile: no divergence, nothing to do."""
        stored = self.services.log_store.read(events[0].position - 1, len(events), up_to=events[-1].position)
        return [event for event in stored if event.position >= events[0].position] == events

    def _store(self, client: httpx.Client, digest: str) -> None:
        """The digest's bytes into the blob store, streamed; refused unless they match it."""
        blobs = self.services.blobs
        if blobs.stat(digest) is not None:
            return
        with client.stream("GET", f"/api/v1/log/blobs/{digest}") as response:
            if response.status_code == 404:
                # Collected on the leader since (a later event unlinked it and its Blob.Collected
                # follows): nothing to keep.
                log.warning("following %s: the leader no longer stores %s", self.follow.url, digest)
                return
            if response.status_code != 200:
                response.read()
                raise httpx.HTTPStatusError(f"the leader answered {response.status_code} for {digest}: "
                                            f"{_detail(response)}", request=response.request, response=response)
            upload = blobs.start_upload(UPLOAD_OWNER)
            try:
                writer = blobs.upload_writer(upload.upload_id)
                try:
                    for chunk in response.iter_bytes(BLOB_CHUNK):
                        writer.write(chunk)
                except BaseException:
                    writer.abort()
                    raise
                writer.commit()
                blobs.complete_upload(upload.upload_id, digest)
            except DigestInvalidError:
                raise Diverging(f"the leader's bytes for {digest} do not match that digest") from None
            except BaseException:
                blobs.cancel_upload(upload.upload_id)
                raise


def _parse(line: str) -> dict:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise Diverging(f"the leader's stream has a line that is not JSON: {line[:80]!r}") from None
    if not isinstance(data, dict):
        raise Diverging(f"the leader's stream has a line that is not an object: {line[:80]!r}")
    return data


def _event(data: dict) -> LoggedEvent:
    try:
        return LoggedEvent.from_json(data)
    except ValueError as error:
        raise Diverging(f"the leader sent a malformed event: {error}") from None


def _blobs(data: dict) -> list[str]:
    blobs = data.get("blobs", [])
    if not isinstance(blobs, list) or not all(isinstance(digest, str) for digest in blobs):
        raise Diverging(f"event at position {data.get('position')}: blobs is not a list of digests")
    try:
        return [check_digest(digest) for digest in blobs]
    except RegistryError as error:
        raise Diverging(f"event at position {data.get('position')}: {error.message}") from None


def _position(data: dict, name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Diverging(f"the leader's heartbeat has no valid {name}: {value!r}")
    return value


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:200]
    except (ValueError, AttributeError):
        return response.text[:200]
