"""The Repository aggregate: blobs linked into it, manifests pushed to it, tags.

Its events are a public schema, addressed by topic `domain.repository:Repository.<Event>`:
add fields only with defaults, never rename or repurpose one.
"""

from __future__ import annotations

from dataclasses import KW_ONLY
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import (
    BlobUnknownError,
    ConflictError,
    ManifestBlobUnknownError,
    ManifestInvalidError,
    ManifestUnknownError,
    NameUnknownError,
    NotFoundError,
    StillReferencedError,
)
from domain.manifests import ParsedManifest


class Repository(Aggregate):
    # Version 2 added `media_types`, `deleted`, `trash` and `deleted_tags`; older snapshots
    # are upcast (their manifests' media types are then found from the stored bytes). Version 3
    # added `labels`, version 4 `manifest_references` (an older snapshot lacks them: the
    # application replays such a repository from its events, see Registry.load).
    class_version = 4

    class Event(Aggregate.Event):
        """Every event names its repository, who caused it, and in which request."""

        repository: str
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""  # added compatibly: events from before it decode with ""

        def apply(self, aggregate: Repository) -> None:
            pass

    class Created(Event, Aggregate.Created):
        pass

    class BlobLinked(Event):
        digest: str
        size: int
        mounted_from: str | None

        def apply(self, repo: Repository) -> None:
            repo.blobs[self.digest] = self.size

    class BlobUnlinked(Event):
        digest: str

        def apply(self, repo: Repository) -> None:
            repo.blobs.pop(self.digest, None)

    class ManifestPushed(Event):
        """`references` are the descriptors the manifest needs, each with a `role`:
        config, layer (blobs), or manifest (an index's children)."""

        digest: str
        media_type: str
        size: int
        artifact_type: str | None
        subject: str | None
        references: list[dict]
        annotations: dict

        def apply(self, repo: Repository) -> None:
            repo.manifests[self.digest] = self.size
            repo.media_types[self.digest] = self.media_type
            repo.manifest_references[self.digest] = [reference["digest"] for reference in self.references]

    class ManifestDeleted(Event):
        digest: str

        def apply(self, repo: Repository) -> None:
            repo.manifests.pop(self.digest, None)
            repo.media_types.pop(self.digest, None)
            repo.manifest_references.pop(self.digest, None)
            repo.labels.pop(self.digest, None)  # an artifact's labels go with it

    class TagPointed(Event):
        tag: str
        digest: str
        previous_digest: str | None

        def apply(self, repo: Repository) -> None:
            repo.tags[self.tag] = self.digest
            repo.deleted_tags.pop(self.tag, None)

    class TagDeleted(Event):
        tag: str
        digest: str

        def apply(self, repo: Repository) -> None:
            repo.tags.pop(self.tag, None)
            repo.deleted_tags[self.tag] = self.digest

    class Deleted(Event):
        """The whole repository deleted. Recorded after the TagDeleted, ManifestDeleted and
        BlobUnlinked events that emptied it, with what they removed, so that `Undeleted` can
        put it back: `tags` {tag: digest}, `manifests` {digest: media type}, `blobs`
        {digest: size}."""

        tags: dict
        manifests: dict
        blobs: dict

        def apply(self, repo: Repository) -> None:
            repo.deleted = True
            repo.trash = {"tags": self.tags, "manifests": self.manifests, "blobs": self.blobs}

    class Undeleted(Event):
        """A deleted repository back, before the BlobLinked, ManifestPushed and TagPointed
        events that refill it with what its `Deleted` removed."""

        def apply(self, repo: Repository) -> None:
            repo.deleted, repo.trash = False, None

    class Recreated(Event):
        """A deleted repository's name written to again: it starts empty, and its deleted
        content can no longer be undeleted."""

        def apply(self, repo: Repository) -> None:
            repo.deleted, repo.trash = False, None

    class Restored(Event):
        """A point-in-time restore (domain/restore.py) brings the repository back to how it was at
        log position `as_of_position`: the events that do it follow in the same transaction."""

        as_of_position: int

    class PullsRecorded(Event):
        """Pulls of the repository's manifests over one interval, counted in memory by the
        node that served them (domain/pulls.py): a list of {"digest", "tag" (or None),
        "actor", "count", "last_pulled_at" (ISO 8601)}. The event's own actor is "system"."""

        pulls: list[dict]

    class ArtifactLabelAdded(Event):
        """A label put on the artifact `digest`: `label` is its name, `scope` g (a global label)
        or p (a label of the repository's project). Labels: domain/labels.py."""

        digest: str
        label: str
        scope: str

        def apply(self, repo: Repository) -> None:
            repo.labels.setdefault(self.digest, []).append(_label_entry(self.scope, self.label))

    class ArtifactLabelRemoved(Event):
        """A label taken off the artifact, by someone or because the label was deleted."""

        digest: str
        label: str
        scope: str

        def apply(self, repo: Repository) -> None:
            remaining = [e for e in repo.labels.get(self.digest, []) if e != _label_entry(self.scope, self.label)]
            if remaining:
                repo.labels[self.digest] = remaining
            else:
                repo.labels.pop(self.digest, None)

    def __init__(self, repository: str) -> None:
        self.name = repository
        self.blobs: dict[str, int] = {}
        self.manifests: dict[str, int] = {}
        self.tags: dict[str, str] = {}
        self.media_types: dict[str, str] = {}  # manifest digest -> media type
        self.deleted = False
        self.trash: dict | None = None  # what the last Deleted removed, while it can come back
        # The last digest of each tag deleted on its own (a tag deleted with its manifest
        # included), while the tag is not pointed again: what undeleting the tag brings back.
        self.deleted_tags: dict[str, str] = {}
        self.labels: dict[str, list[str]] = {}  # manifest digest -> its labels, "<scope>:<name>"
        # manifest digest -> the digests it references (config, layers held, an index's children)
        self.manifest_references: dict[str, list[str]] = {}

    @staticmethod
    def upcast_v1_v2(state: dict) -> None:
        state.update(media_types={}, deleted=False, trash=None, deleted_tags={})

    @staticmethod
    def upcast_v2_v3(state: dict) -> None:
        state["labels"] = {}

    @staticmethod
    def upcast_v3_v4(state: dict) -> None:
        state["manifest_references"] = {}  # unknown: lacks_references() says so

    def lacks_references(self) -> bool:
        """Whether this state came from a snapshot older than `manifest_references`."""
        return len(self.manifest_references) != len(self.manifests)

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/repositories/{name}")

    @classmethod
    def create(cls, name: str, ctx: RequestContext) -> Repository:
        return cls._create(cls.Created, id=cls.create_id(name), repository=name, **ctx.event_fields())

    def link_blob(self, digest: str, size: int, ctx: RequestContext,
                  mounted_from: str | None = None) -> None:
        if self.blobs.get(digest) == size:
            return
        self._revive(ctx)
        self._trigger(self.BlobLinked, digest=digest, size=size, mounted_from=mounted_from, ctx=ctx)

    def unlink_blob(self, digest: str, ctx: RequestContext) -> None:
        """Refused while a manifest of the repository references the blob."""
        if digest not in self.blobs:
            raise BlobUnknownError("blob unknown to repository", {"digest": digest})
        self.refuse_referenced("blob", digest)
        self._trigger(self.BlobUnlinked, digest=digest, ctx=ctx)

    def refuse_referenced(self, kind: str, digest: str) -> None:
        """Raises StillReferencedError when a manifest of the repository references `digest`."""
        users = sorted(m for m, references in self.manifest_references.items() if digest in references)
        if users:
            tags = sorted(tag for tag, target in self.tags.items() if target == users[0])
            tagged = f" (tagged {', '.join(tags[:5])})" if tags else ""
            raise StillReferencedError(
                f"{kind} {digest} is referenced by manifest {users[0]}{tagged} of {self.name}: "
                "delete that manifest first", {"digest": digest, "manifests": users[:10]})

    def release_blob(self, digest: str, ctx: RequestContext) -> None:
        """Garbage collection unlinks a blob no manifest of the registry references any more."""
        if digest in self.blobs:
            self._trigger(self.BlobUnlinked, digest=digest, ctx=ctx)

    def push_manifest(self, manifest: ParsedManifest, tag: str | None, ctx: RequestContext,
                      children_required: bool = True) -> None:
        """Without `children_required` (a proxy cache, which caches an index's children only as
        they are pulled), an index may list manifests the repository does not hold."""
        check_references(manifest, self.blobs, self.manifests, children_required)
        if manifest.digest not in self.manifests:
            self._trigger(
                self.ManifestPushed,
                digest=manifest.digest,
                media_type=manifest.media_type,
                size=manifest.size,
                artifact_type=manifest.artifact_type,
                subject=manifest.subject.digest if manifest.subject else None,
                references=_references(manifest),
                annotations=manifest.annotations, ctx=ctx,
            )
        if tag is not None and self.tags.get(tag) != manifest.digest:
            self._trigger(self.TagPointed, tag=tag, digest=manifest.digest,
                               previous_digest=self.tags.get(tag), ctx=ctx)

    def delete(self, ctx: RequestContext) -> None:
        """Deletes every tag, manifest and blob link, then records what went (for undelete)."""
        if self.deleted:
            raise NameUnknownError("repository name not known to registry", {"name": self.name})
        content = {"tags": dict(self.tags), "blobs": dict(self.blobs),
                   "manifests": {digest: self.media_types.get(digest) for digest in self.manifests}}
        for digest in sorted(self.manifests):
            self.delete_manifest(digest, ctx)
        for digest in sorted(self.blobs):
            self._trigger(self.BlobUnlinked, digest=digest, ctx=ctx)
        self._trigger(self.Deleted, **content, ctx=ctx)

    def undelete(self, manifests: list[ParsedManifest], ctx: RequestContext) -> None:
        """Puts back what the last delete removed; `manifests` are its manifests, parsed again
        from their stored bytes."""
        if not self.deleted or self.trash is None:
            raise ConflictError("repository is not deleted, or was pushed to since its deletion",
                                {"repository": self.name})
        trash = self.trash
        self._trigger(self.Undeleted, ctx=ctx)
        for digest, size in sorted(trash["blobs"].items()):
            self._trigger(self.BlobLinked, digest=digest, size=size, mounted_from=None, ctx=ctx)
        for manifest in _children_first(manifests):  # as they were (a proxy cache's index may lack children)
            self.push_manifest(manifest, None, ctx, children_required=False)
        for tag, digest in sorted(trash["tags"].items()):
            self._trigger(self.TagPointed, tag=tag, digest=digest, previous_digest=None, ctx=ctx)

    def restore_to(self, position: int, blobs: dict[str, int], manifests: list[ParsedManifest],
                   tags: dict[str, str | None], ctx: RequestContext) -> None:
        """A point-in-time restore (planned by domain/restore.py): back if deleted, `blobs` linked,
        `manifests` (parsed again from their stored bytes) pushed, each tag of `tags` pointed at
        its digest (None: deleted)."""
        self._trigger(self.Restored, as_of_position=position, ctx=ctx)
        if self.deleted:
            self._trigger(self.Undeleted, ctx=ctx)
        for digest, size in sorted(blobs.items()):
            self.link_blob(digest, size, ctx)
        for manifest in _children_first(manifests):  # as they were (a proxy cache's index may lack children)
            self.push_manifest(manifest, None, ctx, children_required=False)
        for tag, digest in sorted(tags.items()):
            if digest is None:
                self.delete_tag(tag, ctx)
            else:
                self.point_tag(tag, digest, ctx)

    def record_pulls(self, pulls: list[dict], ctx: RequestContext) -> None:
        if pulls:
            self._trigger(self.PullsRecorded, pulls=pulls, ctx=ctx)

    def point_tag(self, tag: str, digest: str, ctx: RequestContext) -> None:
        """Points a tag at a manifest the repository holds (a restore: a new event, no rewrite)."""
        if digest not in self.manifests:
            raise ManifestUnknownError("manifest no longer in the repository", {"digest": digest})
        if self.tags.get(tag) != digest:
            self._trigger(self.TagPointed, tag=tag, digest=digest, previous_digest=self.tags.get(tag), ctx=ctx)

    def delete_tag(self, tag: str, ctx: RequestContext) -> None:
        if tag not in self.tags:
            raise ManifestUnknownError("tag unknown to repository", {"tag": tag})
        self._trigger(self.TagDeleted, tag=tag, digest=self.tags[tag], ctx=ctx)

    def delete_manifest(self, digest: str, ctx: RequestContext) -> None:
        if digest not in self.manifests:
            raise ManifestUnknownError("manifest unknown to repository", {"digest": digest})
        for tag in sorted(t for t, d in self.tags.items() if d == digest):
            self.delete_tag(tag, ctx)
        self._trigger(self.ManifestDeleted, digest=digest, ctx=ctx)

    def add_label(self, digest: str, scope: str, label: str, ctx: RequestContext) -> None:
        """Harbor answers a label put on an artifact twice with a conflict; so does this."""
        if digest not in self.manifests:
            raise ManifestUnknownError("artifact unknown to repository", {"digest": digest})
        if _label_entry(scope, label) in self.labels.get(digest, ()):
            raise ConflictError(f"the label {label} is already on the artifact", {"digest": digest, "label": label})
        self._trigger(self.ArtifactLabelAdded, digest=digest, label=label, scope=scope, ctx=ctx)

    def remove_label(self, digest: str, scope: str, label: str, ctx: RequestContext) -> None:
        if _label_entry(scope, label) not in self.labels.get(digest, ()):
            raise NotFoundError(f"the artifact does not carry the label {label}", {"digest": digest, "label": label})
        self._trigger(self.ArtifactLabelRemoved, digest=digest, label=label, scope=scope, ctx=ctx)

    def drop_label(self, scope: str, label: str, ctx: RequestContext) -> None:
        """The label is being deleted: off every artifact that carries it."""
        for digest in sorted(d for d, entries in self.labels.items() if _label_entry(scope, label) in entries):
            self._trigger(self.ArtifactLabelRemoved, digest=digest, label=label, scope=scope, ctx=ctx)

    def carries(self, scope: str, label: str) -> bool:
        return any(_label_entry(scope, label) in entries for entries in self.labels.values())

    def label_names(self, digest: str) -> frozenset[str]:
        return frozenset(entry.split(":", 1)[1] for entry in self.labels.get(digest, ()))

    def _revive(self, ctx: RequestContext) -> None:
        if self.deleted:
            self._trigger(self.Recreated, ctx=ctx)

    def _trigger(self, event_class: type[Repository.Event], ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, repository=self.name, **ctx.event_fields(), **fields)


def check_references(manifest: ParsedManifest, blobs: dict[str, int], manifests: dict[str, int],
                     children_required: bool = True) -> None:
    """Every config and layer among `blobs` (digest -> size) with the descriptor's size, and
    every child of an index among `manifests` (unless not `children_required`)."""
    for blob in manifest.required_blobs:
        size = blobs.get(blob.digest)
        if size is None:
            raise ManifestBlobUnknownError(
                "manifest references a blob unknown to the repository",
                {"digest": blob.digest},
            )
        if size != blob.size:
            raise ManifestInvalidError(
                "descriptor size does not match the blob's size",
                {"digest": blob.digest, "descriptor_size": blob.size, "blob_size": size},
            )
    for child in manifest.manifests if children_required else ():
        if child.digest not in manifests:
            raise ManifestBlobUnknownError(
                "index references a manifest unknown to the repository",
                {"digest": child.digest},
            )


def _label_entry(scope: str, label: str) -> str:
    return f"{scope}:{label}"


def _children_first(manifests: list[ParsedManifest]) -> list[ParsedManifest]:
    """Orders manifests so that an index comes after the manifests it lists."""
    remaining, ordered, placed = list(manifests), [], set()
    while remaining:
        ready = [m for m in remaining if all(
            c.digest in placed for c in m.manifests if c.digest in {r.digest for r in remaining})]
        ready = ready or remaining  # a cycle cannot come from content addresses; never loop
        for manifest in ready:
            ordered.append(manifest)
            placed.add(manifest.digest)
        remaining = [m for m in remaining if m.digest not in placed]
    return ordered


def _references(manifest: ParsedManifest) -> list[dict]:
    roles = [("config", manifest.config)] if manifest.config else []
    roles += [("layer", layer) for layer in manifest.layers if not layer.foreign]
    roles += [("manifest", child) for child in manifest.manifests]
    return [
        {"role": role, "digest": d.digest, "media_type": d.media_type, "size": d.size}
        for role, d in roles
    ]
