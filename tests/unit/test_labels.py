"""Labels as aggregates and on artifacts, and how event-based replication judges artifacts by
their labels."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from background.replication_events import tasks_for
from domain.context import RequestContext
from domain.errors import ConflictError, InvalidInputError, ManifestUnknownError, NotFoundError
from domain.labels import Label, LabelKey
from domain.manifests import OCI_MANIFEST, Descriptor, ParsedManifest
from domain.replication import Filter, PolicySettings
from domain.repository import Repository
from projections.replication import PolicyRow

CTX = RequestContext("alice", "req-1")
CONFIG = Descriptor("application/vnd.oci.image.config.v1+json", "sha256:" + "1" * 64, 10)
IMAGE = ParsedManifest(digest="sha256:" + "a" * 64, media_type=OCI_MANIFEST, size=300, config=CONFIG)
OTHER = ParsedManifest(digest="sha256:" + "b" * 64, media_type=OCI_MANIFEST, size=301, config=CONFIG)


def repository_with_images() -> Repository:
    repo = Repository.create("team/app", CTX)
    repo.link_blob(CONFIG.digest, CONFIG.size, CTX)
    repo.push_manifest(IMAGE, "v1", CTX)
    repo.push_manifest(OTHER, "v2", CTX)
    return repo


@pytest.mark.parametrize("key", [
    LabelKey("x", None, "a"), LabelKey("g", "team", "a"), LabelKey("p", None, "a"), LabelKey("g", None, ""),
    LabelKey("g", None, " "), LabelKey("g", None, "n" * 129), LabelKey("g", None, 7),
])
def test_bad_label_keys_are_refused(key):
    with pytest.raises(InvalidInputError):
        Label.create(key, "", "", CTX)


def test_a_label_is_found_by_scope_project_and_name_and_lives_again_once_deleted():
    key = LabelKey("p", "team", "release")
    label = Label.create(key, "#00FF00", "ready to ship", CTX)
    assert label.id == Label.create_id(key) != Label.create_id(LabelKey("g", None, "release"))
    label.update("#00FF00", "ready to ship", CTX)  # nothing changed: nothing recorded
    label.update("#FF0000", "ready to ship", CTX)
    with pytest.raises(ConflictError):
        label.recreate("", "", CTX)
    with pytest.raises(InvalidInputError):
        label.update("#" * 17, "", CTX)
    label.delete(CTX)
    with pytest.raises(NotFoundError):
        label.update("", "", CTX)
    label.recreate("", "again", CTX)
    assert [type(e).__name__ for e in label.collect_events()] == ["Created", "Updated", "Deleted", "Recreated"]
    assert (label.key, label.color, label.description, label.deleted) == (key, "", "again", False)


def test_artifacts_carry_labels_once_and_lose_them_with_the_artifact():
    repo = repository_with_images()
    repo.add_label(IMAGE.digest, "g", "release", CTX)
    repo.add_label(IMAGE.digest, "p", "release", CTX)  # a project label of the same name is another label
    with pytest.raises(ConflictError):
        repo.add_label(IMAGE.digest, "g", "release", CTX)
    with pytest.raises(ManifestUnknownError):
        repo.add_label("sha256:" + "c" * 64, "g", "release", CTX)
    with pytest.raises(NotFoundError):
        repo.remove_label(OTHER.digest, "g", "release", CTX)
    repo.add_label(OTHER.digest, "g", "release", CTX)
    repo.remove_label(IMAGE.digest, "p", "release", CTX)
    assert repo.label_names(IMAGE.digest) == {"release"} and repo.carries("g", "release")
    repo.drop_label("g", "release", CTX)  # the label deleted: off every artifact
    assert repo.labels == {} and not repo.carries("g", "release")
    repo.add_label(IMAGE.digest, "g", "beta", CTX)
    repo.delete_manifest(IMAGE.digest, CTX)
    assert repo.labels == {}


def policy(*filters: Filter, deletion: bool = False) -> PolicyRow:
    settings = PolicySettings(None, "peer", filters=filters, trigger="event_based", deletion=deletion).checked()
    now = datetime.now(timezone.utc)
    return PolicyRow(1, "events", settings, now, now)


def last_event_and_state_before(repo: Repository, change) -> tuple[object, Repository]:
    before = copy.deepcopy(repo)
    repo.collect_events()
    change(repo)
    return repo.collect_events()[-1], before


def test_event_based_label_filters_judge_the_artifact_as_it_was_when_the_event_happened():
    release = policy(Filter("label", "", labels=("release",)), deletion=True)
    repo = repository_with_images()
    pushed, before = last_event_and_state_before(repo, lambda r: r.point_tag("v1-copy", IMAGE.digest, CTX))
    assert tasks_for(release, pushed, lambda: before) == []  # not labelled (yet)
    labelled, before = last_event_and_state_before(repo, lambda r: r.add_label(IMAGE.digest, "g", "release", CTX))
    assert [t["reference"] for t in tasks_for(release, labelled, lambda: before)] == ["v1", "v1-copy"]
    again, before = last_event_and_state_before(repo, lambda r: r.add_label(IMAGE.digest, "p", "release", CTX))
    assert tasks_for(release, again, lambda: before) == []  # selected already: copied then
    tagged, before = last_event_and_state_before(repo, lambda r: r.point_tag("v1-again", IMAGE.digest, CTX))
    assert [t["reference"] for t in tasks_for(release, tagged, lambda: before)] == ["v1-again"]
    deleted, before = last_event_and_state_before(repo, lambda r: r.delete_manifest(IMAGE.digest, CTX))
    assert [(t["operation"], t["reference"]) for t in tasks_for(release, deleted, lambda: before)] == [
        ("delete", IMAGE.digest)]  # its labels went with it, but it carried them when deleted


def test_taking_a_label_off_copies_the_artifact_for_an_excluding_filter():
    not_beta = policy(Filter("label", "", True, ("beta",)))
    repo = repository_with_images()
    repo.add_label(OTHER.digest, "g", "beta", CTX)
    removed, before = last_event_and_state_before(repo, lambda r: r.remove_label(OTHER.digest, "g", "beta", CTX))
    assert [t["reference"] for t in tasks_for(not_beta, removed, lambda: before)] == ["v2"]
    unfiltered = policy()
    assert tasks_for(unfiltered, removed, lambda: before) == []  # labels change nothing for it
