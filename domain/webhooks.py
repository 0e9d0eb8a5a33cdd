"""Webhook policies and their deliveries.
Topics `domain.webhooks:WebhookPolicy.<Event>` and `domain.webhooks:WebhookDelivery.<Event>`.

A policy sends events of one project — or, without a project, of every project (an
instance-wide policy) — to its targets, for the webhook event types it names (Harbor's names).
A delivery is one event of one type sent to one target. Its id is derived from
(policy, event position, event type, target), so two dispatchers creating it collide on
version 1 instead of sending it twice. Each attempt is claimed by recording `AttemptStarted`
at the version the dispatcher last saw: a dispatcher that lost the race finds another version
and skips (`AttemptTaken`). Every attempt's outcome is recorded.

Events are stored forever (tests/app/test_event_schema.py): add fields only with defaults, never
rename or repurpose one. They are not public events (domain/event_catalog.py): webhooks about
webhooks would loop.
"""

from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import ConflictError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from domain.application import Registry

# Harbor's webhook event types, and Portlog's tag events Harbor lacks.
EVENT_TYPES = ("PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT", "SCANNING_COMPLETED",
               "SCANNING_FAILED", "SCANNING_STOPPED", "REPLICATION", "QUOTA_EXCEED", "QUOTA_WARNING",
               "TAG_RETENTION", "CREATE_TAG", "DELETE_TAG")
# The public event types (domain/event_catalog.py) that fire each webhook type. A tag pointed
# by a manifest push is a push to Harbor users (`docker push app:latest` of an image the
# repository holds records only the tag): PUSH_ARTIFACT fires for it too, unless the same
# change pushed the manifest, whose artifact.pushed already fired it (the dispatcher checks).
# REPLICATION fires once per end of an execution: for the task outcome after which none of its
# tasks is pending or running (or the start of an execution with no task); the dispatcher asks
# the replication read model which event that was.
WEBHOOK_TYPES = {
    "artifact.pushed": ("PUSH_ARTIFACT",),
    "artifact.pulled": ("PULL_ARTIFACT",),
    "artifact.deleted": ("DELETE_ARTIFACT",),
    "tag.created": ("CREATE_TAG", "PUSH_ARTIFACT"),
    "tag.moved": ("CREATE_TAG", "PUSH_ARTIFACT"),
    "tag.deleted": ("DELETE_TAG",),
    "project.quota_exceeded": ("QUOTA_EXCEED",),
    "project.quota_warning": ("QUOTA_WARNING",),
    "retention.completed": ("TAG_RETENTION",),
    "replication_task.succeeded": ("REPLICATION",),
    "replication_task.failed": ("REPLICATION",),
    "replication_task.stopped": ("REPLICATION",),
    "replication_execution.started": ("REPLICATION",),
    "scan.completed": ("SCANNING_COMPLETED",),
    "scan.failed": ("SCANNING_FAILED",),
    "scan.stopped": ("SCANNING_STOPPED",),
}
TARGET_TYPES = ("http",)
PAYLOAD_FORMATS = ("Default", "CloudEvents")
MAX_NAME_LENGTH = 255

PENDING, SENDING, RETRYING, DELIVERED, FAILED = "pending", "sending", "retrying", "delivered", "failed"
FINISHED = (DELIVERED, FAILED)


class AttemptTaken(ConflictError):
    """Another dispatcher claimed this attempt first, or the delivery is no longer due."""


# Policies


@dataclass(frozen=True)
class Target:
    address: str
    auth_header: str = ""
    payload_format: str = "Default"
    skip_cert_verify: bool = False
    type: str = "http"

    def public_fields(self) -> dict:
        """Everything but the auth header, which events keep apart (see WebhookPolicy.Created)."""
        return {"type": self.type, "address": self.address, "payload_format": self.payload_format,
                "skip_cert_verify": self.skip_cert_verify}


def check_target(target: Target) -> Target:
    if target.type not in TARGET_TYPES:
        raise InvalidInputError(f"unsupported target type {target.type!r}; supported: {', '.join(TARGET_TYPES)}",
                                {"type": target.type})
    if target.payload_format not in PAYLOAD_FORMATS:
        raise InvalidInputError(f"unsupported payload format {target.payload_format!r}; supported: "
                                f"{', '.join(PAYLOAD_FORMATS)}", {"payload_format": target.payload_format})
    check_address(target.address)
    if not isinstance(target.skip_cert_verify, bool):
        raise InvalidInputError("skip_cert_verify must be true or false")
    if not isinstance(target.auth_header, str) or "\n" in target.auth_header or "\r" in target.auth_header:
        raise InvalidInputError("auth_header must be one line of text")
    return target


def check_address(address: str) -> str:
    parts = urlsplit(address) if isinstance(address, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
            or re.search(r"\s", address) or parts.username is not None:
        raise InvalidInputError("a target address is an http:// or https:// URL with a host "
                                "(credentials go in auth_header)", {"address": address})
    try:
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        raise InvalidInputError("the target address has an invalid port", {"address": address}) from None
    return address


def check_event_types(event_types: list[str]) -> list[str]:
    if not isinstance(event_types, list) or not event_types:
        raise InvalidInputError("event_types must name at least one event type",
                                {"supported": list(EVENT_TYPES)})
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise InvalidInputError(f"unsupported event type {unknown[0]!r}; supported: {', '.join(EVENT_TYPES)}",
                                {"event_types": unknown})
    return list(dict.fromkeys(event_types))


def check_policy_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"a webhook policy needs a name of 1 to {MAX_NAME_LENGTH} characters")
    return name


@dataclass(frozen=True)
class PolicySettings:
    """What a policy says, as an administrator writes it."""

    name: str
    event_types: list[str]
    targets: list[Target]
    enabled: bool = True
    description: str = ""

    def checked(self) -> PolicySettings:
        if not self.targets:
            raise InvalidInputError("a webhook policy needs at least one target")
        return PolicySettings(check_policy_name(self.name), check_event_types(self.event_types),
                              [check_target(t) for t in self.targets], bool(self.enabled),
                              self.description if isinstance(self.description, str) else "")

    def event_fields(self) -> dict:
        return {"name": self.name, "event_types": self.event_types, "enabled": self.enabled,
                "description": self.description, "targets": [t.public_fields() for t in self.targets],
                "auth_header": [t.auth_header for t in self.targets]}


class WebhookPolicy(Aggregate):
    class Event(Aggregate.Event):
        project: str | None  # None: an instance-wide policy
        name: str
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: WebhookPolicy) -> None:
            pass

    class Created(Event, Aggregate.Created):
        description: str
        enabled: bool
        event_types: list[str]
        targets: list[dict]  # {type, address, payload_format, skip_cert_verify}
        # The targets' auth headers, in order: a field of its own, so that the public event
        # catalog leaves it out (domain/event_catalog.py SECRET_FIELDS).
        auth_header: list[str]

    class Updated(Event):
        description: str
        enabled: bool
        event_types: list[str]
        targets: list[dict]
        auth_header: list[str]

        def apply(self, policy: WebhookPolicy) -> None:
            policy.name, policy.description, policy.enabled = self.name, self.description, self.enabled
            policy.event_types, policy.targets = self.event_types, _targets(self.targets, self.auth_header)

    class Deleted(Event):
        def apply(self, policy: WebhookPolicy) -> None:
            policy.deleted = True

    def __init__(self, project: str | None, name: str, description: str, enabled: bool,
                 event_types: list[str], targets: list[dict], auth_header: list[str]) -> None:
        self.project = project
        self.name = name
        self.description = description
        self.enabled = enabled
        self.event_types = event_types
        self.targets = _targets(targets, auth_header)
        self.deleted = False

    @classmethod
    def create(cls, policy_id: UUID, project: str | None, settings: PolicySettings,
               ctx: RequestContext) -> WebhookPolicy:
        """Names are unique within a scope; the caller checks that (policies may be renamed, so
        the name cannot be the id: ids are random)."""
        return cls._create(cls.Created, id=policy_id, project=project, **settings.checked().event_fields(),
                           **ctx.event_fields())

    def update(self, settings: PolicySettings, ctx: RequestContext) -> None:
        self.check_exists()
        fields = settings.checked().event_fields()
        if fields != self._settings().event_fields():
            self.trigger_event(self.Updated, project=self.project, **fields, **ctx.event_fields())

    def delete(self, ctx: RequestContext) -> None:
        self.check_exists()
        self.trigger_event(self.Deleted, project=self.project, name=self.name, **ctx.event_fields())

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError("webhook policy not found", {"policy": self.name})

    def _settings(self) -> PolicySettings:
        return PolicySettings(self.name, self.event_types, self.targets, self.enabled, self.description)


def _targets(targets: list[dict], auth_headers: list[str]) -> list[Target]:
    return [Target(auth_header=header, **fields) for fields, header in zip(targets, auth_headers)]


# Deliveries


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff — first, 2×first, 4×first … at most `max_delay_seconds` apart —
    for `window_seconds` after the first attempt; then the delivery is given up."""

    window_seconds: float
    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 600.0

    def delay(self, attempt: int) -> float:
        return min(self.first_delay_seconds * 2 ** min(attempt - 1, 32), self.max_delay_seconds)

    def next_attempt(self, attempt: int, now: datetime, first_attempt_at: datetime) -> datetime | None:
        """When to try again after attempt number `attempt` failed; None: give up."""
        at = now + timedelta(seconds=self.delay(attempt))
        return at if at <= first_attempt_at + timedelta(seconds=self.window_seconds) else None


@dataclass(frozen=True)
class AttemptOutcome:
    status_code: int | None  # None: no answer (connection refused, timeout, TLS failure)
    latency_ms: int
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def delivery_id(policy_id: UUID, event_position: int, event_type: str, target: int) -> UUID:
    return uuid5(NAMESPACE_URL, f"/webhook-deliveries/{policy_id}/{event_position}/{event_type}/{target}")


class WebhookDelivery(Aggregate):
    class Event(Aggregate.Event):
        policy: int  # the policy's numeric id (the log position of its creation)
        project: str | None
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: WebhookDelivery) -> None:
            pass

    class Created(Event, Aggregate.Created):
        """`payload` is the body sent on every attempt: Harbor's shape or a CloudEvent."""

        policy_id: str
        event_position: int
        event_type: str
        target: int  # index in the policy's targets
        address: str
        payload_format: str
        payload: dict

    class AttemptStarted(Event):
        """The claim: whoever records this at the version it saw sends the attempt."""

        attempt: int
        lease_until: datetime  # after this another dispatcher may take over (a crashed sender)
        dispatcher: str

        def apply(self, delivery: WebhookDelivery) -> None:
            delivery.status, delivery.attempts = SENDING, self.attempt
            delivery.lease_until = self.lease_until
            delivery.first_attempt_at = delivery.first_attempt_at or self.timestamp

    class AttemptRecorded(Event):
        attempt: int
        succeeded: bool
        status_code: int | None
        latency_ms: int
        error: str | None
        next_attempt_at: datetime | None  # None: no further attempt

        def apply(self, delivery: WebhookDelivery) -> None:
            if self.attempt == delivery.attempts and not self.succeeded and self.next_attempt_at:
                delivery.status, delivery.next_attempt_at = RETRYING, self.next_attempt_at

    class Delivered(Event):
        attempt: int

        def apply(self, delivery: WebhookDelivery) -> None:
            delivery.status, delivery.next_attempt_at = DELIVERED, None

    class GaveUp(Event):
        reason: str

        def apply(self, delivery: WebhookDelivery) -> None:
            delivery.status, delivery.next_attempt_at = FAILED, None

    class RedeliveryRequested(Event):
        """Sends the delivery again now; the retry window starts afresh."""

        def apply(self, delivery: WebhookDelivery) -> None:
            delivery.status, delivery.next_attempt_at = PENDING, self.timestamp
            delivery.first_attempt_at = None

    def __init__(self, policy: int, project: str | None) -> None:
        self.policy = policy
        self.project = project
        self.status = PENDING
        self.attempts = 0
        self.next_attempt_at: datetime | None = None
        self.first_attempt_at: datetime | None = None
        self.lease_until: datetime | None = None

    @classmethod
    def create(cls, policy_id: UUID, policy: int, project: str | None, event_position: int, event_type: str,
               target: int, address: str, payload_format: str, payload: dict,
               ctx: RequestContext) -> WebhookDelivery:
        return cls._create(
            cls.Created, id=delivery_id(policy_id, event_position, event_type, target), policy=policy,
            project=project, policy_id=str(policy_id), event_position=event_position, event_type=event_type,
            target=target, address=address, payload_format=payload_format, payload=payload,
            **ctx.event_fields())

    def is_due(self, now: datetime) -> bool:
        """A new delivery (no next attempt time) is due at once."""
        if self.status == SENDING:
            return self.lease_until is not None and self.lease_until <= now
        return self.status in (PENDING, RETRYING) and (self.next_attempt_at is None or self.next_attempt_at <= now)

    def start_attempt(self, seen_version: int, now: datetime, lease_seconds: float, dispatcher: str,
                      ctx: RequestContext) -> int:
        """Claims the next attempt; returns its number. Raises AttemptTaken when the delivery
        changed since `seen_version` (another dispatcher was first) or is not due."""
        if self.version != seen_version or not self.is_due(now):
            raise AttemptTaken("the attempt was taken by another dispatcher, or is not due",
                               {"delivery": str(self.id)})
        self._trigger(self.AttemptStarted, attempt=self.attempts + 1,
                      lease_until=now + timedelta(seconds=lease_seconds), dispatcher=dispatcher, ctx=ctx)
        return self.attempts

    def record_attempt(self, attempt: int, outcome: AttemptOutcome, now: datetime, retry: RetryPolicy,
                       ctx: RequestContext) -> None:
        """Records what an attempt gave, and whether and when to try again. The outcome of an
        attempt that a later one superseded (its lease ran out) is recorded, nothing more."""
        current = attempt == self.attempts and self.status == SENDING
        next_at = None
        if current and not outcome.succeeded:
            next_at = retry.next_attempt(attempt, now, self.first_attempt_at or now)
        self._trigger(self.AttemptRecorded, attempt=attempt, succeeded=outcome.succeeded,
                      status_code=outcome.status_code, latency_ms=outcome.latency_ms, error=outcome.error,
                      next_attempt_at=next_at, ctx=ctx)
        if current and outcome.succeeded:
            self._trigger(self.Delivered, attempt=attempt, ctx=ctx)
        elif current and next_at is None:
            self._trigger(self.GaveUp, reason=f"no success within the retry window of "
                                              f"{retry.window_seconds:g} s after {attempt} attempts", ctx=ctx)

    def give_up(self, reason: str, ctx: RequestContext) -> None:
        if self.status not in FINISHED:
            self._trigger(self.GaveUp, reason=reason, ctx=ctx)

    def request_redelivery(self, ctx: RequestContext) -> None:
        if self.status == SENDING:
            raise ConflictError("an attempt of this delivery is under way; ask again when it ends",
                                {"delivery": str(self.id)})
        self._trigger(self.RedeliveryRequested, ctx=ctx)

    def _trigger(self, event_class: type[WebhookDelivery.Event], ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, policy=self.policy, project=self.project, **ctx.event_fields(), **fields)


# Commands


class Webhooks:
    """Commands on policies and deliveries. Each returns the log position its events reached,
    as the administration commands do, so callers can wait for the read models."""

    def __init__(self, app: Registry) -> None:
        self.app = app

    def create_policy(self, project: str | None, settings: PolicySettings,
                      ctx: RequestContext) -> tuple[UUID, int | None]:
        """(the new policy's id, position)."""
        policy_id = uuid4()
        return policy_id, self.app.update(policy_id, lambda policy: None, create=lambda: WebhookPolicy.create(
            policy_id, project, settings, ctx))

    def update_policy(self, policy_id: UUID, settings: PolicySettings, ctx: RequestContext) -> int | None:
        return self._policy(policy_id, lambda policy: policy.update(settings, ctx))

    def delete_policy(self, policy_id: UUID, ctx: RequestContext) -> int | None:
        return self._policy(policy_id, lambda policy: policy.delete(ctx))

    def create_delivery(self, create: Callable[[], WebhookDelivery], delivery: UUID) -> int | None:
        """Creates the delivery unless it exists (another dispatcher created it)."""
        return self.app.update(delivery, lambda existing: None, create=create)

    def start_attempt(self, delivery: UUID, seen_version: int, now: datetime, lease_seconds: float,
                      dispatcher: str, ctx: RequestContext) -> tuple[int, int | None]:
        """(attempt number, position); raises AttemptTaken when another dispatcher was first."""
        started = []
        position = self._delivery(delivery, lambda d: started.append(
            d.start_attempt(seen_version, now, lease_seconds, dispatcher, ctx)))
        return started[-1], position

    def record_attempt(self, delivery: UUID, attempt: int, outcome: AttemptOutcome, now: datetime,
                       retry: RetryPolicy, ctx: RequestContext) -> int | None:
        return self._delivery(delivery, lambda d: d.record_attempt(attempt, outcome, now, retry, ctx))

    def give_up(self, delivery: UUID, reason: str, ctx: RequestContext) -> int | None:
        return self._delivery(delivery, lambda d: d.give_up(reason, ctx))

    def request_redelivery(self, delivery: UUID, ctx: RequestContext) -> int | None:
        return self._delivery(delivery, lambda d: d.request_redelivery(ctx))

    def _policy(self, policy_id: UUID, change) -> int | None:
        return self.app.update(policy_id, change, missing=lambda: NotFoundError(
            "webhook policy not found", {"policy": str(policy_id)}))

    def _delivery(self, delivery: UUID, change) -> int | None:
        return self.app.update(delivery, change, missing=lambda: NotFoundError(
            "webhook delivery not found", {"delivery": str(delivery)}))
