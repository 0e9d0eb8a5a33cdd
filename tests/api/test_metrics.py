"""GET /metrics (adapters/metrics.py, api/metrics.py): requests by route template, the
/v2/ traffic by project, Harbor's project metrics and the log's positions, read from a scrape."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import yaml

from adapters.passwords import Argon2SecretHasher
from api.app import create_app
from background.pulls import flush_pulls
from config.bootstrap import bootstrap
from config.settings import MetricsConfig
from domain.context import RequestContext
from tests.support.auth import PASSWORD, create_user, grant
from tests.support.metrics import scrape, value
from tests.support.oci import OCI_MANIFEST, digest_of, push_blob, push_image
from tests.support.server import ADMIN_PASSWORD, free_port

MANIFEST_ROUTE = "/v2/{name:path}/manifests/{reference}"
BLOB_ROUTE = "/v2/{name:path}/blobs/{digest}"


def test_pushes_and_pulls_are_counted_by_route_template_and_project(client):
    layer = b"a layer of 23 bytes...."
    push_blob(client, "team/app", layer)
    digest, _ = push_image(client, "team/app", "v1")
    for _ in range(2):
        assert client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST}).status_code == 200
    assert client.get(f"/v2/team/app/blobs/{digest_of(layer)}").content == layer
    assert client.get("/v2/team/nothing/manifests/v1").status_code == 404

    samples = scrape(client)
    assert value(samples, "portlog_http_requests_total", method="PUT", route=MANIFEST_ROUTE, status="201") == 1
    assert value(samples, "portlog_http_requests_total", method="GET", route=MANIFEST_ROUTE, status="200") == 2
    assert value(samples, "portlog_http_requests_total", method="GET", route=MANIFEST_ROUTE, status="404") == 1
    assert value(samples, "portlog_http_request_duration_seconds_count", method="GET", route=BLOB_ROUTE) == 1
    assert value(samples, "portlog_manifest_pushes_total", project="team") == 1
    assert value(samples, "portlog_manifest_pulls_total", project="team") == 2
    assert value(samples, "portlog_blob_sent_bytes_total", project="team") == len(layer)
    # the layer, and the config and layer of push_image, all uploaded in one POST each
    uploaded = len(layer) + len(b'{"architecture": "amd64", "os": "linux", "seed": "x"}') + len(b"layer-x")
    assert value(samples, "portlog_blob_received_bytes_total", project="team") == uploaded
    routes = {dict(labels).get("route") for name, labels in samples if name == "portlog_http_requests_total"}
    assert not any("team/app" in route for route in routes)  # never a raw path


@pytest.mark.both_databases
def test_registry_state_is_read_at_scrape_time(client, services):
    push_image(client, "team/app", "v1")
    push_image(client, "team/web", "v1", seed="y")
    create_user(client, "dev")
    for repository in ("app", "web"):  # one member, whatever it holds
        grant(client, "team", "dev", "developer", repository=f"team/{repository}")
    assert len(services.access.members("team")) == 2  # two grants
    client.put("/api/v1/projects/team/quota", json={"storage_bytes": 10_000_000})
    for repository in ("app", "web", "web"):
        client.get(f"/v2/team/{repository}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    flush_pulls(services)  # pulls are recorded once per interval
    services.projections.catch_up()

    samples = scrape(client)
    assert value(samples, "harbor_project_total", public="false") == 7  # the test projects
    assert value(samples, "harbor_project_repo_total", project_name="team", public="false") == 2
    assert value(samples, "harbor_project_repo_total", project_name="race", public="false") == 0
    used = services.quotas.usage("team").storage_bytes
    assert used > 0 and value(samples, "harbor_project_quota_usage_byte", project_name="team") == used
    assert value(samples, "harbor_project_quota_byte", project_name="race") == -1
    assert value(samples, "harbor_project_quota_byte", project_name="team") == 10_000_000
    assert value(samples, "harbor_artifact_pulled", project_name="team") == 3
    assert value(samples, "harbor_artifact_pulled", project_name="race") == 0
    assert value(samples, "harbor_project_member_total", project_name="team") == 1
    head = services.log_store.head()
    assert value(samples, "portlog_event_log_head_position") == head
    assert value(samples, "portlog_read_model_lag_events", read_model="catalog") == 0
    assert value(samples, "portlog_read_model_position", read_model="catalog") == head
    assert value(samples, "harbor_task_queue_size", type="WEBHOOK") == 0
    assert value(samples, "process_cpu_seconds_total") is not None  # process and runtime metrics
    assert any(name == "python_info" for name, _ in samples)


def test_metrics_on_the_main_port_take_an_administrator(client):
    assert client.get("/metrics", auth=None).status_code == 401
    create_user(client, "viewer")
    refused = client.get("/metrics", auth=("viewer", PASSWORD))
    assert refused.status_code == 403 and "metrics.port" in refused.json()["detail"]
    assert client.get("/metrics", auth=("admin", ADMIN_PASSWORD)).status_code == 200


@pytest.fixture
def configured_client(settings):
    """A client of an application built with the metrics settings a test gives."""
    clients = []

    def build(**metrics):
        from starlette.testclient import TestClient

        services = bootstrap(replace(settings, metrics=MetricsConfig(**metrics)), hasher=Argon2SecretHasher(fast=True))
        test_client = TestClient(create_app(services))
        test_client.__enter__()
        clients.append((test_client, services))
        return test_client

    yield build
    for test_client, services in clients:
        test_client.__exit__(None, None, None)
        services.close()


def test_an_operator_may_open_the_main_port_s_metrics(configured_client):
    client = configured_client(require_auth=False)
    assert value(scrape(client), "harbor_project_total", public="false") == 0


def test_metrics_can_be_turned_off(configured_client):
    client = configured_client(enabled=False)
    assert client.app.state.services.metrics is None
    assert client.get("/metrics").status_code == 404


def test_gc_runs_and_the_bytes_they_freed(client, services):
    push_image(client, "team/gone", "v1", seed="gone")
    assert client.delete("/api/v1/repositories/team/gone").status_code == 204
    time.sleep(1.1)  # nothing younger than a second is collected
    context = RequestContext("admin", "test-metrics")
    services.gc_jobs.start(0, True, "cli", context, background=False)
    run, _ = services.gc_jobs.start(0, False, "cli", context, background=False)
    services.projections.catch_up()
    freed = services.gc.run_by_uuid(str(run.id)).bytes
    assert freed > 0

    samples = scrape(client)
    assert value(samples, "portlog_gc_runs_total", status="succeeded") == 2
    assert value(samples, "portlog_gc_freed_bytes_total") == freed  # the dry run freed nothing
    assert value(samples, "portlog_gc_last_freed_bytes") == freed
    assert value(samples, "portlog_gc_last_duration_seconds") >= 0


def test_the_nats_relay_s_position_and_lag(client, services):
    services.metrics.nats_relayed(3, 5)
    samples = scrape(client)
    assert value(samples, "portlog_nats_relay_position") == 3
    assert value(samples, "portlog_nats_relay_lag_events") == 2


def test_the_separate_port_answers_without_credentials(configured_client):
    port = free_port()
    client = configured_client(port=port)
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 10
    while True:
        try:
            response = httpx.get(url, timeout=2, trust_env=False)
            break
        except httpx.ConnectError:
            assert time.monotonic() < deadline, "the metrics port did not open"
            time.sleep(0.05)
    assert response.status_code == 200 and "harbor_project_total" in response.text
    assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=2, trust_env=False).status_code == 404
    assert client.get("/metrics", auth=None).status_code == 401  # the main port still asks


def test_a_follower_s_position_and_lag(client, services):
    assert value(scrape(client), "portlog_follower_lag_events") is None  # a leader has no follower metrics
    services.follow_state.start("http://leader.example:5000", 10)
    services.follow_state.advance(12, 20)
    samples = scrape(client)
    assert value(samples, "portlog_follower_position") == 12
    assert value(samples, "portlog_follower_leader_head_position") == 20
    assert value(samples, "portlog_follower_lag_events") == 8
    assert value(samples, "portlog_follower_state", state="following") == 1


DASHBOARD = Path(__file__).parents[2] / "infra" / "grafana" / "portlog-dashboard.json"
ALERTS = Path(__file__).parents[2] / "infra" / "compose" / "portlog-alerts.yml"
EXPORTED_PREFIXES = ("portlog_", "harbor_", "process_", "python_")


def metric_names(queries: list[str]) -> dict[str, set[str]]:
    return {expr: {name for name in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
                   if name.startswith(EXPORTED_PREFIXES)} for expr in queries}


def dashboard_and_alert_queries() -> list[str]:
    """Every query of the Grafana dashboard and every alerting rule's expression."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])] + [r["expr"] for r in rules]


def test_every_dashboard_query_and_alert_names_an_exported_metric(client, services, tmp_path):
    # the metrics that appear once something happened: a GC run, a backup, a relay, a follower
    context = RequestContext("admin", "test-metrics")
    services.gc_jobs.start(0, True, "cli", context, background=False)
    services.backup_jobs.start(str(tmp_path / "backup"), False, "cli", context, guarded=False, background=False)
    services.metrics.nats_relayed(1, 1)
    services.follow_state.start("http://leader.example:5000", 1)
    services.projections.catch_up()
    push_image(client, "team/app", "v1")
    client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    client.get(f"/v2/team/app/blobs/{push_blob(client, 'team/app', b'a blob')}")

    exported = set(scrape(client))
    names = {name for name, _ in exported}
    queries = metric_names(dashboard_and_alert_queries())
    assert len(queries) >= 29  # the dashboard's 20 and more, the 9 alerts
    for expr, used in queries.items():
        assert used, f"{expr} names no Portlog metric"
        assert used <= names, f"{expr}: {used - names} not exported"


def test_mounted_apps_are_named_by_their_templates(client):
    assert client.get("/ui/static/no-such-file.js").status_code == 404
    assert client.get(f"/ui/static/{'x' * 40}.css").status_code == 404
    assert client.get("/scanner/api/v1/metadata", auth=None).status_code == 401
    assert client.get("/no/route/here").status_code == 404
    samples = scrape(client)
    requests = {dict(labels)["route"]: count for (name, labels), count in samples.items()
                if name == "portlog_http_requests_total" and dict(labels)["method"] == "GET"}
    assert requests["/ui/static/{path}"] == 2
    assert requests["/scanner/api/v1/metadata"] == 1
    assert requests["unmatched"] >= 1
    assert not [route for route in requests if "no-such-file" in route or "no/route" in route]
