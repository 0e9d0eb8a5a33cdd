"""Docker registry tokens: short-lived JWTs (HS256) whose `access` claim lists the scopes
granted, e.g. {"type": "repository", "name": "proj/app", "actions": ["pull", "push"]}."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import jwt

from adapters.signing_keys import SigningKey
from domain.context import is_reserved_name

if TYPE_CHECKING:
    from adapters.revoked_tokens import RevokedTokenTable

log = logging.getLogger("portlog.tokens")

ISSUER = "portlog"
SERVICE = "portlog"
UI_AUDIENCE = "portlog-ui"  # web UI sessions: not accepted as registry or API bearer tokens
REFRESH_AUDIENCE = "portlog-refresh"  # OAuth2 refresh tokens: only ever exchanged at /service/token
REFRESH_TOKEN_SECONDS = 90 * 24 * 3600
# The short-lived, single-use cookies of the OpenID Connect login (api/oidc.py): what the callback
# checks (state, nonce, PKCE verifier), and who is choosing a username at first login.
OIDC_STATE_AUDIENCE = "portlog-oidc-state"
OIDC_ONBOARD_AUDIENCE = "portlog-oidc-onboard"
FLOW_AUDIENCES = frozenset({OIDC_STATE_AUDIENCE, OIDC_ONBOARD_AUDIENCE})
ALGORITHM = "HS256"
ANONYMOUS_CLAIM = "anonymous"  # true on the tokens of callers without credentials
# Verified tokens kept per process: a client presents the same token for every request of a pull
# until it expires, and decoding one (base64, JSON, HMAC, claims) was a third of a manifest GET.
VERIFIED_CACHE_SIZE = 4096
KEY_RELOAD_SECONDS = 1.0  # an unknown key id rereads the keys at most this often


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scopes(values: list[str]) -> list[Scope]:
    """`repository:proj/app:pull,push` (several per value, space separated); bad ones ignored."""
    scopes = []
    for value in values:
        for item in value.split():
            head, _, actions = item.rpartition(":")
            kind, _, name = head.partition(":")
            if kind and name and actions:
                scopes.append(Scope(kind.split("(")[0], name, tuple(actions.split(","))))
    return scopes


class InvalidTokenError(Exception):
    pass


class TokenIssuer:
    def __init__(self, keys: list[SigningKey], lifetime_seconds: int = 300,
                 revoked: RevokedTokenTable | None = None,
                 reload_keys: Callable[[], list[SigningKey]] | None = None) -> None:
        """`reload_keys` reads the keys again (adapters/signing_keys.py): after `portlog keys
        rotate`, a worker started since signs with a key the others have not loaded yet."""
        self.keys = {key.kid: key for key in keys}
        self.current = keys[0]
        self.lifetime = lifetime_seconds
        self.revoked = revoked  # sessions and refresh tokens ended early
        self.reload_keys = reload_keys
        self._reloaded_at = float("-inf")
        self._lock = threading.Lock()
        # (audience, token) -> its claims, oldest first; only tokens that verified
        self._verified: dict[tuple[str, str], dict] = {}

    def issue(self, subject: str, access: list[Scope], anonymous: bool = False,
              lifetime_seconds: int | None = None) -> tuple[str, int]:
        """`lifetime_seconds`: shorter than the configured lifetime (a scanner's pull token)."""
        now = int(time.time())
        lifetime = min(lifetime_seconds, self.lifetime) if lifetime_seconds else self.lifetime
        claims = {
            "iss": ISSUER, "aud": SERVICE, "sub": subject, "iat": now, "nbf": now - 5,
            "exp": now + lifetime, "jti": secrets.token_hex(12),
            "access": [{"type": s.type, "name": s.name, "actions": list(s.actions)} for s in access],
            **({ANONYMOUS_CLAIM: True} if anonymous else {}),
        }
        return self._sign(claims), lifetime

    def issue_session(self, subject: str, lifetime_seconds: int, csrf: str, credential: str) -> str:
        """A web UI session; `csrf` is the value the UI must echo in a header on changes, and
        `credential` stands for the password it was opened with (api/sessions.py)."""
        now = int(time.time())
        return self._sign({"iss": ISSUER, "aud": UI_AUDIENCE, "sub": subject, "iat": now, "nbf": now - 5,
                           "exp": now + lifetime_seconds, "jti": secrets.token_hex(12),
                           "csrf": csrf, "credential": credential})

    def issue_refresh(self, subject: str, credential: str, client_id: str) -> str:
        """An OAuth2 refresh token (api/oauth_token.py); `credential` stands for the password
        or robot secret it was obtained with, so changing that ends it."""
        now = int(time.time())
        return self._sign({"iss": ISSUER, "aud": REFRESH_AUDIENCE, "sub": subject, "iat": now, "nbf": now - 5,
                           "exp": now + REFRESH_TOKEN_SECONDS, "jti": secrets.token_hex(12),
                           "credential": credential, "client_id": client_id})

    def issue_flow(self, audience: str, subject: str, values: dict, lifetime_seconds: int) -> str:
        """A token carrying a login flow's `values` between two requests (a cookie), for one of
        FLOW_AUDIENCES only: never a session nor a bearer token. Revoke it when it is used."""
        if audience not in FLOW_AUDIENCES:
            raise ValueError(f"not a flow audience: {audience}")
        now = int(time.time())
        return self._sign({**values, "iss": ISSUER, "aud": audience, "sub": subject, "iat": now,
                           "nbf": now - 5, "exp": now + lifetime_seconds, "jti": secrets.token_hex(12)})

    def verify_flow(self, token: str, audience: str) -> dict:
        if audience not in FLOW_AUDIENCES:
            raise ValueError(f"not a flow audience: {audience}")
        return self._unrevoked(self._verify(token, audience))

    def verify(self, token: str) -> dict:
        """The claims of a valid token; anything else (expired, tampered, alg none, unknown
        key, a UI session) raises InvalidTokenError."""
        return self._verify(token, SERVICE)

    def verify_session(self, token: str) -> dict:
        return self._unrevoked(self._verify(token, UI_AUDIENCE))

    def verify_refresh(self, token: str) -> dict:
        return self._unrevoked(self._verify(token, REFRESH_AUDIENCE))

    def revoke(self, claims: dict) -> None:
        """Ends a verified session or refresh token before its expiry, for every process."""
        if self.revoked is not None:
            self.revoked.revoke(claims["jti"], claims["exp"])

    def _sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.current.secret, algorithm=ALGORITHM, headers={"kid": self.current.kid})

    def _verify(self, token: str, audience: str) -> dict:
        remembered = self._verified.get((audience, token))
        if remembered is not None and _in_time(remembered, time.time()):
            return remembered
        claims = self._decode(token, audience)
        self._remember((audience, token), claims)
        return claims

    def _decode(self, token: str, audience: str) -> dict:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.keys.get(kid) or self._reloaded_key(kid)
            if key is None:
                raise InvalidTokenError("token signed by an unknown key")
            return jwt.decode(token, key.secret, algorithms=[ALGORITHM], audience=audience,
                              issuer=ISSUER, options={"require": ["exp", "sub", "aud", "iss"]})
        except jwt.PyJWTError as error:
            raise InvalidTokenError(str(error)) from None

    def _remember(self, key: tuple[str, str], claims: dict) -> None:
        with self._lock:
            self._verified.pop(key, None)
            self._verified[key] = claims
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]

    def _reloaded_key(self, kid: object) -> SigningKey | None:
        """The key `kid` after reading the keys again, at most once per KEY_RELOAD_SECONDS (an
        unknown kid costs anyone a file or table read, not one per request)."""
        if self.reload_keys is None or not isinstance(kid, str):
            return None
        with self._lock:
            if time.monotonic() - self._reloaded_at < KEY_RELOAD_SECONDS:
                return self.keys.get(kid)
            self._reloaded_at = time.monotonic()
            try:
                keys = self.reload_keys()
            except (OSError, ValueError, KeyError) as error:  # a key file being hand-edited
                log.warning("reloading the token signing keys failed: %s", error)
                return None
            self.keys, self.current = {key.kid: key for key in keys}, keys[0]
            self._verified.clear()  # a retired key's tokens verify no more
        return self.keys.get(kid)

    def _unrevoked(self, claims: dict) -> dict:
        jti = claims.get("jti")
        if not isinstance(jti, str) or not isinstance(claims["exp"], int | float):
            raise InvalidTokenError("token without an id")
        if self.revoked is not None and self.revoked.is_revoked(jti):
            raise InvalidTokenError("token revoked")
        return claims


def _in_time(claims: dict, now: float) -> bool:
    """jwt.decode's checks of exp, nbf and iat (same bounds), again for a remembered token."""
    return now < int(claims["exp"]) and int(claims.get("nbf", now)) <= now and int(claims.get("iat", now)) <= now


def is_anonymous(claims: dict) -> bool:
    """An anonymous token stands for no account: it is marked so, or (issued before the mark
    existed) its subject is a name Portlog reserves for itself."""
    return claims.get(ANONYMOUS_CLAIM) is True or is_reserved_name(str(claims["sub"]))


def granted_actions(claims: dict, type_: str, name: str) -> set[str]:
    actions: set[str] = set()
    for entry in claims.get("access") or []:
        if isinstance(entry, dict) and entry.get("type") == type_ and entry.get("name") == name:
            actions.update(a for a in entry.get("actions") or [] if isinstance(a, str))
    return actions
