"""The OpenID Connect login (/c/oidc/login, /c/oidc/callback, /c/oidc/onboard) against a real
glewlwyd, the browser's part played through glewlwyd's API: onboarding, groups, admin group, the
UI session; the callback is single use, its state must be this browser's, and a code stolen from
another browser's login is refused by the provider (PKCE). CLI secrets: shown to their owner,
accepted as the password, rotated."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.oidc import CALLBACK_PATH, ONBOARD_COOKIE, STATE_COOKIE
from api.sessions import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from tests.support.glewlwyd import authorize, new_username, oidc_provider, query_of  # noqa: F401

PASSWORD = "Oidc-pass-1"
CALLBACK = f"http://testserver{CALLBACK_PATH}"
ADMIN_GROUP = "portlog-admins"


def configure(client, provider, **overrides) -> None:
    provider.set_redirect_uris([CALLBACK])
    body = {"auth_mode": "oidc_auth", "oidc_name": "Glewlwyd", "oidc_endpoint": provider.issuer,
            "oidc_client_id": provider.client_id, "oidc_client_secret": provider.client_secret,
            "oidc_scope": "openid,profile,email", "oidc_groups_claim": "groups",
            "oidc_user_claim": "preferred_username", "oidc_admin_group": ADMIN_GROUP,
            "oidc_auto_onboard": True, "oidc_verify_cert": True, **overrides}
    response = client.put("/api/v2.0/configurations", json=body)
    assert response.status_code == 200, response.text


@pytest.fixture
def oidc(client, oidc_provider):  # noqa: F811
    configure(client, oidc_provider)
    return oidc_provider


@pytest.fixture
def browser(services):
    """Another client of the same app, without credentials: a browser's cookies."""
    with TestClient(create_app(services), follow_redirects=False) as anonymous:
        yield anonymous


def start(browser) -> str:
    """GET /c/oidc/login: the provider's authorization URL it redirects to."""
    response = browser.get("/c/oidc/login")
    assert response.status_code == 302, response.text
    return response.headers["location"]


def new_user(oidc, groups=("devs",)) -> str:
    username = new_username()
    oidc.add_user(username, PASSWORD, groups=groups)
    return username


def provider_redirect(oidc, browser, username: str) -> str:
    """The provider's redirect to the callback, after `username` logged in there."""
    return authorize(oidc, username, PASSWORD, start(browser), scope="openid profile email")


def callback(browser, redirect: str):
    parts = urlsplit(redirect)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == CALLBACK
    return browser.get(f"{parts.path}?{parts.query}")


def sign_in(oidc, browser, username: str):
    response = callback(browser, provider_redirect(oidc, browser, username))
    assert response.status_code == 302, response.text
    return response


def test_login_redirects_to_the_provider_with_a_lax_single_flow_cookie(oidc, browser):
    response = browser.get("/c/oidc/login")
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert response.headers["location"].startswith(f"{oidc.issuer}/auth?")
    assert query["redirect_uri"] == CALLBACK and query["code_challenge_method"] == "S256"
    assert query["scope"] == "openid profile email"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{STATE_COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/c/oidc" in cookie
    again = query_of(browser.get("/c/oidc/login").headers["location"])
    assert again["state"] != query["state"] and again["code_challenge"] != query["code_challenge"]


def test_first_login_onboards_with_groups_and_a_session(oidc, browser, client, services):
    username = new_user(oidc, groups=("devs", "qa"))
    response = sign_in(oidc, browser, username)
    assert response.headers["location"] == "/ui/projects"
    assert SESSION_COOKIE in browser.cookies and CSRF_COOKIE in browser.cookies
    session = browser.get("/c/session").json()
    assert session["username"] == username and session["sysadmin_flag"] is False
    me = browser.get("/api/v2.0/users/current").json()
    assert me["username"] == username and me["email"] == f"{username}@example.org"
    assert len(me["oidc_user_meta"]["secret"]) >= 16
    assert me["oidc_user_meta"]["subiss"].startswith(f"{oidc.issuer}|")
    assert services.access.user_groups(username) == ["devs", "qa"]
    assert services.access.user(username).auth_source == "oidc"
    users = client.get("/api/v2.0/users", params={"q": f"username={username}"}).json()
    assert [u["username"] for u in users] == [username]
    assert "oidc_user_meta" not in users[0]  # the secret is shown to its owner only


def test_second_login_finds_the_same_user_and_admin_group_makes_an_admin(oidc, browser, services):
    username = new_user(oidc)
    sign_in(oidc, browser, username)
    first = services.access.user(username)
    browser.cookies.clear()
    oidc.set_groups(username, ["devs", ADMIN_GROUP])
    sign_in(oidc, browser, username)
    assert services.access.user(username).id == first.id
    me = browser.get("/api/v2.0/users/current").json()
    assert me["admin_role_in_auth"] is True and me["sysadmin_flag"] is False
    assert browser.get("/api/v2.0/users").status_code == 200  # system administrators only
    oidc.set_groups(username, ["devs"])
    browser.cookies.clear()
    sign_in(oidc, browser, username)
    assert browser.get("/api/v2.0/users").status_code == 403
    assert browser.get("/api/v2.0/users/current").json()["admin_role_in_auth"] is False


def test_the_callback_cannot_be_replayed(oidc, browser):
    redirect = provider_redirect(oidc, browser, new_user(oidc))
    state_cookie = browser.cookies[STATE_COOKIE]
    assert callback(browser, redirect).status_code == 302
    browser.cookies.clear()
    browser.cookies.set(STATE_COOKIE, state_cookie, path="/c/oidc")  # as copied before the first use
    replayed = callback(browser, redirect)
    assert replayed.status_code == 400
    assert "expired or was used" in replayed.json()["detail"]
    assert SESSION_COOKIE not in replayed.cookies


def test_a_callback_without_the_flow_cookie_is_refused(oidc, browser):
    redirect = provider_redirect(oidc, browser, new_user(oidc))
    browser.cookies.clear()
    assert callback(browser, redirect).status_code == 400


def test_state_mismatch_is_refused_and_consumes_the_login(oidc, browser, services):
    username = new_user(oidc)
    redirect = provider_redirect(oidc, browser, username)
    parts = urlsplit(redirect)
    tampered = browser.get(f"{parts.path}?code={query_of(redirect)['code']}&state=another-state")
    assert tampered.status_code == 400 and "state" in tampered.json()["detail"]
    assert services.access.user(username) is None
    assert callback(browser, redirect).status_code == 400  # the flow cookie was used up


def test_a_code_stolen_from_another_login_fails_pkce(oidc, browser, services):
    """The attacker starts a login of their own (their state, their verifier) and delivers the
    victim's code to their callback: the state matches theirs, the provider refuses the code."""
    victim = new_user(oidc)
    stolen = query_of(provider_redirect(oidc, browser, victim))
    with TestClient(create_app(services), follow_redirects=False) as attacker:
        their_state = query_of(start(attacker))["state"]
        response = attacker.get(f"{CALLBACK_PATH}?code={stolen['code']}&state={their_state}")
    assert response.status_code == 401
    assert "invalid_code" in response.json()["detail"]
    assert services.access.user(victim) is None


def test_provider_error_in_callback(oidc, browser):
    state = query_of(start(browser))["state"]
    response = browser.get(f"{CALLBACK_PATH}?error=access_denied&state={state}")
    assert response.status_code == 401 and "access_denied" in response.json()["detail"]


def test_login_is_not_found_without_oidc_auth(client, browser):
    assert browser.get("/c/oidc/login").status_code == 404


def test_provider_unreachable_is_503_not_500(client, oidc_provider, browser):  # noqa: F811
    configure(client, oidc_provider, oidc_endpoint="http://127.0.0.1:9/api/oidc")
    response = browser.get("/c/oidc/login")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "could not be reached" in response.json()["detail"]
    assert STATE_COOKIE not in response.cookies


def test_onboarding_with_a_chosen_username_once(client, oidc_provider, browser, services):  # noqa: F811
    configure(client, oidc_provider, oidc_auto_onboard=False)
    username = new_user(oidc_provider)
    response = callback(browser, provider_redirect(oidc_provider, browser, username))
    assert response.status_code == 302
    assert response.headers["location"] == f"/ui/oidc-onboard?username={username}"
    assert SESSION_COOKIE not in browser.cookies and ONBOARD_COOKIE in browser.cookies
    onboard_cookie = browser.cookies[ONBOARD_COOKIE]
    assert browser.post("/c/oidc/onboard", json={"username": "bad name!"}).status_code == 422
    assert browser.post("/c/oidc/onboard", json={"username": "admin"}).status_code == 409
    chosen = f"{username}-chosen"
    done = browser.post("/c/oidc/onboard", json={"username": chosen})
    assert done.status_code == 200, done.text
    assert browser.get("/c/session").json()["username"] == chosen
    assert services.access.user(chosen) is not None and services.access.user(username) is None
    browser.cookies.set(ONBOARD_COOKIE, onboard_cookie, path="/c/oidc")
    replayed = browser.post("/c/oidc/onboard", json={"username": f"{chosen}2"})
    assert replayed.status_code == 400
    assert services.access.user(f"{chosen}2") is None


def test_onboarding_without_the_step_cookie_is_refused(client, browser):
    assert browser.post("/c/oidc/onboard", json={"username": "someone"}).status_code == 400
    assert browser.post("/c/oidc/onboard", content=b"not json").status_code == 400


def test_cli_secret_is_the_password_and_can_be_rotated(oidc, browser, client):
    username = new_user(oidc)
    sign_in(oidc, browser, username)
    me = browser.get("/api/v2.0/users/current").json()
    secret = me["oidc_user_meta"]["secret"]
    assert client.get("/api/v2.0/users/current", auth=(username, secret)).json()["username"] == username
    assert client.get("/api/v2.0/users/current", auth=(username, PASSWORD)).status_code == 401
    token = client.get("/service/token", params={"service": "portlog", "scope": "repository:team/x:pull"},
                       auth=(username, secret))
    assert token.status_code == 200
    csrf = {CSRF_HEADER: browser.cookies[CSRF_COOKIE]}
    weak = browser.put(f"/api/v2.0/users/{me['user_id']}/cli_secret", json={"secret": "weak"}, headers=csrf)
    assert weak.status_code == 400
    rotated = "Rotated-Secret-42"
    done = browser.put(f"/api/v2.0/users/{me['user_id']}/cli_secret", json={"secret": rotated}, headers=csrf)
    assert done.status_code == 200, done.text
    assert client.get("/api/v2.0/users/current", auth=(username, secret)).status_code == 401
    assert client.get("/api/v2.0/users/current", auth=(username, rotated)).status_code == 200
    assert browser.get("/api/v2.0/users/current").json()["oidc_user_meta"]["secret"] == rotated


def test_cli_secret_of_another_user_only_by_an_admin(oidc, browser, client, services):
    first, second = new_user(oidc), new_user(oidc)
    sign_in(oidc, browser, first)
    browser.cookies.clear()
    sign_in(oidc, browser, second)
    first_id = services.access.user(first).id
    csrf = {CSRF_HEADER: browser.cookies[CSRF_COOKIE]}
    refused = browser.put(f"/api/v2.0/users/{first_id}/cli_secret", json={"secret": "Other-Secret-1"},
                          headers=csrf)
    assert refused.status_code == 403
    assert client.put(f"/api/v2.0/users/{first_id}/cli_secret", json={"secret": "Other-Secret-1"}).status_code == 200
    assert client.put("/api/v2.0/users/1/cli_secret", json={"secret": "Other-Secret-1"}).status_code == 400
