"""Webhooks: policies through Harbor's API v2.0 and /api/v1, deliveries to a real HTTP receiver
started by the test (retries, giving up, redelivery, two dispatchers), pushes that keep their
speed while the receiver hangs, and REPLICATION at the end of executions against a real peer.
Retry delays are shortened through the dispatcher's parameters, not slept through."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from harborapi.models import Execution, SupportedWebhookEventTypes, Task, WebhookPolicy
from sqlalchemy import select
from starlette.testclient import TestClient

from api.app import create_app
from background import webhook_dispatcher
from background.pulls import flush_pulls
from background.webhook_dispatcher import WebhookDispatcher
from domain.context import RequestContext
from domain.replication_runs import ReplicationTask
from projections import webhooks as webhooks_model
from tests.support.auth import PASSWORD, create_user, grant
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest, push_image
from tests.support.server import ADMIN_PASSWORD
from tests.support.waiting import wait_until as wait_long

pytestmark = pytest.mark.both_databases


def wait_until(predicate, timeout: float = 10.0):
    return wait_long(predicate, timeout, interval=0.02)


SECRET = "Bearer hook-s3cret"
HARBOR = "/api/v2.0/projects/team/webhook"


@pytest.fixture(autouse=True)
def quick_dispatcher(monkeypatch):
    monkeypatch.setattr(webhook_dispatcher, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(webhook_dispatcher, "FIRST_RETRY_SECONDS", 0.05)
    monkeypatch.setattr(webhook_dispatcher, "MAX_RETRY_SECONDS", 0.2)


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers as scripted: the
    given statuses in turn, then 200; or, once told to hang, never."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, dict]] = []
        self.statuses: list[int] = []
        self.hanging = False
        self.delay = 0.0
        self.body = b"answer\n"
        self.released = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def answer(self, *statuses: int) -> None:
        self.statuses = list(statuses)

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, event_type: str | None = None) -> list[dict]:
        return [body for headers, body in list(self.requests)
                if event_type is None or headers.get("X-Portlog-Event-Type") == event_type]

    def _next(self, headers: dict, body: dict) -> int:
        with self._lock:
            self.requests.append((headers, body))
            return self.statuses.pop(0) if self.statuses else 200

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver._next(dict(self.headers), body)
                if receiver.hanging:
                    receiver.released.wait(30)
                    return
                time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args) -> None:
                pass

        return Handler


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()



def harbor_policy(receiver: Receiver, name: str = "ci", **overrides) -> dict:
    return {"name": name, "enabled": True, "event_types": ["PUSH_ARTIFACT"],
            "targets": [{"type": "http", "address": receiver.url, "auth_header": SECRET,
                         "payload_format": "Default", "skip_cert_verify": False}], **overrides}


def create_harbor_policy(client, receiver: Receiver, **overrides) -> int:
    response = client.post(f"{HARBOR}/policies", json=harbor_policy(receiver, **overrides))
    assert response.status_code == 201, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def create_webhook(client, url: str, **fields) -> int:
    body = {"name": "all", "url": url, "event_types": ["PUSH_ARTIFACT"], **fields}
    response = client.post("/api/v1/webhooks", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def deliveries(client, webhook: int) -> list[dict]:
    response = client.get(f"/api/v1/webhooks/{webhook}/deliveries?page_size=100")
    assert response.status_code == 200, response.text
    return response.json()


def single_delivery(client, webhook: int, status: str) -> dict:
    return wait_until(lambda: next((d for d in deliveries(client, webhook) if d["status"] == status), None))


def harbor_errors(response, status: int) -> str:
    assert response.status_code == status, response.text
    [error] = response.json()["errors"]
    return error["message"]


# Policies


def test_harbor_policy_crud(client, services, receiver):
    events = client.get(f"{HARBOR}/events").json()
    assert {"PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT", "CREATE_TAG", "DELETE_TAG",
            "SCANNING_COMPLETED", "QUOTA_EXCEED"} <= set(events["event_type"])
    assert events["payload_formats"] == [{"notify_type": "http", "formats": ["Default", "CloudEvents"]}]
    SupportedWebhookEventTypes.model_validate(events)  # what the harborapi client parses

    policy_id = create_harbor_policy(client, receiver)
    listed = client.get(f"{HARBOR}/policies")
    assert listed.headers["X-Total-Count"] == "1"
    [policy] = listed.json()
    project_id = client.get("/api/v2.0/projects/team").json()["project_id"]
    assert policy["id"] == policy_id and policy["project_id"] == project_id and policy["creator"] == "admin"
    assert policy["targets"][0]["address"] == receiver.url and policy["targets"][0]["auth_header"] == "***"
    assert SECRET not in listed.text
    assert WebhookPolicy.model_validate(policy).targets[0].payload_format.root == "Default"

    edited = dict(policy, name="ci-renamed", enabled=False, event_types=["PUSH_ARTIFACT", "DELETE_TAG"])
    assert client.put(f"{HARBOR}/policies/{policy_id}", json=edited).status_code == 200
    again = client.get(f"/api/v2.0/projects/{project_id}/webhook/policies/{policy_id}").json()
    assert (again["name"], again["enabled"], again["event_types"]) == ("ci-renamed", False,
                                                                       ["PUSH_ARTIFACT", "DELETE_TAG"])
    assert services.webhooks.policy(policy_id).targets[0].auth_header == SECRET  # the mask kept it

    assert "exists" in harbor_errors(client.post(f"{HARBOR}/policies", json=harbor_policy(
        receiver, name="ci-renamed")), 409)
    assert client.delete(f"{HARBOR}/policies/{policy_id}").status_code == 200
    assert harbor_errors(client.get(f"{HARBOR}/policies/{policy_id}"), 404)
    assert SECRET not in client.get("/api/v1/audit-logs?limit=1000").text


@pytest.mark.parametrize("change, expected", [
    ({"targets": [{"type": "http", "address": "ftp://example.com/hook"}]}, "http:// or https://"),
    ({"targets": [{"type": "http", "address": "not a url"}]}, "http:// or https://"),
    ({"targets": [{"type": "slack", "address": "https://hooks.slack.com/x"}]}, "unsupported target type"),
    ({"targets": []}, "at least one target"),
    ({"event_types": ["PUSH_ARTIFACT", "PUSH_IMAGE"]}, "unsupported event type 'PUSH_IMAGE'"),
    ({"event_types": []}, "at least one event type"),
    ({"targets": [{"address": "http://example.com", "payload_format": "XML"}]}, "unsupported payload format"),
    ({"name": ""}, "name is required"),
])
def test_harbor_policy_validation(client, receiver, change, expected):
    response = client.post(f"{HARBOR}/policies", json=harbor_policy(receiver) | change)
    assert expected in harbor_errors(response, 400)
    assert response.json()["errors"][0]["code"] == "BAD_REQUEST"


def test_instance_wide_webhooks_are_for_administrators(client):
    webhook = create_webhook(client, "http://example.com/a", auth_header=SECRET,
                             event_types=["PUSH_ARTIFACT", "CREATE_TAG"])
    shown = client.get(f"/api/v1/webhooks/{webhook}").json()
    assert shown["project"] is None and shown["targets"][0]["auth_header"] == "***"
    updated = client.put(f"/api/v1/webhooks/{webhook}", json={"url": "https://example.com/b",
                                                               "payload_format": "CloudEvents"})
    assert updated.status_code == 200 and updated.json()["targets"][0]["url"] == "https://example.com/b"
    assert updated.json()["event_types"] == ["PUSH_ARTIFACT", "CREATE_TAG"]  # absent: kept
    assert updated.json()["targets"][0]["auth_header"] == ""  # a new address: no header carried over
    kept = client.put(f"/api/v1/webhooks/{webhook}", json={"url": "https://example.com/b", "auth_header": SECRET})
    assert kept.json()["targets"][0]["auth_header"] == "***"
    kept = client.put(f"/api/v1/webhooks/{webhook}", json={"url": "https://example.com/b", "skip_cert_verify": True})
    assert kept.json()["targets"][0]["auth_header"] == "***"  # absent: kept for the same address
    assert [w["id"] for w in client.get("/api/v1/webhooks").json()] == [webhook]

    create_user(client, "owner")
    grant(client, "team", "owner", "project_admin")
    owner = ("owner", PASSWORD)
    assert client.get("/api/v1/webhooks", auth=owner).status_code == 403
    assert client.get(f"/api/v1/webhooks/{webhook}", auth=owner).status_code == 403
    assert client.post("/api/v1/webhooks", auth=owner, json={
        "name": "mine", "url": "http://example.com/c", "event_types": ["PUSH_ARTIFACT"]}).status_code == 403
    assert client.get("/api/v1/webhooks", auth=None).status_code == 401
    project_hook = client.post("/api/v1/webhooks", auth=owner, json={
        "name": "mine", "project": "team", "url": "http://example.com/c", "event_types": ["DELETE_TAG"]})
    assert project_hook.status_code == 201 and project_hook.json()["project"] == "team"
    assert client.get("/api/v1/webhooks?project=team", auth=owner).json()[0]["name"] == "mine"

    assert client.delete(f"/api/v1/webhooks/{webhook}").status_code == 204
    assert client.get(f"/api/v1/webhooks/{webhook}").status_code == 404


def test_maintainers_see_deliveries_but_only_project_admins_manage(client, receiver):
    policy_id = create_harbor_policy(client, receiver)
    push_image(client, "team/app", "1.0")
    delivery = single_delivery(client, policy_id, "delivered")
    for username, role in (("maint", "maintainer"), ("dev", "developer")):
        create_user(client, username)
        grant(client, "team", username, role)
    maintainer, developer = ("maint", PASSWORD), ("dev", PASSWORD)
    assert client.get(f"{HARBOR}/policies", auth=maintainer).status_code == 200
    assert client.get(f"/api/v1/webhooks/{policy_id}/deliveries", auth=maintainer).status_code == 200
    assert harbor_errors(client.post(f"{HARBOR}/policies", json=harbor_policy(receiver, name="x"),
                                     auth=maintainer), 403)
    assert client.post(f"/api/v1/webhooks/deliveries/{delivery['id']}/redeliver",
                       auth=maintainer).status_code == 403
    assert harbor_errors(client.get(f"{HARBOR}/policies", auth=developer), 403)
    assert client.get(f"/api/v1/webhooks/{policy_id}/deliveries", auth=developer).status_code == 403


# Deliveries


def test_a_push_delivers_harbors_payload_with_the_auth_header(client, receiver):
    policy_id = create_harbor_policy(client, receiver)
    digest, manifest = push_image(client, "team/app", "1.0")
    wait_until(lambda: receiver.requests)
    headers, body = receiver.requests[0]
    assert headers["Authorization"] == SECRET and headers["Content-Type"] == "application/json"
    assert body["type"] == "PUSH_ARTIFACT" and body["operator"] == "admin"
    assert isinstance(body["occur_at"], int) and abs(body["occur_at"] - time.time()) < 60
    [resource] = body["event_data"]["resources"]
    assert resource["digest"] == digest and resource["tag"] == "1.0"
    assert resource["resource_url"].endswith("/team/app:1.0")
    repository = body["event_data"]["repository"]
    assert {k: repository[k] for k in ("name", "namespace", "repo_full_name", "repo_type")} == {
        "name": "app", "namespace": "team", "repo_full_name": "team/app", "repo_type": "private"}
    assert isinstance(repository["date_created"], int)

    delivery = single_delivery(client, policy_id, "delivered")  # the receiver answered before it was recorded
    assert len(deliveries(client, policy_id)) == 1
    assert (delivery["status"], delivery["attempts"], delivery["status_code"]) == ("delivered", 1, 200)
    assert delivery["event_type"] == "PUSH_ARTIFACT" and delivery["latency_ms"] >= 0

    # The same image under another tag is a push too (only the tag is recorded); one delivery each.
    response = client.put("/v2/team/app/manifests/latest", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201
    wait_until(lambda: len(receiver.requests) == 2)
    assert receiver.requests[1][1]["event_data"]["resources"][0]["tag"] == "latest"
    time.sleep(0.3)
    assert len(receiver.requests) == 2


def test_cloudevents_for_tag_events_of_every_project(client, receiver):
    create_webhook(client, receiver.url, payload_format="CloudEvents", event_types=["CREATE_TAG", "DELETE_TAG"])
    digest, _ = push_image(client, "team/app", "1.0")
    assert client.delete("/v2/team/app/manifests/1.0").status_code == 202
    wait_until(lambda: len(receiver.requests) == 2)
    (created_headers, created), (_, deleted) = receiver.requests
    assert created_headers["Content-Type"] == "application/cloudevents+json"
    assert created["specversion"] == "1.0" and created["type"] == "io.portlog.tag.created"
    assert created["subject"] == "team/app:1.0" and created["data"]["digest"] == digest
    assert deleted["type"] == "io.portlog.tag.deleted" and int(deleted["id"]) > int(created["id"])


def test_pull_and_delete_webhooks(client, services, receiver):
    create_harbor_policy(client, receiver, event_types=["PULL_ARTIFACT", "DELETE_ARTIFACT"])
    digest, _ = push_image(client, "team/app", "1.0")
    for _ in range(2):
        client.get("/v2/team/app/manifests/1.0", headers={"Accept": OCI_MANIFEST})
    flush_pulls(services)
    [pulled] = wait_until(lambda: receiver.bodies("PULL_ARTIFACT"))
    assert pulled["operator"] == "admin"
    [resource] = pulled["event_data"]["resources"]
    assert (resource["digest"], resource["tag"], resource["count"], resource["actor"]) == (digest, "1.0", 2, "admin")

    assert client.delete(f"/v2/team/app/manifests/{digest}").status_code == 202
    [deleted] = wait_until(lambda: receiver.bodies("DELETE_ARTIFACT"))
    assert deleted["event_data"]["resources"] == [
        {"digest": digest, "tag": "1.0", "resource_url": pulled["event_data"]["resources"][0]["resource_url"]}]


def test_quota_and_retention_webhooks(client, receiver):
    create_harbor_policy(client, receiver, event_types=["QUOTA_EXCEED", "QUOTA_WARNING", "TAG_RETENTION"])
    client.put("/api/v1/projects/team/quota", json={"artifacts": 2, "warning_percent": 50})
    first, _ = push_image(client, "team/app", "1.0", seed="one")
    push_image(client, "team/app", "2.0", seed="two")
    config, layer = b'{"seed": "three"}', b"layer three"
    for blob in (config, layer):
        client.post(f"/v2/team/app/blobs/uploads/?digest={digest_of(blob)}", content=blob)
    refused = client.put("/v2/team/app/manifests/3.0", content=image_manifest(config, [layer]),
                         headers={"Content-Type": OCI_MANIFEST})
    assert refused.status_code == 403
    [warning] = wait_until(lambda: receiver.bodies("QUOTA_WARNING"))
    [exceeded] = wait_until(lambda: receiver.bodies("QUOTA_EXCEED"))
    assert "warning threshold" in warning["event_data"]["custom_attributes"]["Details"]
    assert exceeded["event_data"]["repository"]["repo_full_name"] == "team/app"
    assert "limit of 2" in exceeded["event_data"]["custom_attributes"]["Details"]

    client.put("/api/v1/projects/team/retention", json={"rules": [{"template": "latestPushedK", "param": 1}]})
    assert client.post("/api/v1/projects/team/retention/runs", json={}).status_code == 201
    [retention] = wait_until(lambda: receiver.bodies("TAG_RETENTION"))
    summary = retention["event_data"]["retention"]
    assert (summary["total"], summary["retained"], summary["project_name"]) == (2, 1, "team")
    assert [(a["repository"], a["digest"], a["tag"]) for a in summary["deleted_artifacts"]] == [("app", first, "1.0")]


def test_failed_attempts_are_retried_and_recorded(client, receiver):
    receiver.answer(500, 500)
    policy_id = create_harbor_policy(client, receiver)
    push_image(client, "team/app", "1.0")
    delivery = single_delivery(client, policy_id, "delivered")
    assert (delivery["attempts"], delivery["status_code"], delivery["last_error"]) == (3, 200, None)

    detail = client.get(f"/api/v1/webhooks/deliveries/{delivery['id']}").json()
    history = detail["attempt_history"]
    assert [a["status_code"] for a in history] == [500, 500, 200]
    assert [a["succeeded"] for a in history] == [False, False, True]
    assert history[0]["error"].startswith("HTTP 500") and all(a["latency_ms"] >= 0 for a in history)
    assert [h["X-Portlog-Attempt"] for h, _ in receiver.requests] == ["1", "2", "3"]
    assert len({h["X-Portlog-Delivery"] for h, _ in receiver.requests}) == 1

    executions = client.get(f"{HARBOR}/policies/{policy_id}/executions").json()
    assert executions[0]["status"] == "Success" and executions[0]["extra_attrs"]["event_type"] == "PUSH_ARTIFACT"
    [task] = client.get(f"{HARBOR}/policies/{policy_id}/executions/{delivery['id']}/tasks").json()
    assert task["run_count"] == 3
    Execution.model_validate(executions[0])
    Task.model_validate(task)
    log = client.get(f"{HARBOR}/policies/{policy_id}/executions/{delivery['id']}/tasks/{task['id']}/log")
    assert log.text.count("\n") == 3 and "attempt 3: HTTP 200" in log.text


def test_a_failure_shows_the_status_not_the_body_and_only_to_those_who_manage_the_policy(client, receiver):
    secret = "INTERNAL-SECRET-51c2"
    receiver.body = f"stack trace with {secret}".encode()
    receiver.answer(*[500] * 1000)
    policy_id = create_harbor_policy(client, receiver)
    push_image(client, "team/app", "1.0")
    delivery = wait_until(lambda: next((d for d in deliveries(client, policy_id) if d["last_error"]), None))
    assert delivery["last_error"] == "HTTP 500 Internal Server Error"
    execution = f"{HARBOR}/policies/{policy_id}/executions/{delivery['id']}"
    pages = (f"/api/v1/webhooks/{policy_id}/deliveries", f"/api/v1/webhooks/deliveries/{delivery['id']}",
             f"{HARBOR}/policies/{policy_id}/executions", f"{execution}/tasks",
             f"{execution}/tasks/{delivery['id']}/log")
    assert all("HTTP 500 Internal" in client.get(pages[n]).text for n in (0, 1, 4))  # Harbor's: while retrying
    create_user(client, "maint")
    grant(client, "team", "maint", "maintainer")
    for page in pages:
        shown = client.get(page, auth=("maint", PASSWORD))
        assert shown.status_code == 200 and "Internal Server Error" not in shown.text, (page, shown.text)
    assert not any(secret in client.get(page).text for page in pages)


def test_gives_up_after_the_retry_window_then_redelivers_on_request(client, services, receiver):
    services.settings = replace(services.settings, events=replace(services.settings.events,
                                                                  webhook_retry_seconds=1))
    receiver.answer(*[503] * 1000)
    policy_id = create_harbor_policy(client, receiver)
    push_image(client, "team/app", "1.0")
    failed = single_delivery(client, policy_id, "failed")
    assert failed["attempts"] >= 2 and failed["status_code"] == 503 and failed["next_attempt_at"] is None
    assert "503" in failed["last_error"]
    assert len(receiver.requests) == failed["attempts"]

    receiver.answer()
    response = client.post(f"/api/v1/webhooks/deliveries/{failed['id']}/redeliver")
    assert response.status_code == 202 and response.json()["status"] in ("pending", "sending", "delivered")
    delivered = single_delivery(client, policy_id, "delivered")
    assert delivered["id"] == failed["id"] and delivered["attempts"] == failed["attempts"] + 1
    assert client.post("/api/v1/webhooks/deliveries/999999/redeliver").status_code == 404


def test_a_hanging_receiver_never_slows_pushes(client, receiver):
    def timed_pushes(prefix: str) -> float:
        started = time.monotonic()
        for i in range(8):
            push_image(client, f"team/{prefix}{i}", "1.0", seed=f"{prefix}{i}")
        return time.monotonic() - started

    push_image(client, "team/warmup", "1.0")
    without = timed_pushes("plain")
    receiver.hanging = True
    policy_id = create_harbor_policy(client, receiver)
    with_hanging = timed_pushes("hung")
    assert with_hanging < 3 * without + 1.0, (with_hanging, without)

    wait_until(lambda: len(receiver.requests) >= webhook_dispatcher.SENDERS)
    states = {d["status"] for d in deliveries(client, policy_id)}
    assert "sending" in states and "delivered" not in states, states


def test_two_dispatchers_never_send_the_same_attempt(client, services, receiver):
    receiver.delay = 0.02
    policy_id = create_harbor_policy(client, receiver)
    others = [WebhookDispatcher(services, first_retry_seconds=0.05, max_retry_seconds=0.2) for _ in range(2)]
    stop = threading.Event()

    def run(dispatcher) -> None:
        while not stop.is_set():
            dispatcher.run_once()
            time.sleep(0.01)

    threads = [threading.Thread(target=run, args=(d,), daemon=True) for d in others]
    for thread in threads:
        thread.start()
    try:
        for i in range(6):
            push_image(client, f"team/app{i}", "1.0", seed=str(i))
        wait_until(lambda: len([d for d in deliveries(client, policy_id) if d["status"] == "delivered"]) == 6)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        for dispatcher in others:
            dispatcher.close()
    sent = [headers["X-Portlog-Delivery"] for headers, _ in receiver.requests]
    assert len(sent) == 6 and len(set(sent)) == 6
    assert all(d["attempts"] == 1 for d in deliveries(client, policy_id))


def test_rebuilding_the_read_models_gives_the_same_deliveries(client, services, receiver):
    receiver.answer(500)
    policy_id = create_harbor_policy(client, receiver, event_types=["PUSH_ARTIFACT", "CREATE_TAG"])
    push_image(client, "team/app", "1.0")
    wait_until(lambda: len([d for d in deliveries(client, policy_id) if d["status"] == "delivered"]) == 2)

    def dump() -> dict:
        with services.db.reader.connect() as conn:
            return {table.name: sorted(tuple(row) for row in conn.execute(select(table)))
                    for table in webhooks_model.metadata.sorted_tables}

    before = dump()
    assert len(before["webhook_attempts"]) == 3
    services.projections.rebuild()
    assert dump() == before


# Replication: REPLICATION fires once when an execution ends


def add_replication_policy(client, peer, name: str, **fields) -> int:
    response = client.post("/api/v2.0/registries", json={"name": f"{name}-peer", "url": peer.url,
                                                         "type": "docker-registry"})
    assert response.status_code == 201, response.text
    registry_id = int(response.headers["Location"].rsplit("/", 1)[1])
    response = client.post("/api/v2.0/replication/policies", json={
        "name": name, "dest_registry": {"id": registry_id}, **fields})
    assert response.status_code == 201, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_an_execution_that_ends_fires_replication_once_with_its_artifacts(client, services, receiver,
                                                                           distribution):
    create_harbor_policy(client, receiver, event_types=["REPLICATION"])
    create_webhook(client, receiver.url, payload_format="CloudEvents", event_types=["REPLICATION"])
    for tag in ("v1", "v2"):
        push_image(client, "team/app", tag, seed=f"replicated {tag}")
    policy_id = add_replication_policy(client, distribution, "out", dest_namespace="hooked",
                                       description="to the mirror", filters=[{"type": "name", "value": "team/**"}])
    response = client.post("/api/v2.0/replication/executions", json={"policy_id": policy_id})
    assert response.status_code == 201, response.text
    started = time.time()
    [body] = wait_until(lambda: [b for b in receiver.bodies("REPLICATION") if "event_data" in b])
    [cloudevent] = wait_until(lambda: [b for b in receiver.bodies("REPLICATION") if "specversion" in b])
    execution = client.get(response.headers["Location"]).json()
    assert execution["status"] == "Succeed" and execution["succeed"] == 2

    assert body["type"] == "REPLICATION" and body["operator"] == "admin"
    assert abs(body["occur_at"] - started) < 60
    replication = body["event_data"]["replication"]
    assert (replication["harbor_hostname"], replication["job_status"]) == ("127.0.0.1", "Success")
    assert (replication["description"], replication["policy_creator"]) == ("to the mirror", "admin")
    assert (replication["trigger_type"], replication["override_mode"]) == ("manual", True)
    assert replication["src_resource"] == {"registry_type": "portlog", "endpoint": "http://127.0.0.1:5000",
                                           "namespace": "team"}
    assert replication["dest_resource"] == {"registry_name": "out-peer", "registry_type": "docker-registry",
                                            "endpoint": distribution.url, "namespace": "hooked"}
    assert replication["successful_artifact"] == [{"type": "artifact", "status": "Success", "name_tag": "app:v1"},
                                                  {"type": "artifact", "status": "Success", "name_tag": "app:v2"}]
    assert replication["failed_artifact"] == []

    assert cloudevent["type"] == "io.portlog.replication.execution_ended"
    assert "subject" not in cloudevent  # the task event that ended it may name another project's repository
    assert cloudevent["data"]["execution"] == str(services.replication_runs.execution(execution["id"]).execution)
    assert cloudevent["data"]["job_status"] == "Success"
    assert cloudevent["data"]["successful_artifact"] == replication["successful_artifact"]
    time.sleep(0.5)
    assert len(receiver.bodies("REPLICATION")) == 2  # one per policy: neither the first task nor a claim fired


def test_a_failed_execution_tells_each_project_only_its_artifacts_and_ends_again_when_retried(
        client, services, receiver, distribution):
    project_receiver = Receiver()
    try:
        create_webhook(client, receiver.url, event_types=["REPLICATION"])
        create_webhook(client, project_receiver.url, project="team", event_types=["REPLICATION"])
        push_image(client, "team/app", "v1", seed="team side")
        add_replication_policy(client, distribution, "spread", dest_namespace="spread")
        copies = [{"operation": "copy", "source_repository": name, "reference": "v1",
                   "destination_repository": f"spread/{name.split('/')[1]}"} for name in ("team/app", "z/tool")]
        execution, _ = services.replicator.record("spread", "manual", copies, RequestContext("alice", "test"))

        [everything] = wait_until(lambda: receiver.bodies("REPLICATION"))
        replication = everything["event_data"]["replication"]
        assert everything["operator"] == "alice" and replication["job_status"] == "Failed"
        assert replication["src_resource"]["namespace"] == "team,z"
        assert [a["name_tag"] for a in replication["successful_artifact"]] == ["app:v1"]
        [failed] = replication["failed_artifact"]
        assert (failed["name_tag"], failed["status"]) == ("tool:v1", "Failed")
        assert "z/tool:v1 is not in the source registry" in failed["fail_reason"]

        [team_only] = wait_until(lambda: project_receiver.bodies("REPLICATION"))
        replication = team_only["event_data"]["replication"]
        assert replication["job_status"] == "Failed" and replication["src_resource"]["namespace"] == "team"
        assert [a["name_tag"] for a in replication["successful_artifact"]] == ["app:v1"]
        assert replication["failed_artifact"] == []

        push_image(client, "z/tool", "v1", seed="z side")
        services.replicator.retry(ReplicationTask.create_id(execution, 1), RequestContext("alice", "test"))
        [_, again] = wait_until(lambda: len(receiver.bodies("REPLICATION")) == 2 and receiver.bodies("REPLICATION"))
        replication = again["event_data"]["replication"]
        assert replication["job_status"] == "Success" and replication["failed_artifact"] == []
        assert [a["name_tag"] for a in replication["successful_artifact"]] == ["app:v1", "tool:v1"]
        [_, team_again] = wait_until(lambda: len(project_receiver.bodies("REPLICATION")) == 2
                                     and project_receiver.bodies("REPLICATION"))
        replication = team_again["event_data"]["replication"]  # the execution it took part in ended again
        assert replication["job_status"] == "Success"
        assert [a["name_tag"] for a in replication["successful_artifact"]] == ["app:v1"]
    finally:
        project_receiver.close()


def test_a_stopped_execution_and_one_with_nothing_to_do_fire_replication(services, receiver, distribution):
    """Without the background workers (no app lifespan): the stop finds every task pending."""
    plain = TestClient(create_app(services))
    plain.auth = ("admin", ADMIN_PASSWORD)
    create_webhook(plain, receiver.url, event_types=["REPLICATION"])
    add_replication_policy(plain, distribution, "halted")
    copies = [{"operation": "copy", "source_repository": "team/app", "reference": tag,
               "destination_repository": "team/app"} for tag in ("v1", "v2")]
    ctx = RequestContext("admin", "test")
    execution, _ = services.replicator.record("halted", "manual", copies, ctx)
    services.projections.wait_for(services.replicator.stop(execution, ctx))
    services.replicator.record("halted", "manual", [], ctx)
    services.projections.catch_up()
    dispatcher = WebhookDispatcher(services, first_retry_seconds=0.05, max_retry_seconds=0.2)
    try:
        def sent() -> list[dict] | None:
            dispatcher.run_once()
            return receiver.bodies("REPLICATION") if len(receiver.bodies("REPLICATION")) == 2 else None

        stopped, nothing = sorted(wait_until(sent), key=lambda body: body["event_data"]["replication"]["job_status"])
    finally:
        dispatcher.close()
    replication = stopped["event_data"]["replication"]
    assert replication["job_status"] == "Stopped" and replication["successful_artifact"] == []
    assert [(a["name_tag"], a["status"]) for a in replication["failed_artifact"]] == [
        ("app:v1", "Stopped"), ("app:v2", "Stopped")]
    replication = nothing["event_data"]["replication"]
    assert replication["job_status"] == "Success" and replication["successful_artifact"] == []
    assert replication["src_resource"]["namespace"] == "" and replication["failed_artifact"] == []
