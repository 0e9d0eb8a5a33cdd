"""The system configuration (/api/v2.0/configurations): Harbor's keys with their source, changes
recorded as events, secrets sealed and never answered, operator-pinned keys not editable, and the
authentication mode fixed once other users exist."""

from __future__ import annotations

from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from adapters.passwords import Argon2SecretHasher
from api.app import create_app
from config.bootstrap import bootstrap
from config.layers import ConfigError
from config.settings import Settings
from domain.configuration import KEYS
from tests.support.server import ADMIN_PASSWORD

CONFIGURATIONS = "/api/v2.0/configurations"


def test_every_key_is_answered_with_its_default_and_source(client):
    answer = client.get(CONFIGURATIONS)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == set(KEYS)
    assert body["auth_mode"] == {"value": "db_auth", "editable": True, "source": "default"}
    assert body["ldap_uid"]["value"] == "uid" and body["ldap_scope"]["value"] == 2
    assert body["robot_name_prefix"] == {"value": "robot$", "editable": False, "source": "default"}
    assert body["ldap_search_password"] == {"editable": True, "source": "default", "has_value": False}


def test_a_change_is_an_audited_event_and_secrets_are_never_answered(client, services):
    answer = client.put(CONFIGURATIONS, json={"ldap_url": "ldaps://ldap.example.org", "ldap_timeout": 9,
                                              "ldap_search_password": "s3cret-bind", "ldap_verify_cert": False})
    assert answer.status_code == 200, answer.text
    body = client.get(CONFIGURATIONS).json()
    assert body["ldap_url"] == {"value": "ldaps://ldap.example.org", "editable": True, "source": "api"}
    assert body["ldap_timeout"]["value"] == 9 and body["ldap_verify_cert"]["value"] is False
    assert body["ldap_search_password"]["has_value"] is True and "value" not in body["ldap_search_password"]
    assert "s3cret-bind" not in client.get(CONFIGURATIONS).text
    assert services.configuration().ldap_search_password == "s3cret-bind"  # the adapters get it in clear
    logs = client.get("/api/v2.0/audit-logs", params={"q": "resource_type=configuration"}).json()
    assert logs and logs[0]["username"] == "admin" and logs[0]["operation"] == "update"
    assert logs[0]["operation_description"] == "configuration.changed"
    events = [n for n in services.registry.recorder.select_notifications(start=None, limit=10_000)
              if n.topic.endswith("SystemConfiguration.Changed")]
    assert events and b"s3cret-bind" not in events[-1].state  # sealed in the log too


def test_bad_values_are_refused_with_400_naming_the_key(client):
    for body, key in [({"auth_mode": "magic"}, "auth_mode"), ({"ldap_scope": 7}, "ldap_scope"),
                      ({"ldap_timeout": "soon"}, "ldap_timeout"), ({"no_such_key": 1}, "no_such_key"),
                      ({"robot_name_prefix": "bot-"}, "robot_name_prefix"),
                      ({"ldap_url": "http://ldap.example.org"}, "ldap_url"),
                      ({"oidc_endpoint": "javascript:alert(1)"}, "oidc_endpoint"), ({"self_registration": True},
                                                                               "self_registration")]:
        answer = client.put(CONFIGURATIONS, json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert key in answer.json()["errors"][0]["message"]
    assert client.put(CONFIGURATIONS, json=[1, 2]).status_code == 400
    assert client.get(CONFIGURATIONS).json()["auth_mode"]["value"] == "db_auth"


def test_only_system_administrators_read_or_change_it(client, services):
    client.post("/api/v2.0/users", json={"username": "dev", "password": "Passw0rd1", "email": ""})
    assert client.get(CONFIGURATIONS, auth=("dev", "Passw0rd1")).status_code == 403
    assert client.put(CONFIGURATIONS, json={"ldap_url": "ldap://x"}, auth=("dev", "Passw0rd1")).status_code == 403
    assert client.get(CONFIGURATIONS, auth=None).status_code == 401


def test_the_authentication_mode_changes_only_while_admin_is_the_only_user(client):
    assert client.put(CONFIGURATIONS, json={"auth_mode": "ldap_auth"}).status_code == 200
    assert client.put(CONFIGURATIONS, json={"auth_mode": "db_auth"}).status_code == 200
    client.post("/api/v2.0/users", json={"username": "dev", "password": "Passw0rd1", "email": ""})
    refused = client.put(CONFIGURATIONS, json={"auth_mode": "oidc_auth"})
    assert refused.status_code == 409 and "no user other than admin" in refused.json()["errors"][0]["message"]
    assert client.put(CONFIGURATIONS, json={"oidc_name": "Corp SSO"}).status_code == 200


def test_keys_the_operator_pinned_are_shown_with_their_source_and_not_editable(settings):
    pinned = Settings.from_env({"PORTLOG_LDAP_URL": "ldap://dir.example.org", "PORTLOG_LDAP_TIMEOUT": "7",
                                "PORTLOG_OIDC_CLIENT_SECRET": "oidc-s3cret"})
    settings = replace(settings, configurations=pinned.configurations)
    services = bootstrap(settings, hasher=Argon2SecretHasher(fast=True))
    try:
        with TestClient(create_app(services)) as client:
            client.auth = ("admin", ADMIN_PASSWORD)
            body = client.get(CONFIGURATIONS).json()
            assert body["ldap_url"] == {"value": "ldap://dir.example.org", "editable": False,
                                        "source": "PORTLOG_LDAP_URL"}
            assert body["ldap_timeout"]["value"] == 7
            assert "oidc-s3cret" not in client.get(CONFIGURATIONS).text
            refused = client.put(CONFIGURATIONS, json={"ldap_url": "ldap://other"})
            assert refused.status_code == 400 and "PORTLOG_LDAP_URL" in refused.json()["errors"][0]["message"]
        assert services.configuration().oidc_client_secret == "oidc-s3cret"
    finally:
        services.close()


def test_the_config_file_pins_keys_and_bad_ones_name_their_field(tmp_path):
    path = tmp_path / "portlog.toml"
    path.write_text('[configurations]\nauth_mode = "ldap_auth"\nldap_scope = 1\n')
    settings = Settings.from_env({}, config_file=path)
    assert dict((k, (v, s)) for k, v, s in settings.configurations) == {
        "auth_mode": ("ldap_auth", "config file"), "ldap_scope": (1, "config file")}
    assert Settings.from_env(settings.as_environment()) == settings  # worker processes read the same
    with pytest.raises(ConfigError, match="PORTLOG_LDAP_SCOPE"):
        Settings.from_env({"PORTLOG_LDAP_SCOPE": "9"})
    path.write_text('[configurations]\nldap_urls = "x"\n')
    with pytest.raises(ConfigError, match="ldap_urls"):
        Settings.from_env({}, config_file=path)


def test_the_configuration_rebuilds_from_the_log(client, services):
    client.put(CONFIGURATIONS, json={"oidc_name": "Corp", "project_creation_restriction": "adminonly"})
    before = client.get(CONFIGURATIONS).json()
    services.projections.rebuild()
    assert client.get(CONFIGURATIONS).json() == before


def test_project_creation_restricted_to_administrators(client):
    client.post("/api/v2.0/users", json={"username": "dev", "password": "Passw0rd1", "email": ""})
    client.put(CONFIGURATIONS, json={"project_creation_restriction": "adminonly"})
    refused = client.post("/api/v2.0/projects", json={"project_name": "devs"}, auth=("dev", "Passw0rd1"))
    assert refused.status_code == 403 and "adminonly" in refused.text
    assert client.post("/api/v2.0/projects", json={"project_name": "admins"}).status_code == 201
    client.put(CONFIGURATIONS, json={"project_creation_restriction": "everyone"})
    allowed = client.post("/api/v2.0/projects", json={"project_name": "devs"}, auth=("dev", "Passw0rd1"))
    assert allowed.status_code == 201


def test_what_portlog_fixes_cannot_be_pinned_either(tmp_path):
    path = tmp_path / "portlog.toml"
    path.write_text('[configurations]\nread_only = true\n')
    with pytest.raises(ConfigError, match="read_only"):
        Settings.from_env({}, config_file=path)
    assert Settings.from_env({"PORTLOG_READ_ONLY": "true"}).configurations == ()  # no such variable
