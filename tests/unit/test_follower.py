"""What a follower needs to know of events and of its settings (domain/follower.py, config)."""

from __future__ import annotations

import pytest

from config.settings import ConfigError, FollowConfig, Settings
from domain.blob import Blob
from domain.context import RequestContext
from domain.follower import FollowStatus, digests_to_delete, digests_to_store, kept_by
from domain.permissions import Principal, RobotPermission, system_permissions
from domain.project import Project
from domain.repository import Repository

CTX = RequestContext("alice", "r1")
DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def test_events_that_refer_to_stored_bytes_name_them_and_others_nothing():
    repository = Repository.create("team/app", CTX)
    repository.link_blob(DIGEST, 3, CTX)
    linked = repository.collect_events()[-1]
    assert digests_to_store(linked) == [DIGEST]
    assert digests_to_store(Project.create("team", False, CTX).collect_events()[0]) == []


def collected(digest: str) -> Blob.Collected:
    blob = Blob.create(digest, CTX)
    blob.condemn("run", CTX)
    blob.mark_collected("run", 3, CTX)
    return blob.collect_events()[-1]


def linked(digest: str) -> Repository.BlobLinked:
    repository = Repository.create("team/app", CTX)
    repository.link_blob(digest, 3, CTX)
    return repository.collect_events()[-1]


def test_a_batch_deletes_what_it_collected_unless_a_later_event_needs_it_again():
    assert digests_to_delete([linked(DIGEST), collected(DIGEST), collected(OTHER)]) == [DIGEST, OTHER]
    assert digests_to_delete([collected(DIGEST), linked(DIGEST), collected(OTHER)]) == [OTHER]
    assert digests_to_delete([collected(DIGEST), linked(DIGEST), collected(DIGEST)]) == [DIGEST]
    assert digests_to_delete([linked(DIGEST)]) == []


def test_a_project_filter_keeps_its_projects_and_what_belongs_to_none():
    team = Project.create("team", False, CTX).collect_events()[0]
    other = Project.create("other", False, CTX).collect_events()[0]
    assert kept_by(frozenset({"team"}), team) and not kept_by(frozenset({"team"}), other)
    assert kept_by(None, other)


def test_lag_in_events_never_goes_below_zero():
    status = FollowStatus("http://leader", "following", 10, 7, 0.0, None)
    assert status.lag_events == 0 and status.to_json()["lag_events"] == 0


def test_only_a_system_robot_entry_on_every_project_grants_event_log_read():
    holder = Principal("robot$f", "robot", robot_permissions=(RobotPermission("*", "event-log", "read"),))
    narrow = Principal("robot$g", "robot", robot_permissions=(RobotPermission("team", "event-log", "read"),))
    assert ("event-log", "read") in system_permissions(holder)
    assert ("event-log", "read") not in system_permissions(narrow)


def test_follow_settings_from_variables_and_flags():
    settings = Settings.from_env({"PORTLOG_FOLLOW_URL": "http://leader:5000/", "PORTLOG_FOLLOW_USERNAME": "robot$f",
                                  "PORTLOG_FOLLOW_PASSWORD": "s3cret", "PORTLOG_FOLLOW_PROJECTS": "team, race"})
    assert settings.follow == FollowConfig("http://leader:5000", "robot$f", "s3cret", ("team", "race"))
    assert settings.effective()["follow"]["password"] == "***"
    assert Settings.from_env(settings.as_environment()).follow == settings.follow
    assert Settings.from_env({}, follow="https://leader").follow.url == "https://leader"
    assert Settings.from_env({}).follow.url is None


@pytest.mark.parametrize("url", ["ftp://leader", "http://user:pw@leader", "http://leader/path"])
def test_a_follow_url_is_an_origin(url):
    with pytest.raises(ConfigError, match="PORTLOG_FOLLOW_URL"):
        Settings.from_env({"PORTLOG_FOLLOW_URL": url})
