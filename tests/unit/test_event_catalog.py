from __future__ import annotations

from adapters.cloudevents import cloudevent
from domain.account import User
from domain.context import RequestContext
from domain.event_catalog import describe
from domain.manifests import parse_manifest
from domain.repository import Repository
from tests.support.oci import digest_of, image_manifest

CTX = RequestContext("alice", "req-1", "10.0.0.7")


def test_a_manifest_push_and_its_tag_in_public_words():
    repo = Repository.create("team/app", CTX)
    for blob in (b"{}", b"layer"):
        repo.link_blob(digest_of(blob), len(blob), CTX)
    repo.collect_events()
    manifest = parse_manifest(image_manifest(b"{}", [b"layer"]), None, None)
    repo.push_manifest(manifest, "v1", CTX)
    pushed, tagged = (describe(e) for e in repo.collect_events())
    assert (pushed.type, pushed.operation) == ("artifact.pushed", "repository.manifest_pushed")
    assert pushed.resource == f"team/app@{manifest.digest}" and pushed.project == "team"
    assert (tagged.type, tagged.resource, tagged.actor) == ("tag.created", "team/app:v1", "alice")


def test_secrets_never_leave_and_the_envelope_is_a_cloudevent():
    user = User.create("bob", "bob@example.org", "$argon2id$secret-hash", False, CTX)
    public = describe(user.collect_events()[0])
    assert "password_hash" not in public.data and public.type == "user.created"
    envelope = cloudevent(42, public, "portlog-test")
    assert envelope["specversion"] == "1.0" and envelope["id"] == "42" and envelope["portlogposition"] == 42
    assert envelope["type"] == "io.portlog.user.created" and envelope["source"] == "portlog-test"
    assert envelope["data"]["actor"] == "alice" and envelope["data"]["client"] == "10.0.0.7"
    assert "$argon2id$secret-hash" not in str(envelope)
