"""The OpenID Connect adapter (adapters/oidc_provider.py) against a real glewlwyd: discovery, the
code flow with PKCE driven through the provider's API, its ID token accepted; tokens signed with
the provider's own key (the test made it) but with another issuer, audience, nonce or an expiry
in the past refused, as are `alg: none` and a token signed by a key the provider does not publish;
a wrong PKCE verifier is refused by the provider itself."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.oidc_provider import OidcConfig, OidcProvider, OidcProviderError, OidcProviderUnavailable
from adapters.outbound import OutboundGuard
from infra.services.glewlwyd import SIGNING_KID
from tests.support.glewlwyd import authorize, new_username, oidc_provider, query_of  # noqa: F401

CALLBACK = "http://127.0.0.1:9/c/oidc/callback"  # never visited: the provider's redirect is read
PASSWORD = "Oidc-pass-1"
GUARD = OutboundGuard(allow=["127.0.0.1/32"])


@pytest.fixture
def provider(oidc_provider):  # noqa: F811
    oidc_provider.set_redirect_uris([CALLBACK])
    adapter = OidcProvider(OidcConfig(oidc_provider.issuer, oidc_provider.client_id, oidc_provider.client_secret,
                                      scope=("openid",)), GUARD)
    yield adapter
    adapter.close()


def code_flow(glewlwyd, adapter: OidcProvider, groups=("devs",)):
    """A user of their own logs in and consents; returns (authorization request, callback query)."""
    username = new_username()
    glewlwyd.add_user(username, PASSWORD, groups=groups)
    request = adapter.authorization_request(CALLBACK)
    return username, request, query_of(authorize(glewlwyd, username, PASSWORD, request.url))


def forged(glewlwyd, key=None, headers=None, **overrides) -> str:
    """An ID token as glewlwyd would issue it for the test's client, signed with its own key
    unless another is given, with `overrides` in its claims."""
    now = int(time.time())
    claims = {"iss": glewlwyd.issuer, "aud": glewlwyd.client_id, "sub": "s1", "iat": now, "exp": now + 300,
              "nonce": "n1", **overrides}
    return jwt.encode(claims, key or glewlwyd.signing_key, algorithm="RS256",
                      headers={"kid": SIGNING_KID, **(headers or {})})


def test_discovery_names_the_provider_endpoints(provider, oidc_provider):  # noqa: F811
    found = provider.discovery()
    assert found.issuer == oidc_provider.issuer
    assert found.authorization_endpoint == f"{oidc_provider.issuer}/auth"
    assert found.token_endpoint == f"{oidc_provider.issuer}/token"
    assert found.jwks_uri == f"{oidc_provider.issuer}/jwks"


def test_authorization_url_carries_state_nonce_and_s256_challenge(provider, oidc_provider):  # noqa: F811
    request = provider.authorization_request(CALLBACK)
    query = query_of(request.url)
    assert request.url.startswith(f"{oidc_provider.issuer}/auth?")
    assert query["state"] == request.state and query["nonce"] == request.nonce
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] != request.verifier and len(request.verifier) >= 43
    assert query["client_id"] == oidc_provider.client_id and query["redirect_uri"] == CALLBACK
    assert query["scope"] == "openid"
    other = provider.authorization_request(CALLBACK)
    assert {other.state, other.nonce, other.verifier}.isdisjoint({request.state, request.nonce, request.verifier})


def test_code_flow_gives_checked_claims_with_groups(provider, oidc_provider):  # noqa: F811
    username, request, callback = code_flow(oidc_provider, provider, groups=("devs", "admins"))
    assert callback["state"] == request.state
    claims = provider.complete(callback["code"], CALLBACK, request)
    assert claims["iss"] == oidc_provider.issuer and claims["aud"] == oidc_provider.client_id
    assert claims["preferred_username"] == username
    assert claims["groups"] == ["devs", "admins"]
    assert claims["nonce"] == request.nonce and claims["sub"]


def test_a_code_is_good_once(provider, oidc_provider):  # noqa: F811
    _, request, callback = code_flow(oidc_provider, provider)
    provider.complete(callback["code"], CALLBACK, request)
    with pytest.raises(OidcProviderError, match="refused the code"):
        provider.complete(callback["code"], CALLBACK, request)


def test_wrong_pkce_verifier_is_refused_by_the_provider(provider, oidc_provider):  # noqa: F811
    _, request, callback = code_flow(oidc_provider, provider)
    with pytest.raises(OidcProviderError, match="refused the code: invalid_code"):
        provider.exchange(callback["code"], CALLBACK, "x" * 64)


def test_real_id_token_with_another_nonce_is_refused(provider, oidc_provider):  # noqa: F811
    _, request, callback = code_flow(oidc_provider, provider)
    tokens = provider.exchange(callback["code"], CALLBACK, request.verifier)
    assert provider.id_token_claims(tokens["id_token"], request.nonce)["nonce"] == request.nonce
    with pytest.raises(OidcProviderError, match="nonce"):
        provider.id_token_claims(tokens["id_token"], "another-login's-nonce")


def test_forged_token_with_the_provider_key_passes(provider, oidc_provider):  # noqa: F811
    """The control for the refusals below: only the one thing each changes refuses it."""
    assert provider.id_token_claims(forged(oidc_provider), "n1")["sub"] == "s1"


@pytest.mark.parametrize("overrides, reason", [
    ({"iss": "http://127.0.0.1:1/api/oidc"}, "another issuer"),
    ({"aud": "another-client"}, "another audience"),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
    ({"nonce": "n2"}, "nonce"),
    ({"aud": ["another-client", "portlog"], "azp": "another-client"}, "another party"),
])
def test_id_token_claims_refused(provider, oidc_provider, overrides, reason):  # noqa: F811
    with pytest.raises(OidcProviderError, match=reason):
        provider.id_token_claims(forged(oidc_provider, **overrides), "n1")


def test_alg_none_is_refused(provider, oidc_provider):  # noqa: F811
    now = int(time.time())
    claims = {"iss": oidc_provider.issuer, "aud": oidc_provider.client_id, "sub": "s1", "iat": now,
              "exp": now + 300, "nonce": "n1"}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": SIGNING_KID})
    with pytest.raises(OidcProviderError, match="algorithm 'none'"):
        provider.id_token_claims(unsigned, "n1")


def test_shared_secret_algorithm_is_refused(provider, oidc_provider):  # noqa: F811
    """Only the algorithms of the published keys: never HS256, whatever its secret."""
    now = int(time.time())
    claims = {"iss": oidc_provider.issuer, "aud": oidc_provider.client_id, "sub": "s1", "iat": now,
              "exp": now + 300, "nonce": "n1"}
    token = jwt.encode(claims, oidc_provider.client_secret.encode() * 2, algorithm="HS256",
                       headers={"kid": SIGNING_KID})
    with pytest.raises(OidcProviderError, match="algorithm 'HS256'"):
        provider.id_token_claims(token, "n1")


def test_token_signed_by_another_key_is_refused(provider, oidc_provider):  # noqa: F811
    other = rsa.generate_private_key(65537, 2048)
    with pytest.raises(OidcProviderError, match="bad signature"):
        provider.id_token_claims(forged(oidc_provider, key=other), "n1")
    with pytest.raises(OidcProviderError, match="does not publish"):
        provider.id_token_claims(forged(oidc_provider, key=other, headers={"kid": "other-kid"}), "n1")


def test_garbage_token_is_refused(provider):
    with pytest.raises(OidcProviderError, match="malformed"):
        provider.id_token_claims("not.a.token", "n1")


def test_provider_on_loopback_refused_by_default_guard(oidc_provider):  # noqa: F811
    adapter = OidcProvider(OidcConfig(oidc_provider.issuer, "c", "s"), OutboundGuard())
    with pytest.raises(OidcProviderUnavailable, match="loopback"):
        adapter.discovery()


def test_issuer_other_than_the_endpoint_is_refused(oidc_provider):  # noqa: F811
    """Discovery fetched from a URL the provider does not call its issuer (`localhost` for its
    127.0.0.1) is refused; a trailing slash is the same issuer."""
    adapter = OidcProvider(OidcConfig(oidc_provider.issuer + "/", "c", "s"), GUARD)
    assert adapter.discovery().issuer == oidc_provider.issuer
    loopback = OutboundGuard(allow=["127.0.0.0/8", "::1/128"])
    elsewhere = OidcProvider(OidcConfig(oidc_provider.issuer.replace("127.0.0.1", "localhost"), "c", "s"), loopback)
    with pytest.raises(OidcProviderError, match="issuer"):
        elsewhere.discovery()


def test_unreachable_provider(oidc_provider):  # noqa: F811
    adapter = OidcProvider(OidcConfig("http://127.0.0.1:9/api/oidc", "c", "s"), GUARD)
    with pytest.raises(OidcProviderUnavailable, match="could not be reached"):
        adapter.discovery()


def test_scopes_from_harbor_setting():
    assert OidcConfig.scopes("openid,profile,email") == ("openid", "profile", "email")
    assert OidcConfig.scopes("profile, email ,offline_access") == ("openid", "profile", "email", "offline_access")
    assert OidcConfig.scopes("") == ("openid",)
