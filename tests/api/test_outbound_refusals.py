"""Server-side request forgery (issue 16, item 4), with the default outbound policy (nothing
allowed beyond it): webhook targets and registry endpoints at loopback in every spelling, at the
cloud metadata address and at Portlog's own listen address are refused when configured (400
naming the setting) and, when recorded before the guard existed, when connecting — and in no
case does anything connect to the listener standing at that address."""

from __future__ import annotations

import socket
import time
from dataclasses import replace

import pytest

from adapters.outbound import OwnService
from config.bootstrap import outbound_guard_for
from config.settings import Settings
from domain.context import RequestContext
from domain.registries import EndpointSettings
from domain.webhooks import PolicySettings, Target, Webhooks
from tests.support.oci import push_image
from tests.support.outbound import Trap, loopback_name
from tests.support.server import free_port
from tests.support.waiting import wait_until

SETTING = "security.outbound_allow"
ADMIN = RequestContext("admin", "test")
LOOPBACK_NAME = loopback_name()
ADDRESSES = [  # {port} is the trap's
    "http://127.0.0.1:{port}", "http://0x7f000001:{port}", "http://2130706433:{port}", "http://0177.0.0.1:{port}",
    "http://localhost:{port}", "http://[::1]:{port}", "http://[::ffff:127.0.0.1]:{port}",
    "http://169.254.169.254", "http://0.0.0.0:{port}",
    pytest.param(f"http://{LOOPBACK_NAME}:{{port}}", id="a-name-resolving-to-loopback",
                 marks=pytest.mark.skipif(LOOPBACK_NAME is None, reason="no other name resolves to loopback")),
]


@pytest.fixture
def settings(settings):
    return replace(settings, outbound_allow=())  # the default: the suite's allowance of loopback taken back


@pytest.fixture
def trap():
    listener = Trap()
    yield listener
    listener.close()


def refusal(response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    return body["errors"][0]["message"] if "errors" in body else body["detail"]


@pytest.mark.parametrize("address", ADDRESSES)
def test_webhook_targets_at_refused_addresses_are_refused_and_never_contacted(client, trap, address):
    url = address.format(port=trap.port) + "/hook"
    v1 = client.post("/api/v1/webhooks", json={"name": "w", "url": url, "event_types": ["PUSH_ARTIFACT"]})
    assert SETTING in refusal(v1) and v1.json()["type"].endswith("/outbound-refused")
    harbor = client.post("/api/v2.0/projects/team/webhook/policies", json={
        "name": "w", "event_types": ["PUSH_ARTIFACT"], "targets": [{"type": "http", "address": url}]})
    assert SETTING in refusal(harbor)
    allowed = client.post("/api/v1/webhooks", json={"name": "ok", "url": "http://192.0.2.10/hook",
                                                    "event_types": ["PUSH_ARTIFACT"]})
    assert allowed.status_code == 201, allowed.text  # private and documentation ranges are allowed
    assert client.put(f"/api/v1/webhooks/{allowed.json()['id']}", json={"url": url}).status_code == 400
    assert trap.connections() == 0


@pytest.mark.parametrize("address", ADDRESSES)
def test_registry_endpoints_at_refused_addresses_are_refused_and_never_contacted(client, trap, address):
    url = address.format(port=trap.port)
    form = {"name": "peer", "url": url, "type": "docker-registry"}
    assert SETTING in refusal(client.post("/api/v2.0/registries", json=form))
    assert SETTING in refusal(client.post("/api/v2.0/registries/ping", json=form))
    created = client.post("/api/v2.0/registries", json=form | {"url": "http://192.0.2.10:5000"})
    assert created.status_code == 201, created.text
    registry_id = created.headers["Location"].rsplit("/", 1)[1]
    assert SETTING in refusal(client.put(f"/api/v2.0/registries/{registry_id}", json={"url": url}))
    assert SETTING in refusal(client.post("/api/v2.0/registries/ping", json={"id": int(registry_id), "url": url}))
    assert trap.connections() == 0


def test_a_webhook_recorded_before_the_guard_is_refused_when_sent(client, services, trap):
    url = f"http://127.0.0.1:{trap.port}/hook"
    _, position = Webhooks(services.registry).create_policy(
        "team", PolicySettings("legacy", ["PUSH_ARTIFACT"], [Target(url)]), ADMIN)
    services.projections.wait_for(position)
    policy = services.webhooks.policies("team")[0].id
    push_image(client, "team/app", "1.0")
    delivery = wait_until(lambda: next((d for d in client.get(f"/api/v1/webhooks/{policy}/deliveries").json()
                                        if d["attempts"] >= 1 and d["last_error"]), None), 20)
    assert SETTING in delivery["last_error"] and delivery["status_code"] is None
    assert trap.connections() == 0


def test_an_endpoint_recorded_before_the_guard_is_refused_when_replicating_and_proxying(client, services, trap):
    services.projections.wait_for(services.endpoints.add(
        "legacy", EndpointSettings(f"http://localhost:{trap.port}", "docker-registry"), ADMIN))
    registry_id = services.registries.by_name("legacy").id
    push_image(client, "team/app", "1.0")
    created = client.post("/api/v2.0/replication/policies", json={"name": "out", "dest_registry": {"id": registry_id}})
    assert created.status_code == 201, created.text
    started = client.post("/api/v2.0/replication/executions",
                          json={"policy_id": int(created.headers["Location"].rsplit("/", 1)[1])})
    execution = started.headers["Location"].rsplit("/", 1)[1]
    done = wait_until(lambda: (e := client.get(f"/api/v2.0/replication/executions/{execution}").json())
                      ["status"] != "InProgress" and e, 30)
    assert done["status"] == "Failed", done
    [task] = client.get(f"/api/v2.0/replication/executions/{execution}/tasks").json()
    assert SETTING in task["error"]

    assert client.post("/api/v2.0/projects", json={"project_name": "hub", "registry_id": registry_id,
                                                   "metadata": {"public": "true"}}).status_code == 201
    pulled = client.get("/v2/hub/library/app/manifests/1.0")
    assert pulled.status_code >= 400 and SETTING not in pulled.text  # pullers are not told the policy
    assert trap.connections() == 0


def test_portlogs_own_listen_address_is_refused(client, services):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    port = free_port()
    services.settings = replace(services.settings, host="0.0.0.0", port=port)
    services.outbound = outbound_guard_for(services.settings)
    body = {"name": "self", "url": f"http://{address}:{port}/api/v1/users", "event_types": ["PUSH_ARTIFACT"]}
    assert "own listen address" in refusal(client.post("/api/v1/webhooks", json=body))
    other_port = client.post("/api/v1/webhooks", json=body | {"url": f"http://{address}:{port + 1}/"})
    assert other_port.status_code == 201, other_port.text


def test_deny_wins_over_allow_and_allow_over_the_defaults(client, services, trap):
    services.settings = replace(services.settings, outbound_allow=("127.0.0.0/8",), outbound_deny=("127.0.0.1/32",))
    services.outbound = outbound_guard_for(services.settings)
    body = {"name": "w", "event_types": ["PUSH_ARTIFACT"]}
    denied = client.post("/api/v1/webhooks", json=body | {"url": f"http://127.0.0.1:{trap.port}/"})
    assert "security.outbound_deny" in refusal(denied)
    allowed = client.post("/api/v1/webhooks", json=body | {"url": f"http://127.0.0.2:{trap.port}/"})
    assert allowed.status_code == 201, allowed.text
    time.sleep(0.1)
    assert trap.connections() == 0


def _non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (the one a route out leaves from)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_the_nats_server_portlog_uses_is_refused(client, services):
    """A webhook or endpoint at Portlog's own NATS server (a private address, allowed otherwise)
    is refused, naming it and the setting."""
    nats = "nats://192.0.2.42:4222,nats://192.0.2.43"
    services.settings = replace(services.settings, events=replace(services.settings.events, nats_url=nats))
    services.outbound = outbound_guard_for(services.settings)
    body = {"name": "w", "event_types": ["PUSH_ARTIFACT"]}
    for url in ("http://192.0.2.42:4222/", "http://192.0.2.43:4222/hook"):
        message = refusal(client.post("/api/v1/webhooks", json=body | {"url": url}))
        assert "Portlog's NATS server" in message and SETTING in message
    harbor = client.post("/api/v2.0/projects/team/webhook/policies", json=body | {
        "targets": [{"type": "http", "address": "http://192.0.2.42:4222"}]})
    assert "Portlog's NATS server" in refusal(harbor)
    endpoint = {"name": "peer", "url": "http://192.0.2.42:4222", "type": "docker-registry"}
    assert "Portlog's NATS server" in refusal(client.post("/api/v2.0/registries", json=endpoint))
    other_port = client.post("/api/v1/webhooks", json=body | {"url": "http://192.0.2.42:4223/"})
    assert other_port.status_code == 201, other_port.text


def test_the_infrastructure_refused_is_the_one_portlog_is_configured_with():
    settings = Settings.from_env({
        "PORTLOG_HOST": "0.0.0.0", "PORTLOG_PORT": "5005",
        "PORTLOG_DATABASE_URL": "postgresql://portlog:pw@db.internal:6432/portlog",
        "PORTLOG_READ_MODELS_URL": "postgresql://portlog:pw@10.0.0.9/reads",
        "PORTLOG_STORAGE_URL": "s3://key:secret@[fd00::5]:9000/blobs",
        "PORTLOG_NATS_URL": "nats://10.0.0.8:4222,tls://user:pw@nats2.internal"})
    assert outbound_guard_for(settings).own == (
        OwnService("0.0.0.0", 5005, "Portlog's own listen address"),
        OwnService("db.internal", 6432, "Portlog's database"),
        OwnService("10.0.0.9", 5432, "Portlog's database"),
        OwnService("fd00::5", 9000, "Portlog's S3 endpoint"),
        OwnService("10.0.0.8", 4222, "Portlog's NATS server"),
        OwnService("nats2.internal", 4222, "Portlog's NATS server"))
    embedded = outbound_guard_for(Settings.from_env({"PORTLOG_STORAGE_URL": "s3://key:secret@minio.internal/blobs"}))
    assert embedded.own == (OwnService("127.0.0.1", 5000, "Portlog's own listen address"),
                            OwnService("minio.internal", 443, "Portlog's S3 endpoint"))
