"""OpenTelemetry tracing (adapters/tracing.py, api/tracing.py): spans exported over OTLP/HTTP by
the real exporter to a local receiver (infra/services/otlp_receiver.py), and nothing of
OpenTelemetry loaded when the OTEL_* variables leave it off."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading

import httpx
import orjson
import pytest

from adapters import webhook_sender
from adapters.tracing import enabled
from api import logs
from infra.services import otlp_receiver
from tests.api.test_webhooks import Receiver as WebhookReceiver
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest, push_blob, push_image
from tests.support.server import REPO_ROOT

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
MANIFEST_ROUTE = "GET /v2/{name:path}/manifests/{reference}"


@pytest.fixture
def receiver():
    with otlp_receiver.running() as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def tracing_on(receiver, monkeypatch):
    """Before the services are built: tracing to the local receiver, exported every 50 ms."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "portlog-test")


def server_spans(receiver, name: str, count: int = 1):
    spans = receiver.wait_for(lambda spans: sum(s.name == name and s.kind == 2 for s in spans) >= count)
    return [span for span in spans if span.name == name and span.kind == 2]


def test_a_request_span_is_named_after_its_route_template(client, receiver):
    assert client.get("/v2/library/app/manifests/latest").status_code == 404

    [span] = server_spans(receiver, MANIFEST_ROUTE)
    assert span.attributes["http.route"] == "/v2/{name:path}/manifests/{reference}"
    assert span.attributes["http.response.status_code"] == 404
    assert span.parent_span_id == ""
    assert span.service_name == "portlog-test"
    assert not any("library/app" in s.name for s in receiver.received())  # never the raw path
    assert "OtelBatchSpanRecordProcessor" in {thread.name for thread in threading.enumerate()}


def test_the_callers_traceparent_is_continued_and_the_trace_id_is_the_request_id(client, receiver):
    response = client.get("/v2/", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})

    [span] = server_spans(receiver, "GET /v2/")
    assert (span.trace_id, span.parent_span_id) == (TRACE_ID, PARENT_ID)
    assert response.headers["X-Request-Id"] == TRACE_ID


def test_a_new_trace_id_is_the_request_id_unless_the_client_sent_one(client, receiver):
    generated = client.get("/v2/").headers["X-Request-Id"]
    kept = client.get("/v2/", headers={"X-Request-Id": "client-id-1"}).headers["X-Request-Id"]

    spans = server_spans(receiver, "GET /v2/", count=2)
    assert generated in {span.trace_id for span in spans} and len(generated) == 32
    assert kept == "client-id-1"


def test_log_records_carry_the_trace_id(services, caplog):
    with caplog.at_level(logging.INFO, logger="portlog"):
        with services.tracing.span("work") as span:
            logging.getLogger("portlog.test").info("inside")
        logging.getLogger("portlog.test").info("outside")

    inside, outside = caplog.records[-2:]
    assert inside.trace_id == format(span.get_span_context().trace_id, "032x")
    assert not hasattr(outside, "trace_id")


@pytest.mark.parametrize("environ, on", [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
])
def test_the_otel_variables_turn_tracing_on(environ, on):
    assert enabled(environ) is on


OFF_PROGRAM = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    from starlette.testclient import TestClient
    from adapters.passwords import Argon2SecretHasher
    from api.app import create_app
    from config.bootstrap import bootstrap
    from config.settings import Settings

    services = bootstrap(Settings(data_dir=Path(sys.argv[1]), admin_password="Portlog-Test-1"),
                         hasher=Argon2SecretHasher(fast=True))
    with TestClient(create_app(services)) as client:
        assert client.get("/v2/").status_code == 401
        assert client.get("/v2/library/app/manifests/latest").status_code in (401, 404)
        print("tracing", services.tracing)
        print("modules", sorted(name for name in sys.modules if name.startswith("opentelemetry")))
        print("threads", sorted(t.name for t in threading.enumerate() if "otel" in t.name.lower()))
    services.close()
""")


def test_off_nothing_of_opentelemetry_is_imported_and_no_exporter_thread_runs(tmp_path, receiver):
    environ = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    finished = subprocess.run([sys.executable, "-c", OFF_PROGRAM, str(tmp_path / "data")], cwd=REPO_ROOT,
                              env=environ, capture_output=True, text=True, timeout=120)

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == ["tracing None", "modules []", "threads []"]
    assert receiver.requests == 0


def descendants(spans, root):
    """The spans under `root`, at any depth."""
    found, parents = [], {root.span_id}
    for _ in range(5):
        for span in spans:
            if span.parent_span_id in parents and span not in found:
                found.append(span)
                parents.add(span.span_id)
    return found


def test_commits_read_model_batches_and_blob_operations_are_spans_of_the_request(client, receiver):
    digest, _ = push_image(client, "library/app", "v1")
    layer = digest_of(b"layer-x")
    assert client.get(f"/v2/library/app/blobs/{layer}").content == b"layer-x"

    [push] = server_spans(receiver, "PUT " + MANIFEST_ROUTE.removeprefix("GET "))
    pull = server_spans(receiver, "GET /v2/{name:path}/blobs/{digest}")[0]
    upload = server_spans(receiver, "POST /v2/{name:path}/blobs/uploads/", count=2)[0]
    # The read models apply the push in the request's thread (a span under it), unless a
    # background catch-up got there first (a span in a trace of its own): a batch span either way.
    receiver.wait_for(lambda spans: "event store commit" in {s.name for s in descendants(spans, push)}
                      and any(s.name == "read models batch" and s.attributes["portlog.notifications"] >= 1
                              for s in spans))
    under_push = descendants(receiver.received(), push)
    commit = next(s for s in under_push if s.name == "event store commit")
    assert commit.trace_id == push.trace_id and commit.attributes["portlog.events"] >= 2  # ManifestPushed, TagPointed
    assert any(s.name == "blob put" and s.attributes["portlog.digest"] == digest for s in under_push)
    assert "blob complete_upload" in {s.name for s in descendants(receiver.received(), upload)}
    assert {"blob open", "blob read"} & {s.name for s in descendants(receiver.received(), pull)}


def test_outbound_requests_through_the_guard_are_client_spans_carrying_traceparent(services, receiver):
    with services.tracing.span("work") as parent:
        with httpx.Client(transport=services.outbound.httpx_transport()) as http:
            response = http.get(receiver.url + "/v1/traces?token=secret")

    [span] = [s for s in receiver.wait_for(lambda spans: any(s.kind == 3 for s in spans)) if s.kind == 3]
    assert span.parent_span_id == format(parent.get_span_context().span_id, "016x")
    assert span.attributes["http.response.status_code"] == response.status_code == 501  # the receiver only takes POST
    assert (span.attributes["server.address"], span.attributes["server.port"]) == ("127.0.0.1", receiver.port)
    assert not any("v1/traces" in str(value) or "secret" in str(value) for value in span.attributes.values())
    assert response.request.headers["traceparent"].split("-")[1] == span.trace_id


def test_a_webhook_post_is_a_client_span_and_the_receiver_gets_its_traceparent(services, receiver):
    hook = WebhookReceiver()
    try:
        with services.tracing.span("delivery") as parent:
            outcome = webhook_sender.post(hook.url, b'{"type": "PUSH_ARTIFACT"}', {"Content-Type": "application/json"},
                                          outbound=services.outbound)
    finally:
        hook.close()

    assert outcome.status_code == 200
    [(headers, _)] = hook.requests
    [span] = [s for s in receiver.wait_for(lambda spans: any(s.kind == 3 for s in spans)) if s.kind == 3]
    assert headers["traceparent"].startswith(f"00-{span.trace_id}-{span.span_id}-")
    assert span.trace_id == format(parent.get_span_context().trace_id, "032x")
    assert (span.name, span.attributes["http.response.status_code"]) == ("POST", 200)


def test_an_audit_entry_leads_to_its_trace(client, receiver):
    config = b'{"os": "linux"}'
    push_blob(client, "library/app", config)
    manifest = image_manifest(config, [])
    response = client.put("/v2/library/app/manifests/1.0", content=manifest, headers={
        "Content-Type": OCI_MANIFEST, "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert response.status_code == 201

    [pointed] = client.get("/api/v1/audit-logs", params={"operation": "repository.tag_pointed"}).json()
    assert pointed["request_id"] == TRACE_ID
    [span] = server_spans(receiver, "PUT /v2/{name:path}/manifests/{reference}")
    assert span.trace_id == TRACE_ID


def test_the_access_line_carries_the_trace_id(client, receiver, caplog):
    with caplog.at_level(logging.INFO, logger="portlog.access"):
        client.get("/v2/", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})

    [line] = [record for record in caplog.records if record.name == "portlog.access"]
    assert line.trace_id == TRACE_ID
    assert logs.TextFormatter(logs.TEXT_FORMAT).format(line).endswith(f" trace_id={TRACE_ID}")
    assert orjson.loads(logs.JsonFormatter().format(line))["trace_id"] == TRACE_ID
