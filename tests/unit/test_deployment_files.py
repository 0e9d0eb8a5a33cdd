"""infra/compose: the node configuration it ships is one Portlog accepts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from config.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "compose"


def test_compose_nodes_select_postgres_and_s3():
    services = yaml.safe_load((COMPOSE / "compose.yaml").read_text())["services"]
    environment = {key: str(value) for key, value in services["portlog-a"]["environment"].items()}
    environment["PORTLOG_ADMIN_PASSWORD"] = "Change-Me-1"
    settings = Settings.from_env(environment)
    assert settings.event_database.kind == "postgres" and settings.storage.kind == "s3"
    assert settings.storage.endpoint == "minio:9000" and settings.storage.bucket == "portlog"
    assert settings.events.nats_url == "nats://nats:4222"  # the event relay is on in scale-out
    assert services["portlog-b"]["environment"] == services["portlog-a"]["environment"]


def test_nodes_believe_forwarding_headers_from_nginx_alone():
    """nginx sets X-Forwarded-For; Portlog believes it only from a trusted proxy's address."""
    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    environment = {key: str(value) for key, value in compose["services"]["portlog-a"]["environment"].items()}
    environment["PORTLOG_ADMIN_PASSWORD"] = "Change-Me-1"
    nginx_address = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    assert [str(n) for n in Settings.from_env(environment).trusted_proxies] == [f"{nginx_address}/32"]
    assert "X-Forwarded-For" in (COMPOSE / "nginx.conf").read_text()


def test_nginx_streams_to_both_nodes():
    conf = (COMPOSE / "nginx.conf").read_text()
    assert "server portlog-a:5000" in conf and "server portlog-b:5000" in conf
    for directive in ("client_max_body_size 0;", "proxy_request_buffering off;", "proxy_buffering off;"):
        assert directive in conf


def test_prometheus_scrapes_every_node_on_its_metrics_port():
    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    nodes = [name for name in compose["services"] if name.startswith("portlog-")]
    prometheus = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    [job] = prometheus["scrape_configs"]
    targets = job["static_configs"][0]["targets"]
    for node in nodes:
        environment = {key: str(value) for key, value in compose["services"][node]["environment"].items()}
        environment["PORTLOG_ADMIN_PASSWORD"] = "Change-Me-1"
        metrics = Settings.from_env(environment).metrics
        assert metrics.enabled and metrics.host == "0.0.0.0"
        assert f"{node}:{metrics.port}" in targets
    assert "ports" not in str(compose["services"]["portlog-a"])  # the metrics port stays on the compose network


def test_promtool_accepts_the_configuration_and_the_alerts():
    """Debian's promtool (scripts/install-system-packages installs prometheus)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with the prometheus package"
    for command in (["check", "config", "prometheus.yml"], ["check", "rules", "portlog-alerts.yml"]):
        result = subprocess.run([promtool, *command], cwd=COMPOSE, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_documented_alerts_are_the_shipped_ones():
    docs = (COMPOSE.parents[1] / "docs" / "operations.md").read_text()
    documented = docs.split("### Example alerts", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(documented) == yaml.safe_load((COMPOSE / "portlog-alerts.yml").read_text())


def test_grafana_provisioning_finds_the_dashboard_and_its_data_source():
    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in grafana["volumes"])
    provider = yaml.safe_load((COMPOSE / "grafana" / "dashboards" / "portlog.yaml").read_text())["providers"][0]
    dashboard_path = mounts["../grafana/portlog-dashboard.json"]
    assert dashboard_path.startswith(provider["options"]["path"] + "/")
    assert (COMPOSE / "../grafana/portlog-dashboard.json").is_file()
    source = yaml.safe_load((COMPOSE / "grafana" / "datasources" / "prometheus.yaml").read_text())["datasources"][0]
    assert source["url"] == "http://prometheus:9090" and source["isDefault"]
    # a provisioned dashboard gets no import inputs: its ${DS_PROMETHEUS} must be a variable of its own
    board = json.loads((COMPOSE / "../grafana/portlog-dashboard.json").read_text())
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    used = {panel["datasource"]["uid"] for panel in board["panels"] if "datasource" in panel}
    assert used == {"${DS_PROMETHEUS}"}
