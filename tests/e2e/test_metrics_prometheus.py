"""A real Prometheus (Debian's package, infra/services/prometheus.py) scraping a live
`portlog serve` after real skopeo pushes and pulls: the answers of its query API are what an
operator's dashboards and alerts would see."""

from __future__ import annotations

import os
import subprocess
from typing import Iterator

import pytest

from infra.services import prometheus
from tests.support.images import ImageInfo, build_image_layout
from tests.support.server import free_port, start_server

pytestmark = pytest.mark.e2e

SKOPEO_TIMEOUT = 120
MANIFEST_ROUTE = "/v2/{name:path}/manifests/{reference}"


def skopeo(env: dict, *args: str) -> None:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=SKOPEO_TIMEOUT, env=env)
    assert result.returncode == 0, f"skopeo {' '.join(args)}: {result.stderr}"


def blob_bytes(image: ImageInfo) -> int:
    """The bytes of the image's config and layers, as a push uploads and a pull downloads them."""
    blobs = image.layout / "blobs" / "sha256"
    return sum((blobs / digest.split(":", 1)[1]).stat().st_size
               for digest in (image.config_digest, *image.layer_digests))


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory, metrics_port):
    root = tmp_path_factory.mktemp("metrics-live")
    # pulls recorded every second, so Harbor's pull count moves within the test; the separate
    # metrics port besides the main one
    live = start_server(root / "data", root / "serve.log", projects=("team",), extra_env={
        "PORTLOG_PULL_RECORD_SECONDS": "1", "PORTLOG_METRICS_PORT": str(metrics_port)})
    yield live
    live.stop()


@pytest.fixture(scope="module")
def prom(server, metrics_port, tmp_path_factory) -> Iterator[prometheus.PrometheusServer]:
    main_port = prometheus.Target("portlog", server.host, auth=server.admin_auth)
    metrics_port = prometheus.Target("portlog-metrics-port", f"127.0.0.1:{metrics_port}")
    with prometheus.running(tmp_path_factory.mktemp("prometheus"), [main_port, metrics_port]) as running:
        yield running


@pytest.fixture(scope="module")
def traffic(server, prom, tmp_path_factory) -> ImageInfo:
    """Once Prometheus scrapes, skopeo pushes one image under two tags, and pulls it once."""
    assert prom.query_until('up{job="portlog"}', lambda up: up == 1) == 1
    assert prom.query_until('up{job="portlog-metrics-port"}', lambda up: up == 1) == 1  # without credentials
    work = tmp_path_factory.mktemp("metrics-skopeo")
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(work / "auth.json")}
    image = build_image_layout(work / "layout", "1.0", text="metrics")
    skopeo(env, "login", "--tls-verify=false", "-u", "admin", "-p", server.admin_creds.split(":", 1)[1], server.host)
    for tag in ("1.0", "latest"):
        skopeo(env, "copy", "--dest-tls-verify=false", f"oci:{image.layout}:1.0", f"docker://{server.host}/team/app:{tag}")
    skopeo(env, "copy", "--src-tls-verify=false", f"docker://{server.host}/team/app:1.0", f"oci:{work / 'pulled'}:1.0")
    return image


def test_pushes_and_pulls_by_project(prom, traffic):
    assert prom.query_until('portlog_manifest_pushes_total{project="team"}', lambda n: n >= 2) == 2
    assert prom.query_until('portlog_manifest_pulls_total{project="team"}', lambda n: n >= 1) == 1
    size = blob_bytes(traffic)
    # the second push found every blob there already (skopeo asks with HEAD): one upload each
    assert prom.query_until('portlog_blob_received_bytes_total{project="team"}', lambda n: n >= size) == size
    assert prom.query_until('portlog_blob_sent_bytes_total{project="team"}', lambda n: n >= size) == size
    puts = f'sum(portlog_http_requests_total{{job="portlog",method="PUT",route="{MANIFEST_ROUTE}",status="201"}})'
    assert prom.query_until(puts, lambda n: n >= 2) == 2
    assert prom.query_until('harbor_artifact_pulled{project_name="team"}', lambda n: n >= 1) == 1


def test_the_separate_port_shows_the_same_counts(prom, traffic):
    pushes = 'portlog_manifest_pushes_total{project="team",job="portlog-metrics-port"}'
    assert prom.query_until(pushes, lambda n: n >= 2) == 2


def test_registry_state_and_lag(prom, traffic):
    assert prom.query_until('harbor_project_repo_total{project_name="team"}', lambda n: n >= 1) == 1
    usage = prom.query_until('harbor_project_quota_usage_byte{project_name="team"}', lambda n: n > 0)
    assert usage >= blob_bytes(traffic)
    assert prom.query_until("max(portlog_read_model_lag_events)", lambda n: n == 0) == 0
    assert prom.query_until("portlog_event_log_head_position", lambda n: n > 0) > 0
    # a latency quantile over the histogram's buckets (a dashboard takes their rate): well-formed
    p99 = ('histogram_quantile(0.99, sum by (le) (portlog_http_request_duration_seconds_bucket'
           f'{{route="{MANIFEST_ROUTE}"}}))')
    assert 0 < prom.query_until(p99, lambda seconds: seconds > 0) < 60
