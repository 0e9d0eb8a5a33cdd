"""Pulls are counted in memory and recorded once per interval (domain/pulls.py): the pull path
writes nothing, and "last pulled" comes from the recorded events."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from background.pulls import flush_pulls
from domain.context import SYSTEM
from domain.repository import Repository
from tests.support.auth import bearer, token
from tests.support.oci import OCI_MANIFEST, push_image
from tests.support.server import ADMIN_PASSWORD

pytestmark = pytest.mark.both_databases


def log_length(services) -> int:
    return services.registry.recorder.max_notification_id()


def recorded_pulls(services) -> list:
    notifications = services.registry.recorder.select_notifications(start=1, limit=10_000)
    events = [services.registry.mapper.to_domain_event(n) for n in notifications]
    return [e for e in events if isinstance(e, Repository.PullsRecorded)]


def test_pulls_are_counted_then_recorded_once_per_interval(client, services):
    digest, _ = push_image(client, "team/app", "v1")
    before = log_length(services)
    for reference in ("v1", "v1", digest):
        assert client.get(f"/v2/team/app/manifests/{reference}", headers={"Accept": OCI_MANIFEST}).status_code == 200
    client.head("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST})  # a HEAD is no pull
    assert log_length(services) == before  # nothing written on the pull path

    flush_pulls(services)
    [event] = recorded_pulls(services)
    counts = {(p["tag"], p["actor"]): p["count"] for p in event.pulls}
    assert counts == {("v1", "admin"): 2, (None, "admin"): 1}
    assert event.actor == "system" and all(p["digest"] == digest for p in event.pulls)

    flush_pulls(services)
    assert len(recorded_pulls(services)) == 1  # nothing new was pulled: no event

    services.projections.catch_up()
    count, last = services.pulls.of_artifacts("team/app", [digest])[digest]
    assert count == 3 and last is not None
    assert services.pulls.of_tags("team/app", ["v1"])["v1"][0] == 2


def test_harbor_artifacts_show_the_last_pull(client, services):
    digest, _ = push_image(client, "team/app", "v1")
    artifact = client.get("/api/v2.0/projects/team/repositories/app/artifacts").json()[0]
    assert artifact["pull_time"] is None and artifact["tags"][0]["pull_time"] is None
    client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    flush_pulls(services)
    services.projections.catch_up()
    artifact = client.get("/api/v2.0/projects/team/repositories/app/artifacts").json()[0]
    assert artifact["digest"] == digest and artifact["pull_time"] is not None
    assert artifact["tags"][0]["pull_time"] is not None


def test_counts_that_could_not_be_recorded_are_kept_for_the_next_interval(services):
    services.pull_counter.count("team/gone", "sha256:" + "a" * 64, "v1", "admin")
    taken = services.pull_counter.take()
    services.pull_counter.give_back("team/gone", taken["team/gone"])
    again = services.pull_counter.take()
    assert again["team/gone"][0]["count"] == 1


def test_counts_add_up_and_the_latest_pull_time_stays_whatever_the_order(client, services):
    digest, _ = push_image(client, "team/app", "v1")
    later, earlier = "2026-11-22T10:00:00+00:00", "2026-11-22T09:00:00+00:00"
    for when, count in ((later, 2), (earlier, 5)):  # a slower node's counts arrive last
        services.artifacts.record_pulls("team/app", [{"digest": digest, "tag": "v1", "actor": "admin",
                                                      "count": count, "last_pulled_at": when}], SYSTEM)
    services.projections.catch_up()
    count, last = services.pulls.of_artifacts("team/app", [digest])[digest]
    as_utc = last if last.tzinfo else last.replace(tzinfo=timezone.utc)  # SQLite gives naive UTC back
    assert count == 7 and as_utc == datetime.fromisoformat(later)


def test_harbor_repositories_count_their_pulls(client, services):
    push_image(client, "team/app", "v1")
    push_image(client, "team/other", "v1")
    for _ in range(3):
        client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    flush_pulls(services)
    services.projections.catch_up()
    listed = {r["name"]: r["pull_count"] for r in client.get("/api/v2.0/projects/team/repositories").json()}
    assert listed["team/app"] == 3 and listed["team/other"] == 0
    assert client.get("/api/v2.0/projects/team/repositories/app").json()["pull_count"] == 3


def test_the_web_ui_reading_manifests_through_its_session_pulls_nothing(client, services):
    """The artifact page reads the manifest through /v2/ with the UI session: a view, not a pull;
    a registry client's token pull still counts."""
    digest, _ = push_image(client, "team/app", "v1")
    signed_in = client.post("/c/login", data={"principal": "admin", "password": ADMIN_PASSWORD}, auth=None)
    assert signed_in.status_code == 200 and "sid" in client.cookies
    for _ in range(3):
        viewed = client.get(f"/v2/team/app/manifests/{digest}", headers={"Accept": OCI_MANIFEST}, auth=None)
        assert viewed.status_code == 200
    assert client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST}, auth=None).status_code == 200
    flush_pulls(services)
    services.projections.catch_up()
    assert client.get("/api/v2.0/projects/team/repositories/app").json()["pull_count"] == 0
    assert client.get(f"/api/v2.0/projects/team/repositories/app/artifacts/{digest}").json()["pull_time"] is None

    pull_token = token(client, ["repository:team/app:pull"], ("admin", ADMIN_PASSWORD))
    pulled = client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST, **bearer(pull_token)}, auth=None)
    assert pulled.status_code == 200
    flush_pulls(services)
    services.projections.catch_up()
    assert client.get("/api/v2.0/projects/team/repositories/app").json()["pull_count"] == 1
    assert services.pulls.of_tags("team/app", ["v1"])["v1"][0] == 1
