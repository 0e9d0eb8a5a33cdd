"""The event relay against a real NATS server (a private `nats-server -js`) and a live
`portlog serve`: NATS stopped and restarted under a stream of pushes, Portlog killed and
restarted with a backlog, two relays on one log. Afterwards a JetStream consumer reading the
whole stream must see every public event of the log exactly once, in log order. The log is
read from the server's SQLite event store with the eventsourcing library, not through the relay.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import nats
import nats.js.errors
import orjson
import pytest
from eventsourcing.application import Application
from eventsourcing.utils import resolve_topic
from nats.js.api import ConsumerConfig, DeliverPolicy

from adapters.nats_relay import STREAM, STREAM_SUBJECTS, NatsRelay, last_relayed_position
from domain.context import RequestContext
from domain.event_catalog import KINDS
from infra.services import nats as nats_service
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest, push_blob
from tests.support.server import LiveServer, start_server

pytestmark = pytest.mark.e2e

SOURCE = "portlog-e2e"
PROJECTS = ("team", "web.apps")  # a project with a dot: its subject token is percent-encoded
CONFIG, LAYER = b'{"architecture": "amd64", "os": "linux"}', b"relay layer"


@dataclass
class Delivered:
    subject: str
    headers: dict[str, str]
    event: dict
    seq: int

    @property
    def position(self) -> int:
        return int(self.headers["Portlog-Position"])


@pytest.fixture
def nats_server(tmp_path):
    with nats_service.running(tmp_path / "nats") as server:
        yield server


def relay_env(nats_server: nats_service.NatsServer, **extra: str) -> dict[str, str]:
    return {"PORTLOG_NATS_URL": nats_server.url, "PORTLOG_EVENT_SOURCE": SOURCE, **extra}


class Pusher:
    """Pushes distinct manifests `v<first>`… one after another (`run`, or `start` on a thread of
    its own); keeps the digests the registry acknowledged with a 201. A failed request ends it
    (recorded in `error`)."""

    def __init__(self, server: LiveServer, repository: str, count: int, first: int = 0) -> None:
        self.server, self.repository, self.count, self.first = server, repository, count, first
        self.acknowledged: list[str] = []
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def run(self) -> None:
        try:
            with self.server.client() as client:
                push_blob(client, self.repository, CONFIG)
                push_blob(client, self.repository, LAYER)
                for n in range(self.first, self.first + self.count):
                    self._push(client, n)
        except Exception as error:
            self.error = error

    def _push(self, client, n: int) -> None:
        manifest = image_manifest(CONFIG, [LAYER], annotations={"n": str(n)})
        response = client.put(f"/v2/{self.repository}/manifests/v{n}", content=manifest,
                              headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 201, response.text
        self.acknowledged.append(digest_of(manifest))

    def wait_for(self, pushes: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < pushes:
            assert self._thread.is_alive() and time.monotonic() < deadline, f"pusher stopped: {self.error!r}"
            time.sleep(0.01)


def public_positions_of_log(data_dir: Path) -> list[int]:
    """Positions of the public events in a server's event store, read with the library."""
    log = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                           "SQLITE_DBNAME": str(data_dir / "events.db"), "CREATE_TABLE": "n"})
    try:
        return public_positions(log.recorder)
    finally:
        log.close()


def public_positions(recorder) -> list[int]:
    public = tuple(aggregate.Event for aggregate in KINDS)
    positions, start = [], 0
    while notifications := recorder.select_notifications(start=start, limit=1000, inclusive_of_start=False):
        positions += [n.id for n in notifications if issubclass(resolve_topic(n.topic), public)]
        start = notifications[-1].id
    return positions


async def _last_relayed(url: str) -> int:
    connection = await nats.connect(url, allow_reconnect=False)
    try:
        return await last_relayed_position(connection.jetstream(), SOURCE)
    except nats.js.errors.NotFoundError:  # no stream yet
        return 0
    finally:
        await connection.close()


def wait_until_relayed(nats_server, position: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (reached := asyncio.run(_last_relayed(nats_server.url))) < position:
        assert time.monotonic() < deadline, f"relay reached {reached}, the log {position}"
        time.sleep(0.05)


async def _consume(url: str, start_seq: int | None) -> list[Delivered]:
    """Everything a new consumer of the stream gets (from `start_seq` when given), acked."""
    connection = await nats.connect(url, allow_reconnect=False)
    js = connection.jetstream()
    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq) \
        if start_seq else None
    subscription = await js.pull_subscribe(STREAM_SUBJECTS, stream=STREAM, config=config)
    delivered: list[Delivered] = []
    try:
        while True:
            try:
                batch = await subscription.fetch(500, timeout=1.0)
            except asyncio.TimeoutError:  # nats-py raises its own subclass, or asyncio's
                return delivered
            for message in batch:
                delivered.append(Delivered(message.subject, dict(message.headers or {}),
                                           orjson.loads(message.data), message.metadata.sequence.stream))
                await message.ack()
    finally:
        await subscription.unsubscribe()
        await connection.close()


def consume_stream(nats_server, start_seq: int | None = None) -> list[Delivered]:
    return asyncio.run(_consume(nats_server.url, start_seq))


def assert_stream_is_the_log(nats_server, server: LiveServer, started: datetime) -> list[Delivered]:
    """Every public event of the log once, in order, each a well-formed CloudEvent."""
    expected = public_positions_of_log(server.data_dir)
    wait_until_relayed(nats_server, expected[-1])
    delivered = consume_stream(nats_server)
    assert [d.position for d in delivered] == expected
    for d in delivered:
        assert_cloudevent(d, started)
    return delivered


def assert_cloudevent(d: Delivered, started: datetime) -> None:
    event = d.event
    assert d.headers["Nats-Msg-Id"] == f"{SOURCE}-{d.position}"
    assert (event["specversion"], event["id"], event["source"]) == ("1.0", str(d.position), SOURCE)
    assert event["portlogposition"] == d.position and event["datacontenttype"] == "application/json"
    project, event_type = re.fullmatch(r"portlog\.([^.]+)\.(\w+\.\w+)", d.subject).groups()
    assert event["type"] == f"io.portlog.{event_type}"
    assert project == {"web.apps": "web%2Eapps", None: "_"}.get(event["data"]["project"], event["data"]["project"])
    assert started - timedelta(seconds=1) <= datetime.fromisoformat(event["time"]) <= datetime.now(timezone.utc)
    assert event["subject"] and isinstance(event["data"], dict)


def assert_pushes_arrived(delivered: list[Delivered], repository: str, digests: list[str]) -> None:
    """Each acknowledged push is one artifact.pushed, in push order, and its tag one tag.created."""
    pushed = [d for d in delivered if d.event["type"] == "io.portlog.artifact.pushed"
              and d.event["data"]["repository"] == repository]
    assert [d.event["subject"] for d in pushed] == [f"{repository}@{digest}" for digest in digests]
    assert [d.event["data"]["digest"] for d in pushed] == digests
    assert all(d.event["data"]["actor"] == "admin" for d in pushed)
    tags = [d.event["subject"] for d in delivered if d.event["type"] == "io.portlog.tag.created"
            and d.event["data"]["repository"] == repository]
    assert tags == [f"{repository}:v{n}" for n in range(len(digests))]


def test_nats_stopped_and_restarted_under_pushes_every_event_arrives_once_in_order(nats_server, tmp_path):
    started = datetime.now(timezone.utc)
    server = start_server(tmp_path / "data", tmp_path / "serve.log", relay_env(nats_server), projects=PROJECTS)
    try:
        pusher = Pusher(server, "web.apps/outage", count=160)
        pusher.start()
        pusher.wait_for(30)
        nats_server.stop(kill=True)  # a crash: PubAcks in flight are lost
        pushed_before = len(pusher.acknowledged)
        time.sleep(1.5)
        assert len(pusher.acknowledged) > pushed_before  # pushes go on while NATS is down
        nats_server.start()
        pusher.join(timeout=60)
        assert pusher.error is None and len(pusher.acknowledged) == 160
        delivered = assert_stream_is_the_log(nats_server, server, started)
        assert_pushes_arrived(delivered, "web.apps/outage", pusher.acknowledged)
        assert any(d.subject == "portlog.web%2Eapps.artifact.pushed" for d in delivered)
        assert any(d.subject == "portlog._.user.created" for d in delivered)  # the first start's admin
    finally:
        server.stop()


def test_a_consumer_starting_midway_gets_the_rest_of_the_log(nats_server, tmp_path):
    started = datetime.now(timezone.utc)
    server = start_server(tmp_path / "data", tmp_path / "serve.log", relay_env(nats_server), projects=PROJECTS)
    try:
        pusher = Pusher(server, "team/tail", count=20)
        pusher.run()
        assert pusher.error is None
        whole = assert_stream_is_the_log(nats_server, server, started)
        middle = whole[len(whole) // 2]
        tail = consume_stream(nats_server, start_seq=middle.seq + 1)
        log = public_positions_of_log(server.data_dir)
        assert [d.position for d in tail] == [p for p in log if p > middle.position]
    finally:
        server.stop()


def test_portlog_killed_with_a_backlog_resumes_after_the_last_published_event(nats_server, tmp_path):
    started = datetime.now(timezone.utc)
    data_dir, env = tmp_path / "data", relay_env(nats_server)
    first = start_server(data_dir, tmp_path / "first.log", env, projects=PROJECTS)
    try:
        pusher = Pusher(first, "team/restart", count=10)
        pusher.run()
        wait_until_relayed(nats_server, public_positions_of_log(data_dir)[-1])
        nats_server.stop()
        backlog = Pusher(first, "team/restart", count=15, first=10)  # recorded, not relayed
        backlog.run()
    finally:
        first.process.kill()
        first.process.wait()
    nats_server.start()

    second = start_server(data_dir, tmp_path / "second.log", env)
    try:
        more = Pusher(second, "team/restart", count=10, first=25)
        more.run()
        assert pusher.error is backlog.error is more.error is None
        delivered = assert_stream_is_the_log(nats_server, second, started)
        assert_pushes_arrived(delivered, "team/restart", pusher.acknowledged + backlog.acknowledged + more.acknowledged)
    finally:
        second.stop()


def test_two_serving_processes_relay_each_event_once(nats_server, tmp_path):
    started = datetime.now(timezone.utc)
    env = relay_env(nats_server, PORTLOG_WORKERS="2")  # two processes, a relay in each
    server = start_server(tmp_path / "data", tmp_path / "serve.log", env, projects=PROJECTS)
    try:
        pusher = Pusher(server, "team/two", count=60)
        pusher.run()
        assert pusher.error is None
        delivered = assert_stream_is_the_log(nats_server, server, started)
        assert_pushes_arrived(delivered, "team/two", pusher.acknowledged)
    finally:
        server.stop()


# The relay in this process, on the `services` of tests/conftest.py (SQLite, then PostgreSQL):
# what it publishes is counted.

@contextmanager
def relaying(services, nats_server) -> Iterator[NatsRelay]:
    relay = NatsRelay(services.registry, [nats_server.url], SOURCE)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()


def create_projects(services, names: list[str]) -> None:
    for name in names:
        services.admin.create_project(name, False, RequestContext("admin", "relay-test"))


def wait_for_position(relays: list[NatsRelay], position: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while max(relay.position for relay in relays) < position:
        assert time.monotonic() < deadline, f"relays at {[r.position for r in relays]}, the log at {position}"
        time.sleep(0.01)


@pytest.mark.both_databases
def test_a_new_relay_publishes_only_what_the_stream_lacks(services, nats_server):
    create_projects(services, [f"before{n}" for n in range(5)])
    relayed = public_positions(services.registry.recorder)
    with relaying(services, nats_server) as first:
        wait_for_position([first], relayed[-1])
    assert (first.published, first.duplicates) == (len(relayed), 0)

    create_projects(services, [f"backlog{n}" for n in range(7)])
    with relaying(services, nats_server) as second:
        log = public_positions(services.registry.recorder)
        wait_for_position([second], log[-1])
    assert (second.published, second.duplicates) == (7, 0)  # the backlog, not the whole log again
    assert [d.position for d in consume_stream(nats_server)] == log


@pytest.mark.both_databases
def test_two_relays_racing_on_one_log_store_each_event_once_in_order(services, nats_server):
    with relaying(services, nats_server) as a, relaying(services, nats_server) as b:
        for n in range(40):
            create_projects(services, [f"race{n}"])
        log = public_positions(services.registry.recorder)
        wait_for_position([a, b], log[-1])
    assert a.published + b.published == len(log)
    assert [d.position for d in consume_stream(nats_server)] == log
