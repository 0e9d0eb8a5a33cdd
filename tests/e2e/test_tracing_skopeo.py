"""Tracing on a real `portlog serve`, driven by skopeo: the OTEL_* variables alone turn it on, and
a push and a pull leave the spans an operator follows (the requests by route template, the
event-store commit and the blob writes under the manifest and upload requests), exported over
OTLP/HTTP to a local receiver (infra/services/otlp_receiver.py)."""

from __future__ import annotations

import subprocess

import pytest

from infra.services import otlp_receiver
from tests.api.test_tracing import descendants
from tests.support.images import build_image_layout
from tests.support.server import start_server

pytestmark = pytest.mark.e2e  # skopeo comes from scripts/install-system-packages

SERVER_KIND = 2
MANIFEST_PUT = "PUT /v2/{name:path}/manifests/{reference}"
MANIFEST_GET = "GET /v2/{name:path}/manifests/{reference}"
BLOB_GET = "GET /v2/{name:path}/blobs/{digest}"
UPLOAD_PUT = "PUT /v2/{name:path}/blobs/uploads/{upload_id}"


def skopeo(*args: str) -> None:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_skopeo_push_and_pull_are_traced_end_to_end(tmp_path):
    image = build_image_layout(tmp_path / "layout", "v1")
    with otlp_receiver.running() as receiver:
        server = start_server(tmp_path / "data", tmp_path / "serve.log", extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_SERVICE_NAME": "portlog-e2e"})
        try:
            target = f"docker://{server.host}/library/traced:v1"
            creds = server.admin_creds
            skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{image.layout}:v1", target)
            skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, target, f"dir:{tmp_path / 'pulled'}")

            def served(spans, name: str, status: int) -> list:
                return [s for s in spans if s.kind == SERVER_KIND and s.name == name
                        and s.attributes.get("http.response.status_code") == status]

            spans = receiver.wait_for(lambda spans: served(spans, MANIFEST_PUT, 201) and served(spans, BLOB_GET, 200)
                                      and len(served(spans, UPLOAD_PUT, 201)) >= 2, timeout=20)
        finally:
            server.stop()

    assert (tmp_path / "pulled" / "manifest.json").read_bytes() == image.manifest_bytes
    assert {s.service_name for s in spans} == {"portlog-e2e"}
    assert not any("library/traced" in s.name for s in spans)  # route templates, never raw paths
    [push] = served(spans, MANIFEST_PUT, 201)
    under_push = {s.name for s in descendants(spans, push)}
    assert "event store commit" in under_push
    assert "blob put" in under_push  # the manifest's bytes
    for upload in served(spans, UPLOAD_PUT, 201):
        assert "blob complete_upload" in {s.name for s in descendants(spans, upload)}
    pulls = served(spans, MANIFEST_GET, 200)
    assert pulls and all(s.trace_id != push.trace_id for s in pulls)  # each request its own trace
