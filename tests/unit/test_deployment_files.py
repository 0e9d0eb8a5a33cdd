"""infra/compose: the node configuration it ships is one Portlog accepts."""

from __future__ import annotations

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
