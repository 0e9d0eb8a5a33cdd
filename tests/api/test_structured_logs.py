"""The access line and log.format = json, read from a live `portlog serve`'s own log: every line
one JSON object, the access line's fields right, per-logger levels obeyed, no secret written."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.support.oci import push_image
from tests.support.server import ADMIN_PASSWORD, start_server
from tests.support.waiting import wait_until

SECRET = "Hunter2-Secret-Query"


@pytest.fixture(scope="module")
def json_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("json-logs")
    # uvicorn's own info lines ("Started server process") are held back by their logger's level.
    env = {"PORTLOG_LOG_FORMAT": "json", "PORTLOG_LOG_LEVELS": "uvicorn.error=warning"}
    server = start_server(root / "data", root / "serve.log", extra_env=env, projects=("team",), access_log=True)
    yield server
    server.stop()


def log_lines(server) -> list[dict]:
    return [json.loads(line) for line in server.log_path.read_text().splitlines()]  # fails on any other line


def access_line(server, request_id: str) -> dict:
    def found():
        return next((line for line in log_lines(server)
                     if line["logger"] == "portlog.access" and line.get("request_id") == request_id), None)
    return wait_until(found, timeout=5)


def test_every_line_is_json_and_the_access_line_has_its_fields(json_server):
    with json_server.client() as client:
        _, manifest = push_image(client, "team/logged", "v1")
        pulled = client.get("/v2/team/logged/manifests/v1")
    assert pulled.status_code == 200
    line = access_line(json_server, pulled.headers["X-Request-Id"])
    fields = ("level", "method", "route", "path", "status", "bytes", "user", "repository")
    assert {key: line[key] for key in fields} == {
        "level": "info", "method": "GET", "route": "/v2/{name:path}/manifests/{reference}",
        "path": "/v2/team/logged/manifests/v1", "status": 200, "bytes": len(manifest), "user": "admin",
        "repository": "team/logged"}
    assert line["duration_ms"] > 0 and line["client"] == "127.0.0.1" and line["time"].endswith("+00:00")

    lines = log_lines(json_server)
    assert any(line["logger"] == "portlog" and line["message"].startswith("ready on http://") for line in lines)
    assert not [line for line in lines if line["logger"].startswith("uvicorn") and line["level"] == "info"]


def test_harbor_and_anonymous_requests(json_server):
    listed = httpx.get(f"{json_server.url}/api/v2.0/projects/team/repositories", auth=("admin", ADMIN_PASSWORD))
    line = access_line(json_server, listed.headers["X-Request-Id"])
    assert (line["route"], line["user"], line["repository"]) == ("/api/v2.0/projects/{project}/repositories",
                                                                 "admin", None)
    refused = httpx.get(f"{json_server.url}/api/v2.0/users")
    line = access_line(json_server, refused.headers["X-Request-Id"])
    assert (line["status"], line["user"], line["route"]) == (401, None, "/api/v2.0/users")
    unknown = httpx.get(f"{json_server.url}/nowhere/at/all")
    assert access_line(json_server, unknown.headers["X-Request-Id"])["route"] is None
    probe = httpx.get(f"{json_server.url}/readyz")  # probes log at debug level: not at info
    after = httpx.get(f"{json_server.url}/v2/")
    access_line(json_server, after.headers["X-Request-Id"])  # written after the probe's would have been
    assert probe.status_code == 200 and probe.headers["X-Request-Id"] not in json_server.log_path.read_text()


def test_no_secret_reaches_the_log(json_server):
    """Passwords in a query string or the Authorization header never appear, nor do tokens."""
    with_query = httpx.get(f"{json_server.url}/service/token", params={"password": SECRET, "service": "portlog"},
                           auth=("admin", ADMIN_PASSWORD))
    token = with_query.json()["token"]
    bearer = httpx.get(f"{json_server.url}/v2/", headers={"Authorization": f"Bearer {token}"})
    assert access_line(json_server, bearer.headers["X-Request-Id"])["user"] == "admin"
    text = json_server.log_path.read_text()
    basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    assert SECRET not in text and ADMIN_PASSWORD not in text and basic not in text and token not in text


def test_text_format_access_line(tmp_path):
    server = start_server(tmp_path / "data", tmp_path / "serve.log", access_log=True)
    try:
        response = httpx.get(f"{server.url}/v2/")
        request_id = response.headers["X-Request-Id"]
        line = wait_until(lambda: next((line for line in server.log_path.read_text().splitlines()
                                        if request_id in line), None), timeout=5)
        assert line.startswith("INFO      portlog.access: GET /v2/ 401 ")
        assert line.endswith(f"user=- repository=- request_id={request_id}")
    finally:
        server.stop()
