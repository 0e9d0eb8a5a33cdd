"""The User aggregate: a local account. Topic `domain.account:User.<Event>`.

Only password *hashes* are recorded (argon2); the management API never returns them.
Failed logins are recorded aggregated: one event per user per window, with a count.
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import ConflictError, NotFoundError


class User(Aggregate):
    class Event(Aggregate.Event):
        username: str
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""  # added compatibly: events from before it decode with ""

        def apply(self, aggregate: User) -> None:
            pass

    class Created(Event, Aggregate.Created):
        email: str
        password_hash: str
        system_admin: bool

    class Recreated(Event):
        email: str
        password_hash: str
        system_admin: bool

        def apply(self, user: User) -> None:
            user.email, user.password_hash = self.email, self.password_hash
            user.system_admin, user.deleted = self.system_admin, False

    class PasswordChanged(Event):
        password_hash: str

        def apply(self, user: User) -> None:
            user.password_hash = self.password_hash

    class AdminGranted(Event):
        def apply(self, user: User) -> None:
            user.system_admin = True

    class AdminRevoked(Event):
        def apply(self, user: User) -> None:
            user.system_admin = False

    class Deleted(Event):
        def apply(self, user: User) -> None:
            user.deleted = True

    class LoginsFailed(Event):
        """`count` failed logins from `source` since the previous such event; `actor` is the
        username tried (unauthenticated). The event is written when the aggregation window
        closes: the attempts happened between `first_attempt_at` and `last_attempt_at`."""

        count: int
        _: KW_ONLY
        first_attempt_at: datetime | None = None  # added compatibly: older events have neither
        last_attempt_at: datetime | None = None

    def __init__(self, username: str, email: str, password_hash: str, system_admin: bool) -> None:
        self.username = username
        self.email = email
        self.password_hash = password_hash
        self.system_admin = system_admin
        self.deleted = False

    @staticmethod
    def create_id(username: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/users/{username}")

    @classmethod
    def create(cls, username: str, email: str, password_hash: str, system_admin: bool,
               ctx: RequestContext) -> User:
        return cls._create(cls.Created, id=cls.create_id(username), username=username, email=email,
                           password_hash=password_hash, system_admin=system_admin, **ctx.event_fields())

    def recreate(self, email: str, password_hash: str, system_admin: bool,
                 ctx: RequestContext) -> None:
        if not self.deleted:
            raise ConflictError("user already exists", {"username": self.username})
        self._trigger(self.Recreated, email=email, password_hash=password_hash,
                      system_admin=system_admin, ctx=ctx)

    def change_password(self, password_hash: str, ctx: RequestContext) -> None:
        self.check_exists()
        self._trigger(self.PasswordChanged, password_hash=password_hash, ctx=ctx)

    def set_admin(self, system_admin: bool, ctx: RequestContext) -> None:
        self.check_exists()
        if system_admin != self.system_admin:
            event = self.AdminGranted if system_admin else self.AdminRevoked
            self._trigger(event, ctx=ctx)

    def delete(self, ctx: RequestContext) -> None:
        self.check_exists()
        self._trigger(self.Deleted, ctx=ctx)

    def record_failed_logins(self, count: int, ctx: RequestContext, first_attempt_at: datetime | None = None,
                             last_attempt_at: datetime | None = None) -> None:
        self._trigger(self.LoginsFailed, count=count, first_attempt_at=first_attempt_at,
                      last_attempt_at=last_attempt_at, ctx=ctx)

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError("user not found", {"username": self.username})

    def _trigger(self, event_class: type[User.Event], ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, username=self.username, **ctx.event_fields(), **fields)
