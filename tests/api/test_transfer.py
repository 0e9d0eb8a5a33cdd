"""Copying artifacts between registries (domain/transfer.py): between two repositories of this
registry through its own commands, and — with a real peer — between Portlog and CNCF
Distribution. Multi-arch indexes with their children, referrers with their subject, blobs the
target has are not sent again, and a target that already holds the digest under the tag settles
the copy without writing anything."""

from __future__ import annotations

import json

import pytest

from background.replication_local import LocalSide
from domain.context import RequestContext
from domain.transfer import copy_artifact
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, descriptor, digest_of, image_manifest, push_blob, push_image

CTX = RequestContext("replication:test", "run-1")


def push_index(client, name: str, tag: str) -> tuple[str, list[str]]:
    children = [push_image(client, name, f"arch-{arch}", seed=arch)[1] for arch in ("amd64", "arm64")]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, child) for child in children]}).encode()
    response = client.put(f"/v2/{name}/manifests/{tag}", content=index, headers={"Content-Type": OCI_INDEX})
    assert response.status_code == 201, response.text
    return digest_of(index), [digest_of(child) for child in children]


def push_signature(client, name: str, subject: bytes) -> str:
    config = b"{}"
    push_blob(client, name, config)
    push_blob(client, name, b"signature payload")
    signature = image_manifest(config, [b"signature payload"], subject=descriptor(OCI_MANIFEST, subject),
                               artifactType="application/vnd.dev.cosign.artifact.sig.v1+json")
    response = client.put(f"/v2/{name}/manifests/{digest_of(signature)}", content=signature,
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest_of(signature)


def test_an_image_with_its_signature_is_copied_between_repositories(client, services):
    digest, manifest = push_image(client, "team/src", "v1", seed="copied")
    signature = push_signature(client, "team/src", manifest)
    local = LocalSide(services, CTX)
    result = copy_artifact(local, "team/src", "v1", local, "z/dst")
    assert result.digest == digest and result.manifests == 2 and result.blobs == 4 and not result.skipped
    assert client.get("/v2/z/dst/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == manifest
    assert client.head(f"/v2/z/dst/manifests/{signature}").status_code == 200
    referrers = client.get(f"/v2/z/dst/referrers/{digest}").json()["manifests"]
    assert [r["digest"] for r in referrers] == [signature]
    audit = client.get("/api/v1/audit-logs?repository=z/dst").json()
    assert {entry["actor"] for entry in audit} == {"replication:test"}


def test_a_multi_arch_index_is_copied_with_its_children_and_settles_the_second_time(client, services):
    index, children = push_index(client, "team/src", "multi")
    local = LocalSide(services, CTX)
    first = copy_artifact(local, "team/src", "multi", local, "z/dst")
    assert first.manifests == 3 and set(first.copied_digests) == {index, *children}
    for digest in (index, *children):
        assert client.head(f"/v2/z/dst/manifests/{digest}").status_code == 200
    before = services.registry.recorder.max_notification_id()
    again = copy_artifact(local, "team/src", "multi", local, "z/dst")
    assert again.skipped and services.registry.recorder.max_notification_id() == before  # nothing written


def test_blobs_the_target_has_are_not_sent_again_and_override_is_respected(client, services):
    push_image(client, "team/src", "v1", seed="one")
    local = LocalSide(services, CTX)
    copy_artifact(local, "team/src", "v1", local, "z/dst")
    push_image(client, "team/src", "v1", seed="two")  # v1 moves at the source
    kept = copy_artifact(local, "team/src", "v1", local, "z/dst", override=False)
    assert kept.skipped  # the target's v1 is another digest and override is off
    moved = copy_artifact(local, "team/src", "v1", local, "z/dst")
    assert moved.manifests == 1 and moved.blobs == 2
    assert client.head("/v2/z/dst/manifests/v1").headers["Docker-Content-Digest"] == moved.digest


def test_an_unknown_source_reference_is_a_lookup_error(services):
    local = LocalSide(services, CTX)
    with pytest.raises(LookupError):
        copy_artifact(local, "team/nothing", "v1", local, "z/dst")


def test_a_signature_added_after_the_image_was_copied_follows_it(client, services):
    digest, manifest = push_image(client, "team/src", "v1", seed="signed later")
    local = LocalSide(services, CTX)
    copy_artifact(local, "team/src", "v1", local, "z/dst")
    signature = push_signature(client, "team/src", manifest)
    again = copy_artifact(local, "team/src", "v1", local, "z/dst")
    assert again.skipped and again.copied_digests == [signature]
    assert client.head(f"/v2/z/dst/manifests/{signature}").status_code == 200
