"""The relay's subjects and messages: `portlog.<project>.<type>`, one token per project."""

from __future__ import annotations

import orjson
import pytest

from adapters.nats_relay import message_for, project_token, subject_for
from domain.account import User
from domain.context import RequestContext
from domain.repository import Repository

CTX = RequestContext("alice", "req-1", "10.0.0.7")


def test_a_project_event_goes_under_its_project_and_type():
    assert subject_for("team", "artifact.pushed") == "portlog.team.artifact.pushed"
    assert subject_for("team", "project.member_added") == "portlog.team.project.member_added"


def test_events_about_no_project_go_under_an_underscore():
    assert subject_for(None, "user.created") == "portlog._.user.created"


@pytest.mark.parametrize("project, token", [
    ("team.web", "team%2Eweb"), ("a.b.c", "a%2Eb%2Ec"), ("team-web", "team-web"), ("team_web", "team_web"),
    ("team__web", "team__web"), ("100%", "100%25"), ("x*y>z", "x%2Ay%3Ez"),
])
def test_a_project_name_is_one_subject_token(project, token):
    assert project_token(project) == token
    assert subject_for(project, "tag.created").split(".")[1] == token


def test_distinct_projects_get_distinct_tokens():
    names = ["team.web", "team-web", "team_web", "team__web", "teamweb", "team%2Eweb"]
    assert len({project_token(name) for name in names}) == len(names)


def test_a_public_event_becomes_a_cloudevent_with_its_position_in_the_headers():
    repo = Repository.create("team.web/app", CTX)
    repo.link_blob("sha256:" + "a" * 64, 2, CTX)
    linked = repo.collect_events()[-1]
    message = message_for(17, linked, "reg-1")
    assert message.subject == "portlog.team%2Eweb.blob.linked"
    assert message.headers == {"Nats-Msg-Id": "reg-1-17", "Portlog-Position": "17"}
    body = orjson.loads(message.body)
    assert (body["id"], body["source"], body["type"]) == ("17", "reg-1", "io.portlog.blob.linked")
    assert body["data"]["repository"] == "team.web/app" and body["data"]["size"] == 2


def test_a_user_event_has_no_project_and_no_secret():
    created = User.create("bob", "bob@example.org", "$argon2id$secret-hash", False, CTX).collect_events()[0]
    message = message_for(3, created, "portlog")
    assert message.subject == "portlog._.user.created"
    assert b"secret-hash" not in message.body


def test_an_internal_event_is_not_published():
    class Internal:
        pass

    assert message_for(5, Internal(), "portlog") is None
