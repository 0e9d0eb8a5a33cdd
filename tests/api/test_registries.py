"""Registry endpoints (issue 8, part 1) through Harbor's API driven by the unmodified harborapi
client: lifecycle, passwords sealed at rest (never in the log or the read models in clear,
never shown), validation, permissions, and "test connection" against real peers."""

from __future__ import annotations

import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from harborapi.models import Registry, RegistryCredential, RegistryUpdate
from sqlalchemy import select

from domain.context import RequestContext
from domain.registries import EndpointSettings
from projections.registries import endpoints
from tests.support.auth import PASSWORD, create_user

pytestmark = [pytest.mark.both_databases, pytest.mark.anyio,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:harborapi")]

SECRET = "Peer-Password-1234"
KEY = "a-test-secret-key-of-at-least-32-characters"



@pytest.fixture
def settings(settings):
    return replace(settings, secret_key=KEY)  # scale-out nodes share a configured key



def peer(name: str = "peer", url: str = "https://peer.example:5000", **fields) -> Registry:
    return Registry(name=name, url=url, type="docker-registry", insecure=True, description="staging",
                    credential=RegistryCredential(type="basic", access_key="robot", access_secret=SECRET), **fields)


async def test_endpoint_lifecycle_with_the_password_sealed(harbor, client, services):
    location = await harbor.create_registry(peer())
    registry_id = int(location.rsplit("/", 1)[1])
    found = await harbor.get_registry(registry_id)
    assert (found.name, found.url, found.type, found.insecure) == ("peer", "https://peer.example:5000",
                                                                    "docker-registry", True)
    assert found.credential.access_key == "robot" and found.credential.access_secret == "*****"
    assert services.endpoints.credentials("peer") == ("robot", SECRET)
    # Neither the log nor the read models hold the password in clear.
    for notification in services.registry.recorder.select_notifications(start=None, limit=10_000):
        assert SECRET.encode() not in notification.state
    with services.db.reader.connect() as conn:
        assert SECRET not in str(conn.execute(select(endpoints)).all())
    events = client.get("/api/v1/events?limit=1000").json()
    created = [e for e in events if e["type"] == "io.portlog.registry.created"]
    assert created and "access_secret" not in created[0]["data"]

    await harbor.update_registry(registry_id, RegistryUpdate(url="https://other.example", description="prod"))
    updated = await harbor.get_registry(registry_id)
    assert (updated.url, updated.description) == ("https://other.example", "prod")
    assert services.endpoints.credentials("peer") == ("robot", SECRET)  # a left-out secret is kept
    await harbor.update_registry(registry_id, RegistryUpdate(access_key="bot", access_secret="New-Secret-9"))
    assert services.endpoints.credentials("peer") == ("bot", "New-Secret-9")
    assert [r.name for r in await harbor.get_registries()] == ["peer"]
    assert await harbor.get_registry_adapters() == ["docker-registry", "harbor", "portlog"]
    assert (await harbor.get_registry_info(registry_id)).type == "docker-registry"
    await harbor.delete_registry(registry_id)
    assert client.get(f"/api/v2.0/registries/{registry_id}").status_code == 404
    await harbor.create_registry(peer())  # the name can be taken again
    assert services.endpoints.credentials("peer") == ("robot", SECRET)


async def test_bad_endpoints_are_refused_and_only_administrators_manage_them(client, services):
    bad = [{"name": "x", "url": "ftp://peer", "type": "docker-registry"},
           {"name": "x", "url": "https://peer/v2/", "type": "docker-registry"},
           {"name": "x", "url": "https://peer", "type": "quay"},
           {"name": "", "url": "https://peer", "type": "harbor"},
           {"name": "x", "url": "https://peer", "type": "harbor", "credential": {"type": "oauth"}}]
    for body in bad:
        response = client.post("/api/v2.0/registries", json=body)
        assert response.status_code in (400, 422), (body, response.text)
    assert client.post("/api/v2.0/registries", json={"name": "x", "url": "https://peer", "type": "harbor"}
                       ).status_code == 201
    assert client.post("/api/v2.0/registries", json={"name": "x", "url": "https://peer2", "type": "harbor"}
                       ).status_code == 409
    create_user(client, "dev")
    assert client.get("/api/v2.0/registries", auth=("dev", PASSWORD)).status_code == 403
    assert client.post("/api/v2.0/registries", auth=("dev", PASSWORD),
                       json={"name": "y", "url": "https://peer", "type": "harbor"}).status_code == 403


def test_a_changed_secret_key_is_a_clear_error_not_garbage(services, settings):
    services.endpoints.add("peer", EndpointSettings("https://peer", "harbor", access_key="u", access_secret=SECRET),
                           RequestContext("admin", "t"))
    from adapters.secret_box import AesGcmSecretBox
    from domain.errors import ConflictError
    services.endpoints.secrets = AesGcmSecretBox("another-key-that-is-at-least-32-characters")
    with pytest.raises(ConflictError, match="secret key changed"):
        services.endpoints.credentials("peer")


async def test_replication_policy_lifecycle(harbor, client, services):
    from harborapi.models import Registry as RegistryRef
    from harborapi.models import ReplicationFilter, ReplicationPolicy, ReplicationTrigger, ReplicationTriggerSettings

    registry_id = int((await harbor.create_registry(peer())).rsplit("/", 1)[1])
    policy = ReplicationPolicy(
        name="to-staging", src_registry=None, dest_registry=RegistryRef(id=registry_id), dest_namespace="staging",
        dest_namespace_replace_count=0, deletion=True, override=False, enabled=True,
        filters=[ReplicationFilter(type="name", value="team/**"),
                 ReplicationFilter(type="tag", value="*-rc*", decoration="excludes")],
        trigger=ReplicationTrigger(type="event_based", trigger_settings=ReplicationTriggerSettings(cron="")))
    policy_id = int((await harbor.create_replication_policy(policy)).rsplit("/", 1)[1])
    found = await harbor.get_replication_policy(policy_id)
    assert found.dest_registry.id == registry_id and found.src_registry is None
    assert (found.dest_namespace, found.dest_namespace_replace_count, found.deletion, found.override) == (
        "staging", 0, True, False)
    assert [(f.type, f.value, f.decoration) for f in found.filters] == [
        ("name", "team/**", "matches"), ("tag", "*-rc*", "excludes")]
    assert found.trigger.type == "event_based"
    settings = services.policies.get("to-staging").current
    assert settings.destination_name("team/a/app") == "staging/app" and not settings.selects_tag("v1-rc1")

    found.trigger = ReplicationTrigger(type="scheduled",
                                       trigger_settings=ReplicationTriggerSettings(cron="0 0 3 * * *"))
    await harbor.update_replication_policy(policy_id, found)
    assert (await harbor.get_replication_policy(policy_id)).trigger.trigger_settings.cron == "0 0 3 * * *"
    assert [p.name for p in await harbor.get_replication_policies()] == ["to-staging"]
    # An endpoint a policy uses cannot go.
    assert client.delete(f"/api/v2.0/registries/{registry_id}").status_code == 409
    await harbor.delete_replication_policy(policy_id)
    assert client.get(f"/api/v2.0/replication/policies/{policy_id}").status_code == 404
    assert client.delete(f"/api/v2.0/registries/{registry_id}").status_code == 200


async def test_bad_replication_policies_are_refused(harbor, client):
    registry_id = int((await harbor.create_registry(peer())).rsplit("/", 1)[1])
    base = {"name": "p", "dest_registry": {"id": registry_id}}
    bad = [{**base, "src_registry": {"id": registry_id}},  # remote to remote
           {"name": "p"},  # local to local
           {**base, "dest_registry": {"id": 999999}},
           {"name": "p", "src_registry": {"id": registry_id}, "filters": [{"type": "label", "value": ["x"]}]},
           {**base, "filters": [{"type": "label", "value": [3]}]},
           {**base, "filters": [{"type": "color", "value": "x"}]},
           {**base, "trigger": {"type": "scheduled", "trigger_settings": {"cron": "61 * * * *"}}},
           {**base, "trigger": {"type": "scheduled"}},
           {"name": "p", "src_registry": {"id": registry_id}, "trigger": {"type": "event_based"}},
           {**base, "dest_namespace": "Not A Namespace"}]
    for body in bad:
        response = client.post("/api/v2.0/replication/policies", json=body)
        assert response.status_code in (400, 422), (body, response.text)
    assert client.get("/api/v2.0/replication/policies").json() == []


def test_test_connection_tells_the_status_never_what_the_peer_sent(client):
    """A "registry" that is some other service: the answer names the status, not its words."""
    secret = "INTERNAL-SECRET-9d41"

    class Leaky(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f'{{"errors":[{{"code":"UNKNOWN","message":"{secret}"}}]}}'.encode()
            self.send_response(500, f"Broken {secret}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Leaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        response = client.post("/api/v2.0/registries/ping", json={"url": url, "type": "docker-registry"})
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 400 and "500 UNKNOWN" in response.text and secret not in response.text
