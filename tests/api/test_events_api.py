"""The event log for subscribers: GET /api/v1/events and `portlog events tail`."""

from __future__ import annotations

import orjson
import pytest

from cli.main import main
from domain.event_catalog import is_public
from tests.support.auth import PASSWORD, create_user, grant
from tests.support.oci import push_image

pytestmark = pytest.mark.both_databases


def public_positions(services) -> list[int]:
    notifications = services.registry.recorder.select_notifications(start=1, limit=100_000)
    return [n.id for n in notifications if is_public(services.registry.mapper.to_domain_event(n))]


def all_pages(client, url: str) -> list[dict]:
    events = []
    while True:
        response = client.get(url)
        assert response.status_code == 200, response.text
        if not response.json():
            return events
        events += response.json()
        url = response.headers["Link"].split(">")[0].lstrip("<")


def test_the_log_page_by_page_equals_the_log(client, services):
    push_image(client, "team/app", "v1", seed="a")
    push_image(client, "race/app", "v1", seed="b")
    events = all_pages(client, "/api/v1/events?after=0&limit=3")
    assert [e["portlogposition"] for e in events] == public_positions(services)
    assert [e["id"] for e in events] == [str(e["portlogposition"]) for e in events]
    pushed = [e for e in events if e["type"] == "io.portlog.artifact.pushed"]
    assert [e["data"]["repository"] for e in pushed] == ["team/app", "race/app"]
    assert all(e["specversion"] == "1.0" and e["source"] == "portlog" for e in events)


def test_types_filter_with_globs(client):
    push_image(client, "team/app", "v1")
    events = client.get("/api/v1/events", params={"type": "tag.*,artifact.pushed", "limit": 1000}).json()
    assert {e["type"] for e in events} == {"io.portlog.tag.created", "io.portlog.artifact.pushed"}


def test_members_see_their_projects_events_only(client):
    create_user(client, "dev")
    grant(client, "team", "dev", "developer")
    push_image(client, "team/app", "v1", seed="a")
    push_image(client, "race/app", "v1", seed="b")
    events = client.get("/api/v1/events?limit=1000", auth=("dev", PASSWORD)).json()
    assert events and {e["data"]["project"] for e in events} == {"team"}
    assert client.get("/api/v1/events", auth=None).status_code == 401
    assert client.get("/api/v1/events?after=-1").status_code == 422


def test_events_tail_prints_the_log_as_json_lines(client, services, settings, capsys, monkeypatch):
    push_image(client, "team/app", "v1")
    expected = public_positions(services)
    data_dir = ["--data-dir", str(settings.data_dir)]
    if settings.event_database.kind == "postgres":
        monkeypatch.setenv("PORTLOG_DATABASE_URL", settings.event_database.url())
    assert main(["events", "tail", "--from", "1", *data_dir]) == 0
    assert [orjson.loads(line)["portlogposition"] for line in capsys.readouterr().out.splitlines()] == expected
    assert main(["events", "tail", "--from", "1", "--type", "artifact.*", *data_dir]) == 0
    assert {orjson.loads(line)["type"] for line in capsys.readouterr().out.splitlines()} == {
        "io.portlog.artifact.pushed"}
    assert main(["events", "tail", *data_dir]) == 0  # the last ten
    assert [orjson.loads(line)["portlogposition"] for line in capsys.readouterr().out.splitlines()] == [
        p for p in expected if p > max(expected) - 10]
    assert main(["events", "tail", "--since", "yesterday", *data_dir]) == 1
