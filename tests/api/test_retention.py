"""Retention policies through the API, on SQLite and PostgreSQL: a dry run lists exactly what
the real run then deletes, deletions are events attributed to the policy, a dry run evaluated
as of a past time, immutable tags and tags pushed since the plan are spared, the schedule."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from tests.support.auth import PASSWORD, create_user, grant
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, digest_of, push_image

pytestmark = pytest.mark.both_databases

KEEP_TWO_RELEASES = {"rules": [{"template": "latestPushedK", "param": 2, "tags": "v*"}]}


def push_releases(client, name: str, count: int) -> list[str]:
    digests = []
    for i in range(count):
        digests.append(push_image(client, name, f"v{i}", seed=f"{name}-{i}")[0])
        time.sleep(0.01)  # distinct push times
    return digests


def run(client, project: str = "team", **body) -> dict:
    response = client.post(f"/api/v1/projects/{project}/retention/runs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def planned(result: dict) -> set[tuple[str, str]]:
    return {(d["repository"], d["digest"]) for d in result["deleted"]}


def test_a_dry_run_lists_exactly_what_the_real_run_deletes(client):
    old = push_releases(client, "team/app", 4)
    push_image(client, "team/app", "dev", seed="dev")
    assert client.put("/api/v1/projects/team/retention", json=KEEP_TWO_RELEASES).status_code == 200
    dry = run(client, dry_run=True)
    assert dry["status"] == "succeeded" and dry["dry_run"] is True
    dev = client.head("/v2/team/app/manifests/dev").headers["Docker-Content-Digest"]
    assert planned(dry) == {("team/app", old[0]), ("team/app", old[1]), ("team/app", dev)}
    assert client.get("/v2/team/app/tags/list").json()["tags"] == ["dev", "v0", "v1", "v2", "v3"]  # nothing yet
    real = run(client)
    assert planned(real) == planned(dry) and real["skipped"] == []
    assert client.get("/v2/team/app/tags/list").json()["tags"] == ["v2", "v3"]
    runs = client.get("/api/v1/projects/team/retention/runs").json()
    assert [r["id"] for r in runs] == [real["id"], dry["id"]]


def test_deletions_are_events_attributed_to_the_policy(client):
    push_releases(client, "team/app", 3)
    client.put("/api/v1/projects/team/retention", json=KEEP_TWO_RELEASES)
    result = run(client)
    audit = client.get("/api/v1/audit-logs?operation=repository.manifest_deleted").json()
    assert len(audit) == 1
    assert audit[0]["actor"] == "retention:team" and audit[0]["request_id"] == result["run"]
    events = [e["type"] for e in client.get("/api/v1/events?limit=1000").json()]
    assert "io.portlog.retention.started" in events and "io.portlog.retention.completed" in events


def test_a_dry_run_as_of_a_past_time_shows_what_the_policy_would_have_deleted_then(client):
    first = push_releases(client, "team/app", 3)
    then = datetime.now(timezone.utc).isoformat()
    time.sleep(0.05)
    client.delete(f"/v2/team/app/manifests/{first[0]}")  # gone since
    push_releases(client, "team/other", 1)
    client.put("/api/v1/projects/team/retention", json=KEEP_TWO_RELEASES)
    past = run(client, dry_run=True, as_of=then)
    assert past["as_of"] is not None and planned(past) == {("team/app", first[0])}
    now = run(client, dry_run=True)
    assert planned(now) == set()  # today v1 and v2 are the two newest of team/app
    assert client.post("/api/v1/projects/team/retention/runs", json={"as_of": then}).status_code == 409


def test_immutable_tags_and_tags_pushed_since_the_plan_are_spared(client, services):
    digests = push_releases(client, "team/app", 3)
    client.post("/api/v1/projects/team/immutable-tag-rules", json={"tags": "v0"})
    client.put("/api/v1/projects/team/retention", json={"rules": [{"template": "latestPushedK", "param": 1}]})
    result = run(client)
    assert planned(result) == {("team/app", digests[1])}
    [skipped] = result["skipped"]
    assert skipped["digest"] == digests[0] and "immutable" in skipped["reason"]
    # A plan made before a tag moved onto an artifact does not delete it.
    from domain.context import RequestContext
    from domain.errors import ConflictError
    with pytest.raises(ConflictError):
        services.artifacts.delete_manifest_if_tags("team/app", digests[2], (), RequestContext("retention:team", "x"))


def test_an_index_and_the_manifests_it_lists_go_together(client):
    """A manifest an index lists cannot be deleted before the index: the run deletes it after."""
    child, _ = push_image(client, "team/app", "child", seed="child")
    manifests = [{"mediaType": OCI_MANIFEST, "digest": child,
                  "size": int(client.head(f"/v2/team/app/manifests/{child}").headers["Content-Length"])}]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
    client.put("/v2/team/app/manifests/multi", content=index, headers={"Content-Type": OCI_INDEX}).raise_for_status()
    time.sleep(0.01)
    push_image(client, "team/app", "latest", seed="latest")
    client.put("/api/v1/projects/team/retention", json={"rules": [{"template": "latestPushedK", "param": 1}]})
    result = run(client)
    assert planned(result) == {("team/app", child), ("team/app", digest_of(index))} and result["skipped"] == []
    assert client.get("/v2/team/app/tags/list").json()["tags"] == ["latest"]
    assert client.head(f"/v2/team/app/manifests/{child}").status_code == 404


def test_policies_are_validated_and_need_maintainers(client):
    create_user(client, "dev")
    grant(client, "team", "dev", "developer")
    assert client.put("/api/v1/projects/team/retention", json=KEEP_TWO_RELEASES,
                      auth=("dev", PASSWORD)).status_code == 403
    assert client.post("/api/v1/projects/team/retention/runs", json={}).status_code == 404  # no policy yet
    bad = [{"rules": [{"template": "keepEverything"}]}, {"rules": [{"template": "latestPushedK", "param": -1}]},
           {"rules": [{"template": "always", "tags": "["}]}, {"rules": "all"}, {"rules": [], "cron": "61 * * * *"}]
    for body in bad:
        assert client.put("/api/v1/projects/team/retention", json=body).status_code == 422, body
    response = client.put("/api/v1/projects/team/retention", json={**KEEP_TWO_RELEASES, "cron": "0 3 * * *"})
    assert response.json()["cron"] == "0 3 * * *"
    assert client.delete("/api/v1/projects/team/retention").status_code == 204
    assert client.get("/api/v1/projects/team/retention").status_code == 404


def test_the_scheduler_runs_a_policy_once_per_slot(client, services):
    from background import scheduler

    push_releases(client, "team/app", 3)
    client.put("/api/v1/projects/team/retention", json={**KEEP_TWO_RELEASES, "cron": "* * * * * *"})
    checked = datetime.now(timezone.utc)
    time.sleep(1.1)
    now = datetime.now(timezone.utc)
    scheduler.start_due_retention(services, checked, now)
    scheduler.start_due_retention(services, checked, now)  # another node, the same slot
    services.projections.catch_up()
    runs = client.get("/api/v1/projects/team/retention/runs").json()
    assert len(runs) == 1 and runs[0]["trigger"] == "schedule" and len(runs[0]["deleted"]) == 1


def test_a_dry_run_as_of_a_time_before_the_log_says_nothing_existed_then(client):
    push_releases(client, "team/app", 3)
    client.put("/api/v1/projects/team/retention", json=KEEP_TWO_RELEASES)
    before = run(client, dry_run=True, as_of="2000-01-01T00:00:00Z")
    assert datetime.fromisoformat(before["as_of"]) == datetime(2000, 1, 1, tzinfo=timezone.utc)  # not moved
    assert before["deleted"] == [] and before["retained"] == 0
    assert before["note"].startswith("nothing existed then: the log begins at ")
    assert datetime.fromisoformat(before["note"].rsplit(" ", 1)[1]) > datetime(2000, 1, 1, tzinfo=timezone.utc)
    then = datetime.now(timezone.utc)
    time.sleep(0.05)
    push_releases(client, "team/app", 1)
    at = run(client, dry_run=True, as_of=then.isoformat())
    assert datetime.fromisoformat(at["as_of"]) == then and "note" not in at  # the moment asked for, exactly
    assert len(at["deleted"]) == 1


def test_the_cli_dry_run_as_of_before_the_log_says_so(client, settings, capsys, monkeypatch):
    from cli.main import main

    client.put("/api/v1/projects/team/retention", json=KEEP_TWO_RELEASES)
    if settings.event_database.kind == "postgres":
        monkeypatch.setenv("PORTLOG_DATABASE_URL", settings.event_database.url())
    assert main(["retention", "run", "team", "--dry-run", "--as-of", "2000-01-01T00:00:00Z",
                 "--data-dir", str(settings.data_dir)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert datetime.fromisoformat(answer["as_of"]) == datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert answer["note"].startswith("nothing existed then: the log begins at ")
