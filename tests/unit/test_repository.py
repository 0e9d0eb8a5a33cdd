from __future__ import annotations

import pytest

from domain.context import RequestContext
from domain.errors import (
    BlobUnknownError,
    ManifestBlobUnknownError,
    ManifestInvalidError,
    ManifestUnknownError,
    StillReferencedError,
)
from domain.manifests import OCI_INDEX, OCI_MANIFEST, Descriptor, ParsedManifest
from domain.repository import Repository

CONFIG = Descriptor("application/vnd.oci.image.config.v1+json", "sha256:" + "1" * 64, 10)
LAYER = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:" + "2" * 64, 20)
IMAGE = ParsedManifest(digest="sha256:" + "a" * 64, media_type=OCI_MANIFEST, size=300,
                       config=CONFIG, layers=(LAYER,))


def repo_with_blobs() -> Repository:
    repo = Repository.create("team/app", RequestContext("alice", "req-1"))
    repo.link_blob(CONFIG.digest, CONFIG.size, RequestContext("alice", "req-2"))
    repo.link_blob(LAYER.digest, LAYER.size, RequestContext("alice", "req-3"))
    return repo


def event_names(repo: Repository) -> list[str]:
    return [type(e).__name__ for e in repo.pending_events]


def test_every_event_says_which_repository_who_and_which_request():
    repo = repo_with_blobs()
    repo.push_manifest(IMAGE, "1.0", RequestContext("bob", "req-4"))
    assert event_names(repo) == ["Created", "BlobLinked", "BlobLinked", "ManifestPushed", "TagPointed"]
    assert {e.repository for e in repo.pending_events} == {"team/app"}
    assert [e.actor for e in repo.pending_events][-1] == "bob"
    assert repo.pending_events[-1].request_id == "req-4"


def test_linking_the_same_blob_twice_records_one_event():
    repo = repo_with_blobs()
    repo.link_blob(CONFIG.digest, CONFIG.size, RequestContext("alice", "req-9"))
    assert event_names(repo).count("BlobLinked") == 2


def test_tag_moves_carry_the_previous_digest():
    repo = repo_with_blobs()
    repo.push_manifest(IMAGE, "latest", RequestContext("alice", "r"))
    other = ParsedManifest(digest="sha256:" + "b" * 64, media_type=OCI_MANIFEST, size=301,
                           config=CONFIG, layers=())
    repo.push_manifest(other, "latest", RequestContext("alice", "r"))
    moves = [e for e in repo.pending_events if isinstance(e, Repository.TagPointed)]
    assert [(m.digest, m.previous_digest) for m in moves] == [
        (IMAGE.digest, None), (other.digest, IMAGE.digest)]
    assert repo.tags == {"latest": other.digest}


def test_pushing_the_same_manifest_and_tag_again_changes_nothing():
    repo = repo_with_blobs()
    repo.push_manifest(IMAGE, "1.0", RequestContext("alice", "r"))
    count = len(repo.pending_events)
    repo.push_manifest(IMAGE, "1.0", RequestContext("alice", "r"))
    assert len(repo.pending_events) == count


def test_manifest_needs_its_blobs_in_the_repository():
    repo = Repository.create("team/app", RequestContext("alice", "r"))
    with pytest.raises(ManifestBlobUnknownError) as error:
        repo.push_manifest(IMAGE, "1.0", RequestContext("alice", "r"))
    assert error.value.detail == {"digest": CONFIG.digest}
    assert event_names(repo) == ["Created"]


def test_descriptor_size_must_match_the_blob():
    repo = Repository.create("team/app", RequestContext("alice", "r"))
    repo.link_blob(CONFIG.digest, CONFIG.size + 1, RequestContext("alice", "r"))
    repo.link_blob(LAYER.digest, LAYER.size, RequestContext("alice", "r"))
    with pytest.raises(ManifestInvalidError):
        repo.push_manifest(IMAGE, None, RequestContext("alice", "r"))


def test_index_needs_its_manifests():
    index = ParsedManifest(digest="sha256:" + "c" * 64, media_type=OCI_INDEX, size=100,
                           manifests=(Descriptor(OCI_MANIFEST, IMAGE.digest, IMAGE.size),))
    repo = repo_with_blobs()
    with pytest.raises(ManifestBlobUnknownError):
        repo.push_manifest(index, "multi", RequestContext("alice", "r"))
    repo.push_manifest(IMAGE, None, RequestContext("alice", "r"))
    repo.push_manifest(index, "multi", RequestContext("alice", "r"))
    assert repo.tags == {"multi": index.digest}


def test_deleting_a_manifest_deletes_its_tags_first():
    repo = repo_with_blobs()
    repo.push_manifest(IMAGE, "a", RequestContext("alice", "r"))
    repo.push_manifest(IMAGE, "b", RequestContext("alice", "r"))
    repo.delete_manifest(IMAGE.digest, RequestContext("carol", "r"))
    assert event_names(repo)[-3:] == ["TagDeleted", "TagDeleted", "ManifestDeleted"]
    assert repo.tags == {} and repo.manifests == {}


def test_deleting_a_tag_keeps_the_manifest():
    repo = repo_with_blobs()
    repo.push_manifest(IMAGE, "a", RequestContext("alice", "r"))
    repo.delete_tag("a", RequestContext("alice", "r"))
    assert repo.tags == {} and IMAGE.digest in repo.manifests


def test_deleting_unknown_things_is_refused():
    repo = repo_with_blobs()
    with pytest.raises(ManifestUnknownError):
        repo.delete_tag("nope", RequestContext("a", "r"))
    with pytest.raises(ManifestUnknownError):
        repo.delete_manifest("sha256:" + "f" * 64, RequestContext("a", "r"))
    with pytest.raises(BlobUnknownError):
        repo.unlink_blob("sha256:" + "f" * 64, RequestContext("a", "r"))


def test_a_blob_a_manifest_references_cannot_be_unlinked():
    repo = repo_with_blobs()
    repo.push_manifest(IMAGE, "1.0", RequestContext("alice", "r"))
    count = len(repo.pending_events)
    for blob in (CONFIG, LAYER):
        with pytest.raises(StillReferencedError) as error:
            repo.unlink_blob(blob.digest, RequestContext("mallory", "r"))
        assert error.value.detail == {"digest": blob.digest, "manifests": [IMAGE.digest]}
    assert len(repo.pending_events) == count and repo.blobs == {CONFIG.digest: 10, LAYER.digest: 20}
    repo.delete_manifest(IMAGE.digest, RequestContext("alice", "r"))
    repo.unlink_blob(LAYER.digest, RequestContext("alice", "r"))
    assert repo.blobs == {CONFIG.digest: 10}


def test_a_foreign_layer_is_no_reference():
    foreign = Descriptor("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", LAYER.digest, 20, foreign=True)
    repo = repo_with_blobs()
    repo.push_manifest(ParsedManifest(digest=IMAGE.digest, media_type=OCI_MANIFEST, size=300, config=CONFIG,
                                      layers=(foreign,)), "1.0", RequestContext("alice", "r"))
    repo.unlink_blob(LAYER.digest, RequestContext("alice", "r"))  # the manifest never needed it here
    with pytest.raises(StillReferencedError):
        repo.unlink_blob(CONFIG.digest, RequestContext("alice", "r"))
