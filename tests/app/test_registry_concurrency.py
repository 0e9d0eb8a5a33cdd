"""The Registry application on its SQLite event store, with writers racing on one tag."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from domain.application import Registry
from domain.artifacts import Artifacts
from domain.context import RequestContext
from domain.errors import BlobUnknownError, ManifestBlobUnknownError, StillReferencedError
from domain.push_checks import PushChecks
from domain.repository import Repository
from domain.uploads import Uploads
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest

pytestmark = pytest.mark.both_databases

CONFIG, LAYER = b'{"os":"linux"}', b"layer"


def link(services, name: str, data: bytes) -> None:
    upload = services.uploads.start_upload(name)
    writer = services.blobs.upload_writer(upload.upload_id)
    writer.write(data)
    writer.commit()
    services.uploads.complete_upload(name, upload, digest_of(data), RequestContext())


def test_tag_history_is_a_complete_chain_under_racing_writers(services, settings):
    """Two application instances on one store stand for two processes: their in-process
    locks do not see each other, so only optimistic concurrency keeps the chain whole."""
    registry, name = services.registry, "team/race"
    other = Registry(services.blobs, env=settings.event_store_env)
    pushers = (services.artifacts, Artifacts(other, PushChecks(other)))
    link(services, name, CONFIG)
    link(services, name, LAYER)
    manifests = [image_manifest(CONFIG, [LAYER], annotations={"n": str(i)}) for i in range(16)]

    def push(numbered: tuple[int, bytes]):
        return pushers[numbered[0] % 2].push_manifest(name, "latest", numbered[1], OCI_MANIFEST,
                                                      RequestContext("ci", "req"))

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(push, enumerate(manifests)))
    finally:
        other.close()

    events = list(registry.events.get(Repository.create_id(name)))
    moves = [e for e in events if isinstance(e, Repository.TagPointed)]
    assert len(moves) == 16  # every push moved the tag once: none lost
    previous = None
    for move in moves:
        assert move.previous_digest == previous
        previous = move.digest
    assert registry.get_repository(name).tags["latest"] == previous
    assert {digest_of(m) for m in manifests} == {m.digest for m in moves}
    assert all(json.loads(m)["annotations"] for m in manifests)


def test_a_blob_delete_racing_pushes_that_use_the_blob_never_leaves_a_manifest_without_it(services, settings):
    """Deletes of the layer race pushes of manifests that use it, from two "processes": in the
    log, no manifest is ever pushed while the layer is unlinked, nor the layer unlinked while a
    pushed manifest references it."""
    registry, name = services.registry, "team/race"
    other = Registry(services.blobs, env=settings.event_store_env)
    pushers = (services.artifacts, Artifacts(other, PushChecks(other)))
    ctx = RequestContext("ci", "req")
    link(services, name, CONFIG)
    manifests = [image_manifest(CONFIG, [LAYER], annotations={"n": str(i)}) for i in range(12)]

    def push(numbered: tuple[int, bytes]) -> None:
        link(services, name, LAYER)
        try:
            pushers[numbered[0] % 2].push_manifest(name, f"t{numbered[0]}", numbered[1], OCI_MANIFEST, ctx)
        except ManifestBlobUnknownError:
            pass  # a delete unlinked the layer first: refused, as it must be

    unlinkers = (Uploads(other, PushChecks(other)), services.uploads)

    def delete(round_: int) -> None:
        try:
            unlinkers[round_ % 2].unlink_blob(name, digest_of(LAYER), ctx)
        except (StillReferencedError, BlobUnknownError):
            pass  # a manifest uses it (or another delete got there first)

    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(push, numbered) for numbered in enumerate(manifests)]
            futures += [pool.submit(delete, i) for i in range(12)]
            for future in futures:
                future.result()
    finally:
        other.close()

    linked, used = False, set()
    for event in registry.events.get(Repository.create_id(name)):
        if isinstance(event, Repository.BlobLinked) and event.digest == digest_of(LAYER):
            linked = True
        elif isinstance(event, Repository.BlobUnlinked) and event.digest == digest_of(LAYER):
            assert not used, "the layer was unlinked while a manifest used it"
            linked = False
        elif isinstance(event, Repository.ManifestPushed):
            assert linked, "a manifest was pushed while its layer was unlinked"
            used.add(event.digest)
    assert used  # some pushes got through
