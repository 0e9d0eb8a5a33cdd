"""A private glewlwyd OpenID Connect provider for the tests (infra/services/glewlwyd.py), one per
pytest-xdist worker, and the code flow driven through its API instead of a browser.

    from tests.support.glewlwyd import oidc_provider  # noqa: F401  (the fixture)

    def test_x(oidc_provider):
        oidc_provider.set_redirect_uris([callback])
        oidc_provider.add_user(username, "Pass-word-1", groups=["devs"])
"""

from __future__ import annotations

import secrets
from contextlib import closing
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from infra.services import glewlwyd
from infra.services.glewlwyd import GlewlwydServer


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory) -> GlewlwydServer:
    with glewlwyd.running(tmp_path_factory.mktemp("glewlwyd")) as server:
        yield server


def new_username(prefix: str = "oidc") -> str:
    """The provider lives for the whole session: every test takes users of its own."""
    return f"{prefix}{secrets.token_hex(4)}"


def authorize(provider: GlewlwydServer, username: str, password: str, authorization_url: str,
              scope: str = "openid") -> str:
    """What a browser does on the provider's pages: logs in, consents to `scope` for the client,
    and follows the authorization URL; returns where the provider redirects (the callback URL with
    `code` and `state`), without going there."""
    with closing(provider.login_session(username, password)) as session:
        session.put(f"/auth/grant/{provider.client_id}", json={"scope": scope}).raise_for_status()
        # g_continue: the user has just logged in and consented, so no page is shown.
        response = session.get(f"{authorization_url}&g_continue")
    if response.status_code != 302:
        raise AssertionError(f"the provider answered {response.status_code}: {response.text[:300]}")
    return response.headers["location"]


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def exchange(provider: GlewlwydServer, token_endpoint: str, code: str, redirect_uri: str,
             verifier: str) -> httpx.Response:
    """The token request a client makes, its answer unchecked."""
    return httpx.post(token_endpoint, auth=(provider.client_id, provider.client_secret), trust_env=False,
                      data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                            "code_verifier": verifier})
