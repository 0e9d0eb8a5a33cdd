"""The webhook dispatcher: a background worker of every serving process (background/runner.py).

It follows the event log from a durable position of its own (`webhook_dispatch_positions`, in
the read-model database, outside any projection so a rebuild leaves it alone), never beyond
what the webhooks read model has applied — matching an event against policies the read model
does not know yet would miss them — nor beyond the replication runs read model, which says
which events ended an execution (REPLICATION). For each event and each enabled policy that wants it, it
creates one delivery per target. Delivery ids are derived from (policy, position, type,
target): dispatchers of several processes or nodes that create the same delivery collide on
version 1 of one aggregate instead of duplicating it.

Due deliveries (the read model knows which, and when next, so a restart loses nothing) are
claimed one attempt at a time by recording `AttemptStarted` at the version the read model
showed; a dispatcher that lost the race gets `AttemptTaken` and skips. Claimed attempts are
sent by a few sender threads with short timeouts, far from any request: a push never waits
for a webhook. A claim holds a lease: if its sender dies, another dispatcher takes the
delivery over when the lease ends.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial
from typing import Callable
from uuid import UUID

from sqlalchemy import BigInteger, Column, MetaData, String, Table, select, update
from sqlalchemy.exc import IntegrityError

from adapters import webhook_sender
from background.webhook_payloads import CONTENT_TYPES, EventFacts, ReplicationFacts, payload
from config.bootstrap import Services
from domain.context import RequestContext
from domain.event_catalog import describe, is_public
from domain.replication import PolicySettings, ReplicationPolicy
from domain.repository import Repository
from domain.webhooks import (
    WEBHOOK_TYPES,
    AttemptOutcome,
    AttemptTaken,
    RetryPolicy,
    Target,
    WebhookDelivery,
    Webhooks,
    delivery_id,
)
from projections.catalog import repositories
from projections.database import as_utc
from projections.webhooks import DeliveryRow, PolicyRow

log = logging.getLogger("portlog.webhooks")

POLL_SECONDS = 0.5
SENDERS = 4  # attempts in flight per process
FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS = 1.0, 600.0
LEASE_SECONDS = webhook_sender.CONNECT_TIMEOUT_SECONDS + webhook_sender.READ_TIMEOUT_SECONDS + 30
BATCH = 500
MAX_ERROR_LENGTH = 500
CLOSE_TIMEOUT_SECONDS = 4.0  # within the 5 s background/runner.py gives a worker to stop

metadata = MetaData()
dispatch_positions = Table(
    "webhook_dispatch_positions", metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

Send = Callable[..., AttemptOutcome]


def dispatch_webhooks(services: Services, stop: threading.Event) -> None:
    """The worker: dispatches until `stop` is set. A failure (the database unavailable, even
    at the start) is logged and the next round tries again."""
    dispatcher = None
    try:
        while not stop.wait(POLL_SECONDS):
            try:
                dispatcher = dispatcher or WebhookDispatcher(services, first_retry_seconds=FIRST_RETRY_SECONDS,
                                                             max_retry_seconds=MAX_RETRY_SECONDS)
                dispatcher.run_once()
            except Exception:
                log.exception("webhook dispatch failed; trying again")
    finally:
        if dispatcher is not None:
            dispatcher.close()


class DispatchPosition:
    """The last log position whose deliveries exist. Only ever moves forward; two dispatchers
    moving it at once both end where the further one got."""

    NAME = "webhooks"

    def __init__(self, services: Services) -> None:
        self.engine = services.db.writer
        with services.db.schema_lock():
            metadata.create_all(self.engine)
        try:
            with self.engine.begin() as conn:
                if conn.execute(self._select()).first() is None:
                    conn.execute(dispatch_positions.insert().values(name=self.NAME, position=0))
        except IntegrityError:
            pass  # another process inserted it

    def get(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(self._select()).scalar_one()

    def advance(self, position: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(dispatch_positions).where(
                dispatch_positions.c.name == self.NAME, dispatch_positions.c.position < position)
                .values(position=position))

    def _select(self):
        return select(dispatch_positions.c.position).where(dispatch_positions.c.name == self.NAME)


class FromHeadPosition(DispatchPosition):
    """Starts at the head of the log the first time: a worker added by an upgrade does not act
    on the whole past at once (scan all, for instance, does that when asked)."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        if self.get() == 0:
            self.advance(services.registry.recorder.max_notification_id() or 0)


def events_after(registry, start: int, readable: int, limit: int) -> tuple[list[tuple[int, object]], int]:
    """The events after `start` up to `readable` (at most `limit`), each with its position, and
    where a follower stands once it handled them: the last one's position when the batch was
    full (more may follow), else `readable`."""
    notifications = registry.recorder.select_notifications(start=start, limit=limit, stop=readable,
                                                           inclusive_of_start=False)
    events = [(n.id, registry.mapper.to_domain_event(n)) for n in notifications]
    return events, (events[-1][0] if len(events) == limit else readable)


def follow_from(position_class: type[DispatchPosition], step: Callable[[DispatchPosition], None],
                services: Services, stop: threading.Event, interval: float, what: str,
                logger: logging.Logger = log) -> None:
    """A worker that runs `step(position)` every `interval` until `stop`. The position is made
    inside the loop: a database down as the process starts must not end the worker."""
    position = None
    while not stop.wait(interval):
        try:
            position = position or position_class(services)
            step(position)
        except Exception:
            logger.exception("%s could not follow the log", what)


class SenderPool:
    """A few daemon threads sending claimed attempts; a stuck receiver holds one thread for at
    most the connect and read timeouts, and never a request."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.closing = threading.Event()
        self._jobs: queue.Queue = queue.Queue()
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, name=f"portlog-webhook-sender-{n}", daemon=True)
                         for n in range(size)]
        for thread in self._threads:
            thread.start()

    def in_flight(self) -> set[str]:
        with self._lock:
            return set(self._in_flight)

    def free(self) -> int:
        with self._lock:
            return self.size - len(self._in_flight)

    def submit(self, key: str, job: Callable[[], None]) -> None:
        with self._lock:
            self._in_flight.add(key)
        self._jobs.put((key, job))

    def close(self, timeout: float) -> None:
        """Lets attempts under way end (up to `timeout`): the process may close the databases
        next. Those still waiting for their receiver then record nothing; their lease runs out
        and they are attempted again."""
        self.closing.set()
        for _ in self._threads:
            self._jobs.put((None, None))
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while True:
            key, job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:
                log.exception("webhook attempt %s could not be completed", key)
            finally:
                with self._lock:
                    self._in_flight.discard(key)


class WebhookDispatcher:
    def __init__(self, services: Services, *, first_retry_seconds: float = FIRST_RETRY_SECONDS,
                 max_retry_seconds: float = MAX_RETRY_SECONDS, senders: int = SENDERS,
                 send: Send | None = None) -> None:
        self.services = services
        self.view = services.webhooks
        self.commands = Webhooks(services.registry)
        self.position = DispatchPosition(services)
        self.pool = SenderPool(senders)
        self.send = send or partial(webhook_sender.post, outbound=services.outbound)
        self.delays = (first_retry_seconds, max_retry_seconds)
        self.name = f"{socket.gethostname()}/{os.getpid()}"

    def run_once(self) -> None:
        self.create_deliveries()
        self.send_due()

    def close(self) -> None:
        self.pool.close(CLOSE_TIMEOUT_SECONDS)

    # Following the log

    def create_deliveries(self) -> None:
        """Creates the deliveries of the next batch of events (at most BATCH)."""
        start = self.position.get()
        positions = self.services.projections.positions()
        readable = min(positions.get("webhooks", 0), positions.get("replication_runs", 0))
        if readable <= start:
            return
        policies = self.view.enabled_policies()
        if policies:
            start = max(start, min(policy.id for policy in policies))  # nothing older can match
        if readable <= start or not policies:
            self.position.advance(readable)
            return
        events, reached = events_after(self.services.registry, start, readable, BATCH)
        for position, event in events:
            self._deliver(position, event, policies)
        self.position.advance(reached)

    def _deliver(self, position: int, event, policies: list[PolicyRow]) -> None:
        if not is_public(event):
            return
        public = describe(event)
        webhook_types = WEBHOOK_TYPES.get(public.type, ())
        replication = None
        if "REPLICATION" in webhook_types and any("REPLICATION" in policy.event_types for policy in policies):
            replication = self._replication_end(position)
        wanted = [(policy, webhook_type) for webhook_type in webhook_types for policy in policies
                  if any(policy.wants(webhook_type, project, position)
                         for project in _projects(webhook_type, public, replication))]
        if public.type.startswith("tag.") and any(t == "PUSH_ARTIFACT" for _, t in wanted) \
                and self._pushed_with(event):
            wanted = [(policy, t) for policy, t in wanted if t != "PUSH_ARTIFACT"]
        if not wanted:
            return
        facts = replace(self._facts(position, event, public), replication=replication)
        ctx = RequestContext("system", public.request_id)
        last = None
        for policy, webhook_type in wanted:
            for index, target in enumerate(policy.targets):
                last = self._create_delivery(policy, webhook_type, index, target, facts, ctx) or last
        self.services.projections.wait_for(last)

    def _create_delivery(self, policy: PolicyRow, webhook_type: str, index: int, target: Target,
                         facts: EventFacts, ctx: RequestContext) -> int | None:
        settings = self.services.settings
        try:
            body = payload(target.payload_format, webhook_type, facts.for_policy_of(policy.project),
                           settings.registry_address, settings.events.source)
        except Exception:  # one malformed event must not hold up every later one
            log.exception("no %s payload for the event at %d; not delivered", webhook_type, facts.position)
            return None
        policy_id = UUID(policy.policy_id)
        return self.commands.create_delivery(lambda: WebhookDelivery.create(
            policy_id, policy.id, policy.project, facts.position, webhook_type, index, target.address,
            target.payload_format, body, ctx), delivery_id(policy_id, facts.position, webhook_type, index))

    def _facts(self, position: int, event, public) -> EventFacts:
        tags: tuple[str, ...] = ()
        if isinstance(event, Repository.ManifestPushed):
            tags = tuple(e.tag for e in self._neighbours(event, after=True, limit=1) if _pointed(e, event))
        elif isinstance(event, Repository.ManifestDeleted):
            tags = tuple(e.tag for e in _deleted_with(event, self._neighbours(event, after=False)))
        project = self.services.access.project(public.project) if public.project else None
        return EventFacts(position, public, tags, self._repository_created_at(public.repository),
                          bool(project and project.public))

    def _replication_end(self, position: int) -> ReplicationFacts | None:
        """The execution the event at `position` ended, with its policy and endpoint as they are
        now (a deleted policy's from its events); None when it ended none."""
        end = self.services.replication_runs.end(position)
        execution = self.services.replication_runs.execution_by_uuid(end.execution) if end else None
        settings, creator = self._policy(execution.policy) if execution else (None, "")
        if settings is None:
            return None
        endpoint_name = settings.source or settings.destination
        endpoint = self.services.registries.by_name(endpoint_name)
        local_url = self.services.settings.external_url or f"http://{self.services.settings.registry_address}"
        return ReplicationFacts(
            status=end.status, tasks=tuple(end.tasks), push=settings.source is None,
            local={"registry_type": "portlog", "endpoint": local_url},
            remote={"registry_name": endpoint_name, "registry_type": endpoint.type if endpoint else "",
                    "endpoint": endpoint.url if endpoint else ""},
            started_by=execution.actor, started_at=as_utc(execution.started_at), trigger=execution.trigger,
            description=settings.description, creator=creator, override=settings.override,
            execution=str(end.execution))

    def _policy(self, name: str) -> tuple[PolicySettings | None, str]:
        """A replication policy's latest settings and who created it, from its events."""
        settings, creator = None, ""
        for event in self.services.registry.events.get(ReplicationPolicy.create_id(name)):
            if isinstance(event, (ReplicationPolicy.Created, ReplicationPolicy.Recreated)):
                creator = event.actor
            if isinstance(event, (ReplicationPolicy.Created, ReplicationPolicy.Updated, ReplicationPolicy.Recreated)):
                settings = PolicySettings.from_fields(event.settings)
        return settings, creator

    def _pushed_with(self, tag_event) -> bool:
        """Whether the manifest a tag was pointed at was pushed in the same change."""
        previous = next(iter(self._neighbours(tag_event, after=False, limit=1)), None)
        return isinstance(previous, Repository.ManifestPushed) and _pointed(tag_event, previous)

    def _neighbours(self, event, after: bool, limit: int = 50) -> list:
        """Events of the same aggregate next to `event`: those after it, or those before it
        nearest first. One change's events are consecutive versions of one aggregate."""
        version = event.originator_version
        if after:
            return list(self.services.registry.events.get(event.originator_id, gt=version, limit=limit))
        return list(self.services.registry.events.get(event.originator_id, lte=version - 1, desc=True, limit=limit))

    def _repository_created_at(self, repository: str | None) -> datetime | None:
        if repository is None:
            return None
        with self.services.db.reader.connect() as conn:
            created = conn.execute(select(repositories.c.created_at).where(
                repositories.c.name == repository)).scalar_one_or_none()
        return as_utc(created) if created else None

    # Sending

    def send_due(self) -> None:
        free = self.pool.free()
        if free <= 0:
            return
        now = datetime.now(timezone.utc)
        for row in self.view.due(now, free, self.pool.in_flight()):
            if self.view.policy(row.policy) is None:
                self.services.projections.wait_for(self.commands.give_up(
                    UUID(row.delivery_id), "the webhook policy was deleted", _dispatcher_context()))
                continue
            attempt = self._claim(row, now)
            if attempt is not None:
                self.pool.submit(row.delivery_id, partial(self._attempt, row, attempt))

    def _claim(self, row: DeliveryRow, now: datetime) -> int | None:
        try:
            attempt, position = self.commands.start_attempt(
                UUID(row.delivery_id), row.version, now, LEASE_SECONDS, self.name, _dispatcher_context())
        except AttemptTaken:
            return None
        self.services.projections.wait_for(position)
        return attempt

    def _attempt(self, row: DeliveryRow, attempt: int) -> None:
        target = self._target(row)
        headers = {"Content-Type": CONTENT_TYPES.get(row.payload_format, "application/json"),
                   "X-Portlog-Delivery": row.delivery_id, "X-Portlog-Attempt": str(attempt),
                   "X-Portlog-Event-Type": row.event_type}
        if target.auth_header:
            headers["Authorization"] = target.auth_header
        outcome = self.send(row.address, row.payload.encode(), headers, target.skip_cert_verify)
        if self.pool.closing.is_set():
            return
        if outcome.error and len(outcome.error) > MAX_ERROR_LENGTH:
            outcome = AttemptOutcome(outcome.status_code, outcome.latency_ms, outcome.error[:MAX_ERROR_LENGTH])
        retry = RetryPolicy(self.services.settings.events.webhook_retry_seconds, *self.delays)
        position = self.commands.record_attempt(UUID(row.delivery_id), attempt, outcome,
                                                datetime.now(timezone.utc), retry, _dispatcher_context())
        self.services.projections.wait_for(position)

    def _target(self, row: DeliveryRow) -> Target:
        """The policy's current target for this delivery's address: a corrected auth header
        applies to the attempts still to come."""
        policy = self.view.policy(row.policy)
        candidates = policy.targets if policy else []
        if row.target < len(candidates) and candidates[row.target].address == row.address:
            return candidates[row.target]
        return next((t for t in candidates if t.address == row.address), Target(row.address))



def _projects(webhook_type: str, public, replication: ReplicationFacts | None) -> tuple[str | None, ...]:
    """Whose policies an event goes to: its project's (None: instance-wide ones only). An
    execution's end goes to the instance-wide ones and to those of this registry's projects it
    copied from or to; an event that ended none, to nobody."""
    if webhook_type != "REPLICATION":
        return (public.project,)
    return (None, *replication.projects) if replication else ()


def _pointed(tag_event, pushed) -> bool:
    return (isinstance(tag_event, Repository.TagPointed) and tag_event.digest == pushed.digest
            and tag_event.request_id == pushed.request_id)


def _deleted_with(deleted, before: list) -> list:
    """The tag deletions that came with a manifest deletion: they precede it, nearest first."""
    found = []
    for event in before:
        if not (isinstance(event, Repository.TagDeleted) and event.digest == deleted.digest
                and event.request_id == deleted.request_id):
            break
        found.append(event)
    return found


def _dispatcher_context() -> RequestContext:
    return RequestContext("system", "webhook-dispatcher")
