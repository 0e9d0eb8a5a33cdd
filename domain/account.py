"""The User aggregate: an account. Topic `domain.account:User.<Event>`.

A local account (`auth_source` "db") has a password *hash* (argon2); the management API never
returns it. A directory (LDAP) or OpenID Connect account is onboarded at its first login with no
password (an empty hash never verifies: the directory or the provider checks who it is), and the
groups seen at each login are recorded when they change (`GroupsObserved`). An OIDC account's CLI
secret is recorded sealed (encrypted, since the user may read it again), never in clear.
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
    # Version 2 added `auth_source`, `external_id` and `groups`; older snapshots are upcast.
    class_version = 2

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
        _: KW_ONLY
        auth_source: str = "db"  # added compatibly: "db", "ldap" or "oidc" (domain/identity.py)
        external_id: str = ""  # the directory entry's DN, or "<issuer>|<sub>" of an OIDC account
        realname: str = ""

    class Recreated(Event):
        email: str
        password_hash: str
        system_admin: bool
        _: KW_ONLY
        auth_source: str = "db"
        external_id: str = ""
        realname: str = ""

        def apply(self, user: User) -> None:
            user.email, user.password_hash = self.email, self.password_hash
            user.system_admin, user.deleted = self.system_admin, False
            user.auth_source, user.external_id, user.groups = self.auth_source, self.external_id, ()

    class GroupsObserved(Event):
        """The groups (keys, domain/identity.py) the directory or provider named at a login, when
        they differ from those named at the one before: what Portlog saw then, not the directory's
        history."""

        groups: list

        def apply(self, user: User) -> None:
            user.groups = tuple(self.groups)

    class CliSecretSet(Event):
        """An OIDC account's secret for command-line clients, sealed (adapters/secret_box.py)."""

        sealed_secret: str

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

    def __init__(self, username: str, email: str, password_hash: str, system_admin: bool,
                 auth_source: str = "db", external_id: str = "", realname: str = "") -> None:
        self.username = username
        self.email = email
        self.password_hash = password_hash
        self.system_admin = system_admin
        self.auth_source = auth_source
        self.external_id = external_id
        self.groups: tuple[str, ...] = ()
        self.deleted = False

    @staticmethod
    def upcast_v1_v2(state: dict) -> None:
        state["auth_source"], state["external_id"], state["groups"] = "db", "", []

    @staticmethod
    def create_id(username: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/users/{username}")

    @classmethod
    def create(cls, username: str, email: str, password_hash: str, system_admin: bool,
               ctx: RequestContext, **identity: str) -> User:
        """`identity`: auth_source, external_id, realname of an onboarded account."""
        return cls._create(cls.Created, id=cls.create_id(username), username=username, email=email,
                           password_hash=password_hash, system_admin=system_admin, **identity,
                           **ctx.event_fields())

    def recreate(self, email: str, password_hash: str, system_admin: bool,
                 ctx: RequestContext, **identity: str) -> None:
        if not self.deleted:
            raise ConflictError("user already exists", {"username": self.username})
        self._trigger(self.Recreated, email=email, password_hash=password_hash,
                      system_admin=system_admin, ctx=ctx, **identity)

    def observe_groups(self, groups: list[str], ctx: RequestContext) -> None:
        self.check_exists()
        if tuple(sorted(set(groups))) != tuple(sorted(self.groups)):
            self._trigger(self.GroupsObserved, groups=sorted(set(groups)), ctx=ctx)

    def set_cli_secret(self, sealed_secret: str, ctx: RequestContext) -> None:
        self.check_exists()
        if self.auth_source != "oidc":
            raise ConflictError("only OpenID Connect accounts have a CLI secret", {"username": self.username})
        self._trigger(self.CliSecretSet, sealed_secret=sealed_secret, ctx=ctx)

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
