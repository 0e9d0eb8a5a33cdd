"""The audit trail: every state change, attributed; filters, cursor pagination, exports."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from domain.repository import Repository
from projections.audit import bounded_details
from tests.support.auth import PASSWORD, create_user, grant
from tests.support.oci import push_image

pytestmark = pytest.mark.both_databases


def entries(client, **params) -> list[dict]:
    response = client.get("/api/v1/audit-logs", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_change_is_in_the_trail_with_who_and_where(client):
    create_user(client, "dev")
    grant(client, "team", "dev", "developer")
    client.auth = ("dev", PASSWORD)
    digest, _ = push_image(client, "team/app", "1.0")
    client.auth = ("admin", "Portlog-Test-1")
    client.delete(f"/v2/team/app/manifests/{digest}")
    operations = [(e["actor"], e["operation"]) for e in entries(client, project="team", limit=1000)]
    assert ("admin", "project.member_added") in operations
    assert ("dev", "repository.created") in operations
    assert ("dev", "repository.manifest_pushed") in operations
    assert ("dev", "repository.tag_pointed") in operations
    assert ("admin", "repository.tag_deleted") in operations
    assert ("admin", "repository.manifest_deleted") in operations
    pushed = entries(client, operation="repository.tag_pointed", repository="team/app")[0]
    assert pushed["resource"] == "team/app:1.0" and pushed["source"] == "testclient"
    assert pushed["request_id"] and pushed["result"] == "success"
    assert pushed["details"]["digest"] == digest


def test_failed_logins_and_secrets(client):
    create_user(client, "victim")
    client.get("/service/token", auth=("victim", "wrong"))
    failed = entries(client, operation="user.logins_failed")
    assert failed[0]["result"] == "failure" and failed[0]["details"]["count"] == 1
    created = entries(client, operation="user.created", actor="admin")
    assert all("password_hash" not in e["details"] for e in created)


def test_filters_and_cursor_pagination(client):
    for tag in ("a", "b", "c"):
        push_image(client, "team/app", tag, seed=tag)
    first = entries(client, repository="team/app", limit=2)
    assert len(first) == 2
    rest = entries(client, repository="team/app", after=first[-1]["position"], limit=1000)
    assert {e["position"] for e in first}.isdisjoint(e["position"] for e in rest)
    everything = entries(client, repository="team/app", limit=1000)
    assert [e["position"] for e in first + rest] == [e["position"] for e in everything]
    assert entries(client, actor="nobody") == []
    until = everything[0]["occurred_at"]
    assert entries(client, repository="team/app", until=until) == []


def test_export_round_trip(client):
    push_image(client, "team/app", "x")
    listed = entries(client, limit=1000)
    jsonl = client.get("/api/v1/audit-logs", params={"format": "jsonl"})
    exported = [orjson.loads(line) for line in jsonl.content.splitlines()]
    assert [e["position"] for e in exported] == [e["position"] for e in listed]
    assert exported == orjson.loads(orjson.dumps(listed))
    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/audit-logs", params={"format": "csv"}).text)))
    assert [int(r["position"]) for r in rows] == [e["position"] for e in listed]
    assert [orjson.loads(r["details"]) for r in rows] == [e["details"] for e in listed]


def test_only_administrators_see_the_whole_trail(client):
    create_user(client, "guest")
    grant(client, "team", "guest", "limited_guest")
    assert client.get("/api/v1/audit-logs", auth=("guest", PASSWORD)).status_code == 403
    assert client.get("/api/v1/audit-logs?project=team", auth=("guest", PASSWORD)).status_code == 403
    grant(client, "team", "guest", "guest")
    assert client.get("/api/v1/audit-logs?project=team", auth=("guest", PASSWORD)).status_code == 200


def test_the_next_link_keeps_the_filter(client):
    for tag in ("a", "b", "c"):
        push_image(client, "team/app", tag, seed=tag)
    response = client.get("/api/v1/audit-logs", params={"repository": "team/app", "limit": 2})
    target = response.headers["Link"].split(">")[0].lstrip("<")
    following = client.get(target).json()
    assert following and all(e["repository"] == "team/app" for e in following)
    assert following[0]["position"] > response.json()[-1]["position"]


def test_newest_first_with_the_before_cursor(client):
    for tag in ("a", "b", "c"):
        push_image(client, "team/app", tag, seed=tag)
    oldest_first = entries(client, repository="team/app", limit=1000)
    response = client.get("/api/v1/audit-logs", params={"repository": "team/app", "order": "desc", "limit": 2})
    first_page = response.json()
    assert [e["position"] for e in first_page] == [e["position"] for e in reversed(oldest_first)][:2]
    rest = client.get(response.headers["Link"].split(">")[0].lstrip("<")).json()
    assert [e["position"] for e in first_page + rest] == [e["position"] for e in reversed(oldest_first)][:2 + len(rest)]
    exported = client.get("/api/v1/audit-logs", params={"repository": "team/app", "order": "desc", "format": "jsonl"})
    positions = [orjson.loads(line)["position"] for line in exported.text.splitlines()]
    assert positions == [e["position"] for e in reversed(oldest_first)]
    assert client.get("/api/v1/audit-logs", params={"order": "sideways"}).status_code == 422


def test_entries_carry_a_bounded_summary_and_the_event_keeps_everything(client, services):
    """A 4 MiB annotation is not copied into the trail (nor many references, nor long keys)."""
    huge = "x" * (4 * 1024 * 1024 - 2048)
    digest, _ = push_image(client, "team/app", "big", annotations={"org.example.huge": huge, "small": "kept"})
    [pushed] = entries(client, operation="repository.manifest_pushed", repository="team/app")
    details = pushed["details"]
    assert len(orjson.dumps(details)) < 8 * 1024 and details["truncated"] is True
    assert details["digest"] == digest and details["annotations"]["org.example.huge"].endswith("…")
    tagged = entries(client, operation="repository.tag_pointed", repository="team/app")[0]["details"]
    assert "truncated" not in tagged and tagged["tag"] == "big"

    [event] = [e for e in services.registry.events.get(Repository.create_id("team/app"))
               if isinstance(e, Repository.ManifestPushed)]
    assert event.annotations == {"org.example.huge": huge, "small": "kept"}


def test_a_summary_cuts_strings_lists_and_the_whole():
    assert bounded_details({"tag": "v1", "n": 3}) == {"tag": "v1", "n": 3}
    cut = bounded_details({"s": "y" * 1000, "items": list(range(100)), "deep": {"k": ["z" * 600] * 20}})
    assert cut["s"] == "y" * 512 + "…" and cut["items"] == list(range(64)) and cut["truncated"] is True
    assert len(orjson.dumps(cut)) < 5 * 1024


def test_a_burst_of_failed_logins_is_stamped_with_the_time_of_its_attempts(client, services):
    """The aggregated row was stamped when it was written (up to a minute later than any attempt)."""
    import time
    from datetime import datetime, timezone

    from domain.account import User

    create_user(client, "target")
    started = datetime.now(timezone.utc)
    for _ in range(3):
        assert client.get("/service/token", auth=("target", "wrong")).status_code == 401
    attempted = datetime.now(timezone.utc)
    time.sleep(1.1)  # the window closes later than the attempts
    services.authenticator.flush_failed_logins(force=True)
    first, burst = entries(client, operation="user.logins_failed", actor="target")
    assert (first["details"]["count"], burst["details"]["count"]) == (1, 2)
    for row in (first, burst):
        first_at, last_at = (datetime.fromisoformat(row["details"][f]) for f in ("first_attempt_at",
                                                                                   "last_attempt_at"))
        assert started <= first_at <= last_at <= attempted, row
        assert datetime.fromisoformat(row["occurred_at"]) == first_at
    assert burst["details"]["first_attempt_at"] > first["details"]["last_attempt_at"]
    [recorded] = [e for e in services.registry.events.get(User.create_id("target"))
                  if isinstance(e, User.LoginsFailed) and e.count == 2]
    assert recorded.timestamp > attempted  # the event was written later; the row says when it happened
    services.projections.rebuild()
    assert entries(client, operation="user.logins_failed", actor="target") == [first, burst]


def test_failed_logins_recorded_before_attempt_times_existed_keep_the_event_time(client, services):
    from eventsourcing.persistence import StoredEvent

    create_user(client, "target")
    client.get("/service/token", auth=("target", "wrong"))
    stored = services.registry.recorder.select_notifications(start=None, limit=10_000)[-1]
    state = orjson.loads(stored.state)
    assert state.pop("first_attempt_at") and state.pop("last_attempt_at")
    old = services.registry.mapper.to_domain_event(StoredEvent(
        stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(state)))
    assert old.count == 1 and old.first_attempt_at is None and old.last_attempt_at is None
    from projections.audit import describe
    assert describe(old)["occurred_at"] == old.timestamp
