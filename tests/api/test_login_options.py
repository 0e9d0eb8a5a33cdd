"""`GET /c/login/options`: what the anonymous login page may know of the configuration — the
authentication mode and the OpenID Connect provider's name — and nothing else."""

from __future__ import annotations

OPTIONS = "/c/login/options"


def test_an_anonymous_visitor_learns_the_mode_and_nothing_else(client):
    answer = client.get(OPTIONS, auth=None)
    assert answer.status_code == 200
    assert answer.json() == {"auth_mode": "db_auth", "oidc_name": ""}
    assert answer.headers["cache-control"] == "no-store"


def test_in_oidc_mode_it_names_the_provider_and_keeps_the_rest_to_itself(client):
    changed = client.put("/api/v2.0/configurations", json={
        "auth_mode": "oidc_auth", "oidc_name": "Corp SSO", "oidc_endpoint": "https://sso.example.org",
        "oidc_client_id": "portlog-client", "oidc_client_secret": "oidc-s3cret-value"})
    assert changed.status_code == 200, changed.text
    answer = client.get(OPTIONS, auth=None)
    assert answer.json() == {"auth_mode": "oidc_auth", "oidc_name": "Corp SSO"}
    for secret_or_detail in ("oidc-s3cret-value", "sso.example.org", "portlog-client"):
        assert secret_or_detail not in answer.text


def test_the_provider_name_is_not_told_outside_oidc_mode(client):
    assert client.put("/api/v2.0/configurations", json={"oidc_name": "Corp SSO"}).status_code == 200
    assert client.get(OPTIONS, auth=None).json() == {"auth_mode": "db_auth", "oidc_name": ""}
