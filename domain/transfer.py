"""Copying one artifact between two registries through the registry API (storage-agnostic):
the core of replication (issue 8). Both ends are `Side`s — this registry
(background/replication_local.py) or a remote one (adapters/registry_client.py) — so push- and
pull-based replication are the same code.

For a manifest: the children of an index first, then every blob the target lacks — streamed,
never whole in memory; mounted from another repository of the target when it is already there —
then the manifest itself, by digest and then by tag. Before anything, the target is asked
whether it already has that digest under that tag: two registries replicating to each other
settle instead of copying back and forth. Referrers (signatures, SBOMs) the source lists for a
copied manifest are copied after it; a remote registry without the referrers API lists them
under its referrers tag, kept by adapters/registry_client.py when a referrer is pushed there.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Iterable, Protocol

INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"}
MAX_DEPTH = 4  # an index of indexes of indexes: deeper is not an image anyone pushes


class Side(Protocol):
    def manifest(self, name: str, reference: str) -> tuple[bytes, str, str] | None:
        """(bytes, media type, digest), or None when unknown."""
        ...

    def manifest_digest(self, name: str, reference: str) -> str | None: ...

    def put_manifest(self, name: str, reference: str, data: bytes, media_type: str) -> str: ...

    def blob_exists(self, name: str, digest: str) -> bool: ...

    def open_blob(self, name: str, digest: str) -> AbstractContextManager[tuple[int, Iterable[bytes]]]:
        """(size, chunks), streamed."""
        ...

    def push_blob(self, name: str, digest: str, size: int, chunks: Iterable[bytes]) -> None: ...

    def mount_blob(self, name: str, digest: str, from_name: str) -> bool: ...

    def referrers(self, name: str, digest: str) -> list[str]:
        """Digests of the manifests whose subject is `digest` (a remote registry without the
        referrers API: those its referrers tag lists)."""
        ...

    def delete_manifest(self, name: str, digest: str) -> None: ...


def delete_artifact(target: Side, name: str, reference: str, digest: str | None) -> bool:
    """Deletes at the target what a deleted tag or manifest was: the manifest the target holds
    under `reference`, if it is `digest` (when known) — a tag moved there since is left alone.
    Returns whether something was deleted."""
    current = target.manifest_digest(name, reference)
    if current is None or (digest is not None and current != digest):
        return False
    target.delete_manifest(name, current)
    return True


@dataclass
class CopyResult:
    manifests: int = 0  # copied (not counting those the target had)
    blobs: int = 0
    mounted: int = 0
    bytes: int = 0
    skipped: bool = False  # the target had the digest under the tag already
    digest: str = ""
    copied_digests: list[str] = field(default_factory=list)

    def add(self, other: CopyResult) -> None:
        """Counts what a copy made for this one (a referrer's) as this one's."""
        self.manifests, self.blobs = self.manifests + other.manifests, self.blobs + other.blobs
        self.mounted, self.bytes = self.mounted + other.mounted, self.bytes + other.bytes
        self.copied_digests += other.copied_digests


def copy_artifact(source: Side, source_name: str, reference: str, target: Side, target_name: str,
                  override: bool = True, mount_from: Iterable[str] = ()) -> CopyResult:
    """Copies `source_name:reference` (a tag or a digest) to `target_name` under the same
    reference. Without `override`, a tag the target has on another digest is left alone."""
    found = source.manifest(source_name, reference)
    if found is None:
        raise LookupError(f"{source_name}:{reference} is not in the source registry")
    return _copy_artifact(source, source_name, reference, found, target, target_name, override, tuple(mount_from))


def _copy_artifact(source: Side, source_name: str, reference: str, found: tuple[bytes, str, str], target: Side,
                   target_name: str, override: bool, mount_from: tuple[str, ...]) -> CopyResult:
    data, media_type, digest = found
    result = CopyResult(digest=digest)
    current = target.manifest_digest(target_name, reference)
    if current is not None and not override and current != digest and not reference.startswith("sha256:"):
        result.skipped = True  # the target's tag stays on its own digest
        return result
    if current == digest:
        result.skipped = True  # already there: only referrers added since may be missing
        _list_referrer_again(target, target_name, data, media_type, digest)
    else:
        _copy_manifest(source, source_name, target, target_name, data, media_type, digest, result, mount_from, 0)
        if not reference.startswith("sha256:"):
            target.put_manifest(target_name, reference, data, media_type)
    _copy_referrers(source, source_name, digest, target, target_name, mount_from, result)
    return result


def _copy_referrers(source: Side, source_name: str, digest: str, target: Side, target_name: str,
                    mount_from: tuple[str, ...], result: CopyResult) -> None:
    for referrer in source.referrers(source_name, digest):
        found = source.manifest(source_name, referrer)
        if found is None:
            continue  # a referrers tag still listing a deleted referrer: clients keep those tags
        result.add(_copy_artifact(source, source_name, referrer, found, target, target_name, True, mount_from))


def _list_referrer_again(target: Side, target_name: str, data: bytes, media_type: str, digest: str) -> None:
    """A referrer the target holds without listing it — copied to a registry without the
    referrers API before its referrers tag was kept, or the tag's update failed — is pushed
    again, which adds it to the tag. Nothing is written when the target lists it."""
    subject = _subject_of(json.loads(data))
    if subject and digest not in target.referrers(target_name, subject):
        target.put_manifest(target_name, digest, data, media_type)


def _copy_manifest(source: Side, source_name: str, target: Side, target_name: str, data: bytes,
                   media_type: str, digest: str, result: CopyResult, mount_from: tuple[str, ...],
                   depth: int) -> None:
    if target.manifest_digest(target_name, digest) == digest:
        return
    document = json.loads(data)
    if media_type in INDEX_TYPES or "manifests" in document:
        if depth >= MAX_DEPTH:
            raise ValueError(f"{digest} nests indexes deeper than {MAX_DEPTH}")
        for child in document.get("manifests", ()):
            child_found = source.manifest(source_name, child["digest"])
            if child_found is None:
                raise LookupError(f"{source_name}@{child['digest']} (listed by {digest}) is not in the source")
            _copy_manifest(source, source_name, target, target_name, *child_found, result, mount_from, depth + 1)
    else:
        for descriptor in _blobs_of(document):
            _copy_blob(source, source_name, target, target_name, descriptor["digest"], result, mount_from)
    target.put_manifest(target_name, digest, data, media_type)
    result.manifests += 1
    result.copied_digests.append(digest)


def _copy_blob(source: Side, source_name: str, target: Side, target_name: str, digest: str,
               result: CopyResult, mount_from: tuple[str, ...]) -> None:
    if target.blob_exists(target_name, digest):
        return
    for other in mount_from:
        if other != target_name and target.mount_blob(target_name, digest, other):
            result.mounted += 1
            return
    with source.open_blob(source_name, digest) as (size, chunks):
        target.push_blob(target_name, digest, size, chunks)
    result.blobs += 1
    result.bytes += size


def _subject_of(document: dict) -> str | None:
    subject = document.get("subject")
    return subject.get("digest") if isinstance(subject, dict) else None


def _blobs_of(document: dict) -> list[dict]:
    """Config and layers, without foreign layers (they stay where their URLs say)."""
    layers = [layer for layer in document.get("layers", ()) if not layer.get("urls")]
    return ([document["config"]] if "config" in document else []) + layers
