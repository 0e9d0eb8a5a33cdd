"""Authentication: Basic credentials of users and robots, with a verification cache (argon2
is slow on purpose), lockout after repeated failures, and failed logins recorded as events,
aggregated to at most one event per user per window."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections import OrderedDict, deque
from datetime import datetime, timezone

from starlette.requests import Request

from domain.administration import Administration
from domain.context import is_reserved_name
from domain.errors import AuthenticationError, TooManyAttemptsError
from domain.permissions import Principal
from domain.ports import SecretHasher
from domain.robot import ROBOT_PREFIX
from projections.access import AccessView, robot_principal

MAX_FAILURES = 5
LOCKOUT_SECONDS = 300
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


class Authenticator:
    def __init__(self, access: AccessView, hasher: SecretHasher, admin: Administration,
                 clock=lambda: datetime.now(timezone.utc)) -> None:
        self.access = access
        self.clock = clock
        self.hasher = hasher
        self.admin = admin
        self._lock = threading.Lock()
        self._verified: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._failures: dict[str, deque[float]] = {}
        self._unrecorded: dict[str, tuple[int, float, str]] = {}  # user -> (count, last event, source)

    def login(self, username: str, password: str, source: str = "") -> Principal:
        self._check_not_locked(username)
        principal = self._robot(username, password) if username.startswith(ROBOT_PREFIX) \
            else self._user(username, password)
        if principal is None:
            self._record_failure(username, source)
            raise AuthenticationError("invalid username or password")
        return principal

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
            for username, (_, _, source) in due.items():
                self._unrecorded[username] = (0, now, source)
        for username, (count, _, source) in due.items():
            self.admin.record_failed_logins(username, count, source)

    def _user(self, username: str, password: str) -> Principal | None:
        user = None if is_reserved_name(username) else self.access.user(username)
        if user is None or not self._verify(user.password_hash, password):
            return None
        return self.access.user_principal(user)

    def _robot(self, name: str, secret: str) -> Principal | None:
        robot = self.access.robot(name)
        if robot is None or not self._verify(robot.secret_hash, secret):
            return None
        if robot.disabled:
            raise AuthenticationError("robot account is disabled", {"robot": name})
        if not _robot_usable(robot, self.clock()):
            raise AuthenticationError("robot account has expired", {"robot": name})
        return robot_principal(robot)

    def _verify(self, hashed: str, secret: str) -> bool:
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

    def _check_not_locked(self, username: str) -> None:
        now = time.monotonic()
        with self._lock:
            recent = self._failures.get(username)
            while recent and now - recent[0] > LOCKOUT_SECONDS:
                recent.popleft()
            if recent is not None and len(recent) >= MAX_FAILURES:
                raise TooManyAttemptsError(
                    "too many failed logins; try again later",
                    {"username": username, "retry_after_seconds": int(LOCKOUT_SECONDS - (now - recent[0]))})

    def _record_failure(self, username: str, source: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._failures.setdefault(username, deque()).append(now)
            count, last_event, _ = self._unrecorded.get(username, (0, float("-inf"), source))
            first_in_window = now - last_event >= FAILED_LOGIN_EVENT_WINDOW
            self._unrecorded[username] = (0, now, source) if first_in_window else (count + 1, last_event, source)
        if first_in_window:
            self.admin.record_failed_logins(username, count + 1, source)


def _robot_usable(robot, now: datetime) -> bool:
    if robot.disabled:
        return False
    if robot.expires_at is None:
        return True
    expires = robot.expires_at if robot.expires_at.tzinfo else robot.expires_at.replace(tzinfo=timezone.utc)
    return expires > now


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""
