"""An OpenID Connect provider, as Portlog's web login uses it: the authorization code flow with
state, nonce and PKCE (S256), the code exchanged with client_secret_basic, and the ID token checked
here with PyJWT — its signature against the provider's published JWKS (algorithms taken from those
keys, never `none` nor a shared-secret one), then iss, aud, exp and nonce.

Every request goes through the outbound guard (adapters/outbound.py). Failures raise
`OidcProviderError` (the provider answered, but not with what the flow needs: a refused code, a
token that does not check) or `OidcProviderUnavailable` (it could not be reached); their messages
are short and never quote what the provider sent beyond an OAuth error code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx
import jwt

from adapters.outbound import OutboundGuard, OutboundRefused

DISCOVERY_PATH = "/.well-known/openid-configuration"
TIMEOUT_SECONDS = 10.0
# How long a fetched discovery document and JWKS are used before they are fetched again; a token
# signed by a key not in the cached set fetches the set again at once (key rotation).
CACHE_SECONDS = 300.0
LEEWAY_SECONDS = 60
# Asymmetric algorithms by key type: an ID token's algorithm must be one its key can have.
ALGORITHMS_BY_KEY_TYPE = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub"]
MAX_ERROR_CODE_LENGTH = 64


class OidcProviderError(Exception):
    """The provider answered, but the login cannot go on; the message is safe to show and log."""


class OidcProviderUnavailable(OidcProviderError):
    """The provider could not be reached (or the guard refused its address)."""


@dataclass(frozen=True)
class OidcConfig:
    endpoint: str           # the issuer URL; discovery is at endpoint + /.well-known/openid-configuration
    client_id: str
    client_secret: str
    scope: tuple[str, ...] = ("openid", "profile", "email")
    verify_cert: bool = True

    @staticmethod
    def scopes(text: str) -> tuple[str, ...]:
        """Harbor's comma-separated oidc_scope, `openid` always first."""
        named = [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]
        return ("openid", *dict.fromkeys(scope for scope in named if scope != "openid"))


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what the callback must be checked against."""

    url: str
    state: str
    nonce: str
    verifier: str


class OidcProvider:
    def __init__(self, config: OidcConfig, guard: OutboundGuard, *, clock=time.time,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._clock = clock
        self._http = httpx.Client(transport=transport or guard.httpx_transport(verify=config.verify_cert),
                                  timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)
        self._lock = threading.Lock()
        self._discovery: tuple[float, Discovery] | None = None
        self._jwks: tuple[float, list[SigningKey]] | None = None

    def close(self) -> None:
        self._http.close()

    # --- discovery ---

    def discovery(self) -> Discovery:
        with self._lock:
            if self._discovery and self._discovery[0] > time.monotonic():
                return self._discovery[1]
        found = self._fetch_discovery()
        with self._lock:
            self._discovery = (time.monotonic() + CACHE_SECONDS, found)
        return found

    def _fetch_discovery(self) -> Discovery:
        endpoint = self.config.endpoint.rstrip("/")
        document = self._get_json(endpoint + DISCOVERY_PATH, "discovery document")
        try:
            found = Discovery(**{name: document[name] for name in Discovery.__dataclass_fields__})
        except KeyError as missing:
            raise OidcProviderError(f"the provider's discovery document has no {missing}") from None
        if not all(isinstance(value, str) for value in vars(found).values()):
            raise OidcProviderError("the provider's discovery document is malformed")
        # OpenID Connect Discovery 1.0, 4.3: the issuer must be the URL discovery was fetched from.
        if found.issuer.rstrip("/") != endpoint:
            raise OidcProviderError(f"the provider says its issuer is {found.issuer}, not {self.config.endpoint}")
        for url in (found.authorization_endpoint, found.token_endpoint, found.jwks_uri):
            if urlsplit(url).scheme not in ("http", "https"):
                raise OidcProviderError("the provider's discovery document names a non-HTTP endpoint")
        return found

    # --- the flow ---

    def authorization_request(self, redirect_uri: str) -> AuthorizationRequest:
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        query = urlencode({
            "response_type": "code", "client_id": self.config.client_id, "redirect_uri": redirect_uri,
            "scope": " ".join(self.config.scope), "state": state, "nonce": nonce,
            "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"})
        endpoint = self.discovery().authorization_endpoint
        separator = "&" if urlsplit(endpoint).query else "?"
        return AuthorizationRequest(f"{endpoint}{separator}{query}", state, nonce, verifier)

    def exchange(self, code: str, redirect_uri: str, verifier: str) -> dict:
        """The token endpoint's answer to the code (client_secret_basic); it must hold an ID token."""
        try:
            response = self._http.post(
                self.discovery().token_endpoint, auth=(self.config.client_id, self.config.client_secret),
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                      "code_verifier": verifier}, headers={"Accept": "application/json"})
        except (httpx.HTTPError, OutboundRefused) as error:
            raise self._unreachable(error) from None
        if response.status_code != 200:
            raise OidcProviderError(f"the provider refused the code: {_oauth_error(response)}")
        tokens = _json(response, "token response")
        if not isinstance(tokens.get("id_token"), str):
            raise OidcProviderError("the provider's token response has no ID token")
        return tokens

    def id_token_claims(self, id_token: str, nonce: str) -> dict:
        """The ID token's claims once its signature, issuer, audience, expiry and nonce check."""
        discovery = self.discovery()
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise OidcProviderError("the ID token is malformed") from None
        key = self._signing_key(header)
        algorithms = key.algorithms
        if header.get("alg") not in algorithms:
            raise OidcProviderError(f"the ID token's algorithm {str(header.get('alg'))[:16]!r} is not one of its key's")
        try:
            claims = jwt.decode(id_token, key.key, algorithms=algorithms, audience=self.config.client_id,
                                issuer=discovery.issuer, leeway=LEEWAY_SECONDS,
                                options={"require": REQUIRED_CLAIMS})
        except jwt.PyJWTError as error:
            raise OidcProviderError(f"the ID token was refused: {_reason(error)}") from None
        _check_authorized_party(claims, self.config.client_id)
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise OidcProviderError("the ID token was refused: its nonce is not this login's")
        return claims

    def complete(self, code: str, redirect_uri: str, request: AuthorizationRequest) -> dict:
        """Code -> checked ID token claims, for the callback of `request`."""
        tokens = self.exchange(code, redirect_uri, request.verifier)
        return self.id_token_claims(tokens["id_token"], request.nonce)

    # --- keys ---

    def _signing_key(self, header: dict) -> SigningKey:
        kid = header.get("kid")
        key = _key_in(self._key_set(refresh=False), kid)
        if key is None:  # perhaps rotated since the set was fetched
            key = _key_in(self._key_set(refresh=True), kid)
        if key is None:
            raise OidcProviderError("the ID token is signed by a key the provider does not publish")
        return key

    def _key_set(self, refresh: bool) -> list[SigningKey]:
        with self._lock:
            if not refresh and self._jwks and self._jwks[0] > time.monotonic():
                return self._jwks[1]
        document = self._get_json(self.discovery().jwks_uri, "JWKS")
        keys = [key for key in map(_signing_key_of, _listed(document.get("keys"))) if key is not None]
        if not keys:
            raise OidcProviderError("the provider publishes no usable signing key")
        with self._lock:
            self._jwks = (time.monotonic() + CACHE_SECONDS, keys)
        return keys

    # --- HTTP ---

    def _get_json(self, url: str, what: str) -> dict:
        try:
            response = self._http.get(url, headers={"Accept": "application/json"})
        except (httpx.HTTPError, OutboundRefused) as error:
            raise self._unreachable(error) from None
        if response.status_code != 200:
            raise OidcProviderError(f"the provider's {what} answered HTTP {response.status_code}")
        return _json(response, what)

    def _unreachable(self, error: Exception) -> OidcProviderUnavailable:
        host = urlsplit(self.config.endpoint).netloc
        if isinstance(error, OutboundRefused):
            return OidcProviderUnavailable(str(error))
        return OidcProviderUnavailable(f"the OIDC provider at {host} could not be reached: {type(error).__name__}")


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    kid: str | None
    key: object              # what jwt.decode takes
    algorithms: list[str]    # the ones a token signed by it may name


def _listed(value: object) -> list:
    return value if isinstance(value, list) else []


def _signing_key_of(jwk: object) -> SigningKey | None:
    """A published key that can sign ID tokens: of an asymmetric type, not meant for encryption,
    with an algorithm of its type (all of its type's when it names none)."""
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or "d" in jwk:
        return None
    allowed = ALGORITHMS_BY_KEY_TYPE.get(jwk.get("kty"), ())
    declared = jwk.get("alg")
    algorithms = list(allowed) if declared is None else [declared] if declared in allowed else []
    if not algorithms:
        return None
    try:
        key = jwt.PyJWK(jwk, algorithms[0])
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    kid = jwk.get("kid")
    return SigningKey(kid if isinstance(kid, str) else None, key.key, algorithms)


def _key_in(keys: list[SigningKey], kid: object) -> SigningKey | None:
    if kid is None:  # a token may name no key when the provider has one
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.kid == kid), None)


def _check_authorized_party(claims: dict, client_id: str) -> None:
    """OpenID Connect Core 3.1.3.7: with several audiences, azp must be this client."""
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise OidcProviderError("the ID token was refused: issued to another party")


def _json(response: httpx.Response, what: str) -> dict:
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise OidcProviderError(f"the provider's {what} is not a JSON object")
    return document


def _oauth_error(response: httpx.Response) -> str:
    """The OAuth error code (RFC 6749 5.2) alone: an error description may say anything."""
    try:
        code = response.json().get("error")
    except (ValueError, AttributeError):
        code = None
    if isinstance(code, str) and code.replace("_", "").isalnum():
        return code[:MAX_ERROR_CODE_LENGTH]
    return f"HTTP {response.status_code}"


def _reason(error: jwt.PyJWTError) -> str:
    reasons = {jwt.ExpiredSignatureError: "expired", jwt.InvalidIssuerError: "another issuer",
               jwt.InvalidAudienceError: "another audience", jwt.InvalidSignatureError: "bad signature",
               jwt.ImmatureSignatureError: "not valid yet", jwt.MissingRequiredClaimError: "a claim is missing",
               jwt.InvalidAlgorithmError: "algorithm not allowed"}
    return next((text for kind, text in reasons.items() if isinstance(error, kind)), "malformed")
