"""Authentication: Basic credentials of users and robots, with a verification cache (argon2
is slow on purpose), lockout of an address after repeated failures on an account (counted in
the database, adapters/login_failures.py), and failed logins recorded as events, aggregated to
at most one event per user per window. An unknown account costs a hash verification too, so
its refusal takes as long as a wrong password's: timing tells no one which names exist.

Who checks a user's password depends on the account and the configured `auth_mode`
(domain/configuration.py): a local account (`admin` always) is checked here; an OpenID Connect
account's password is its CLI secret; in `ldap_auth` mode anyone else is asked of the directory
at every login (not cached: someone the directory dropped, or moved out of a group, is seen so at
their next login), onboarded at the first and their groups recorded when they change."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Callable, Protocol

from starlette.requests import Request

from adapters.login_failures import LoginFailureTable
from domain.administration import Administration
from domain.configuration import LDAP_AUTH, Configuration
from domain.context import RequestContext, is_reserved_name
from domain.errors import (
    AuthenticationError,
    DirectoryUnavailableError,
    FollowerReadOnlyError,
    InvalidInputError,
    TooManyAttemptsError,
)
from domain.identity import DB, LDAP, OIDC, ExternalIdentity
from domain.permissions import Principal
from domain.ports import SecretHasher
from domain.robot import ROBOT_PREFIX
from projections.access import AccessView, robot_principal

FAILED_LOGIN_EVENT_WINDOW = 60
VERIFIED_CACHE_SIZE = 1024


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise AuthenticationError("malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise AuthenticationError("malformed Basic credentials")
    return username, password


class Directory(Protocol):
    """An LDAP directory as the authenticator uses it (adapters/ldap_directory.py)."""

    def authenticate(self, username: str, password: str) -> ExternalIdentity | None:
        """Who `username` is, if `password` is theirs; None if not; DirectoryUnavailableError."""


class Authenticator:
    def __init__(self, access: AccessView, hasher: SecretHasher, admin: Administration,
                 failures: LoginFailureTable, clock=lambda: datetime.now(timezone.utc), *,
                 configuration: Callable[[], Configuration] | None = None,
                 directory: Callable[[Configuration], Directory] | None = None,
                 open_secret: Callable[[str], str] | None = None,
                 settle: Callable[[int | None], None] = lambda position: None) -> None:
        """`configuration` gives the configuration in force; `directory` the LDAP directory it
        names; `open_secret` unseals an OIDC account's CLI secret; `settle` waits until the read
        models have a log position (an onboarding must be visible before the login answers)."""
        self.access = access
        self.clock = clock
        self.hasher = hasher
        self.admin = admin
        self.failures = failures
        self.configuration = configuration
        self.directory = directory
        self.open_secret = open_secret
        self.settle = settle
        self._lock = threading.Lock()
        self._verified: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._dummy_hash: str | None = None
        # user -> (count, last event, source, first and last unrecorded attempt)
        self._unrecorded: dict[str, tuple[int, float, str, datetime | None, datetime | None]] = {}

    def login(self, username: str, password: str, source: str = "") -> Principal:
        counted = self.failures.lock_remaining(username, source)
        if counted:
            raise TooManyAttemptsError("too many failed logins from this address; try again later",
                                       {"username": username, "retry_after_seconds": math.ceil(counted)},
                                       retry_after=math.ceil(counted))
        principal = self._robot(username, password) if username.startswith(ROBOT_PREFIX) \
            else self._user(username, password)
        if principal is None:
            self._record_failure(username, source)
            raise AuthenticationError("invalid username or password")
        if counted is not None:
            self.failures.clear(username, source)
        return principal

    def credential(self, name: str) -> str | None:
        """A digest standing for the account's current password or robot secret (None if the
        account is gone): what sessions and refresh tokens are bound to."""
        if name.startswith(ROBOT_PREFIX):
            robot = self.access.robot(name)
            return None if robot is None else credential_of(robot.secret_hash)
        user = self.access.user(name)
        if user is None or user.auth_source == LDAP:
            return None  # only the directory knows whether a directory account's password still holds
        return credential_of(user.cli_secret if user.auth_source == OIDC else user.password_hash)

    def principal_named(self, name: str) -> Principal | None:
        """The current principal behind a name a token was issued to (None if gone, or a name
        Portlog reserves: an old log may hold an account called `anonymous`)."""
        if is_reserved_name(name):
            return None
        if name.startswith(ROBOT_PREFIX):
            robot = self.access.robot(name)
            return robot_principal(robot) if robot and _robot_usable(robot, self.clock()) else None
        user = self.access.user(name)
        return self.access.user_principal(user) if user else None

    def flush_failed_logins(self, force: bool = False) -> None:
        """Records failures counted since the last event, once their window has passed."""
        now = time.monotonic()
        with self._lock:
            due = {u: v for u, v in self._unrecorded.items()
                   if v[0] and (force or now - v[1] >= FAILED_LOGIN_EVENT_WINDOW)}
            for username, (_, _, source, _, _) in due.items():
                self._unrecorded[username] = (0, now, source, None, None)
            # Every name anyone tried would stay otherwise: forget those with nothing to record.
            for username in [u for u, (count, last, *_) in self._unrecorded.items()
                             if not count and now - last >= FAILED_LOGIN_EVENT_WINDOW]:
                del self._unrecorded[username]
        for username, (count, _, source, first_at, last_at) in due.items():
            self.admin.record_failed_logins(username, count, source, first_at, last_at)

    def _user(self, username: str, password: str) -> Principal | None:
        if not password or is_reserved_name(username):
            self._verify(None, password)  # as slow as any other refusal
            return None  # never an anonymous bind, never an empty secret, never a name Portlog acts under
        user = self.access.user(username)
        if user is not None and user.auth_source == OIDC:
            return self.access.user_principal(user) if self._cli_secret_matches(user, password) else None
        # A local account (admin's among them, which cannot be deleted) is checked here in every mode.
        if (user is None or user.auth_source == LDAP) and self._mode() == LDAP_AUTH:
            return self._directory_user(username, password)
        if user is not None and user.auth_source != DB:
            user = None  # a directory account while the directory is not in use: nobody checks it
        if not self._verify(user.password_hash if user else None, password):
            return None
        return self.access.user_principal(user)

    def _mode(self) -> str:
        return self.configuration().auth_mode if self.configuration else "db_auth"

    def _cli_secret_matches(self, user, secret: str) -> bool:
        if not user.cli_secret or self.open_secret is None:
            return False
        return hmac.compare_digest(self.open_secret(user.cli_secret).encode(), secret.encode())

    def _directory_user(self, username: str, password: str) -> Principal | None:
        """Asks the directory; onboards a first-comer and records the groups it names."""
        if self.directory is None:
            raise DirectoryUnavailableError("LDAP login is not available: no directory adapter is configured")
        identity = self.directory(self.configuration()).authenticate(username, password)
        if identity is None or is_reserved_name(identity.username):
            return None
        existing = self.access.user(identity.username)
        if existing is not None and existing.auth_source != LDAP:
            # The directory's uid is the name of a local (or OIDC) account, `admin` typed as
            # `ADMIN` for one: the directory does not vouch for that account.
            return None
        ctx = RequestContext(identity.username, "login")
        if existing is None:
            try:
                self.settle(self.admin.onboard_user(identity, ctx))
            except InvalidInputError as error:  # a uid Portlog cannot take as a username
                raise AuthenticationError(f"the directory's account cannot sign in here: {error.message}") from None
        self.settle(self.admin.observe_groups(identity.username, list(identity.groups), ctx))
        user = self.access.user(identity.username)
        return None if user is None else self.access.user_principal(user)

    def _robot(self, name: str, secret: str) -> Principal | None:
        robot = self.access.robot(name)
        if not self._verify(robot.secret_hash if robot else None, secret):
            return None
        if robot.disabled:
            raise AuthenticationError("robot account is disabled", {"robot": name})
        if not _robot_usable(robot, self.clock()):
            raise AuthenticationError("robot account has expired", {"robot": name})
        return robot_principal(robot)

    def _verify(self, hashed: str | None, secret: str) -> bool:
        """Whether `secret` matches `hashed`; without a hash (no such account), as slow a no."""
        if hashed is None:
            self.hasher.verify(self._dummy(), secret)
            return False
        key = (hashed, hashlib.sha256(secret.encode()).hexdigest())
        with self._lock:
            if key in self._verified:
                self._verified.move_to_end(key)
                return True
        if not self.hasher.verify(hashed, secret):
            return False
        with self._lock:
            self._verified[key] = True
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return True

    def _dummy(self) -> str:
        """A hash of a random secret, made by the same hasher (so with the same cost)."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(24))
        return self._dummy_hash

    def _record_failure(self, username: str, source: str) -> None:
        self.failures.record(username, source)
        now, attempted_at = time.monotonic(), self.clock()
        with self._lock:
            count, last_event, _, first_at, _ = self._unrecorded.get(
                username, (0, float("-inf"), source, None, None))
            first_at = first_at or attempted_at
            first_in_window = now - last_event >= FAILED_LOGIN_EVENT_WINDOW
            self._unrecorded[username] = (0, now, source, None, None) if first_in_window \
                else (count + 1, last_event, source, first_at, attempted_at)
        if first_in_window:
            try:
                self.admin.record_failed_logins(username, count + 1, source, first_at, attempted_at)
            except FollowerReadOnlyError:
                pass  # a follower records nothing: the counters above still lock the address out


def _robot_usable(robot, now: datetime) -> bool:
    if robot.disabled:
        return False
    if robot.expires_at is None:
        return True
    expires = robot.expires_at if robot.expires_at.tzinfo else robot.expires_at.replace(tzinfo=timezone.utc)
    return expires > now


def credential_of(secret_hash: str) -> str:
    return hashlib.sha256(secret_hash.encode()).hexdigest()[:32]


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""
