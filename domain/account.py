"""The User aggregate: a local account. Topic `domain.account:User.<Event>`.

Only password *hashes* are recorded (argon2); the management API never returns them.
Failed logins are recorded aggregated: one event per user per window, with a count.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import ConflictError, NotFoundError


class User(Aggregate):
    class Event(Aggregate.Event):
        username: str
        actor: str
        request_id: str

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
        count: int
        source: str

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
               actor: str, request_id: str) -> User:
        return cls._create(cls.Created, id=cls.create_id(username), username=username, email=email,
                           password_hash=password_hash, system_admin=system_admin, actor=actor,
                           request_id=request_id)

    def recreate(self, email: str, password_hash: str, system_admin: bool, actor: str,
                 request_id: str) -> None:
        if not self.deleted:
            raise ConflictError("user already exists", {"username": self.username})
        self._trigger(self.Recreated, email=email, password_hash=password_hash,
                      system_admin=system_admin, actor=actor, request_id=request_id)

    def change_password(self, password_hash: str, actor: str, request_id: str) -> None:
        self.check_exists()
        self._trigger(self.PasswordChanged, password_hash=password_hash, actor=actor,
                      request_id=request_id)

    def set_admin(self, system_admin: bool, actor: str, request_id: str) -> None:
        self.check_exists()
        if system_admin != self.system_admin:
            event = self.AdminGranted if system_admin else self.AdminRevoked
            self._trigger(event, actor=actor, request_id=request_id)

    def delete(self, actor: str, request_id: str) -> None:
        self.check_exists()
        self._trigger(self.Deleted, actor=actor, request_id=request_id)

    def record_failed_logins(self, count: int, source: str, request_id: str) -> None:
        self._trigger(self.LoginsFailed, count=count, source=source, actor=self.username,
                      request_id=request_id)

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFoundError("user not found", {"username": self.username})

    def _trigger(self, event_class: type[User.Event], **fields) -> None:
        self.trigger_event(event_class, username=self.username, **fields)
