"""The registry application service: commands that record events, and upload handling.

Commands return the notification id that read models must reach before the caller
answers, so clients read their own writes.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.account import User
from domain.context import RequestContext
from domain.errors import (
    BlobUnknownError,
    ConcurrentUpdateError,
    ConflictError,
    ManifestBlobUnknownError,
    ManifestUnknownError,
    NameUnknownError,
    NotFoundError,
    QuotaExceededError,
    RegistryError,
    UploadUnknownError,
)
from domain.group_commit import MAX_ATTEMPTS, Command, GroupCommitter
from domain.immutability import ImmutableRule
from domain.manifests import ParsedManifest, parse_manifest
from domain.names import check_digest, check_tag, is_digest_reference
from domain.ports import BlobStore, UploadInfo
from domain.project import Project
from domain.push_checks import Push, PushChecks, moved
from domain.quotas import QuotaLimits
from domain.repository import Repository


class Registry(Application):
    name = "portlog"
    snapshotting_intervals = {Repository: 100, Project: 100, User: 100}

    def __init__(self, blobs: BlobStore, env: dict[str, str] | None = None) -> None:
        super().__init__(env=env)
        self.blobs = blobs
        self._committer = GroupCommitter(self, self.load)
        self.checks = PushChecks(self)  # api/bootstrap.py wires the read models' lookups

    def get_repository(self, name: str) -> Repository | None:
        return self.load(Repository.create_id(name))

    # Blobs and uploads

    def start_upload(self, name: str, caching: bool = False) -> UploadInfo:
        """`caching`: the proxy cache storing what it fetched (the only writer of its projects)."""
        self.checks.admit(Push(name, None, caching))
        return self.blobs.start_upload(name)

    def get_upload(self, name: str, upload_id: str) -> UploadInfo:
        info = self.blobs.upload_info(upload_id)
        if info is None or info.repository != name:
            raise UploadUnknownError("upload unknown to registry", {"upload": upload_id})
        return info

    def complete_upload(self, name: str, upload: UploadInfo, digest: str, ctx: RequestContext):
        """Completes an upload the caller got from `start_upload` or `get_upload` for `name`
        (not read again: on S3 each look is a request to the bucket); the push was admitted
        when the upload started."""
        if upload.repository != name:
            raise UploadUnknownError("upload unknown to registry", {"upload": upload.upload_id})
        push = Push(name, ctx, sizes={check_digest(digest): upload.size}, retain="upload")
        try:
            self.checks.check(push)
        except QuotaExceededError:
            self.blobs.cancel_upload(upload.upload_id)  # nothing of a refused push stays
            raise
        size = self.blobs.complete_upload(upload.upload_id, digest)
        return self._record_push(push, lambda repo: repo.link_blob(digest, size, ctx))

    def cancel_upload(self, name: str, upload_id: str) -> None:
        self.get_upload(name, upload_id)
        self.blobs.cancel_upload(upload_id)

    def mount_blob(self, name: str, digest: str, source: str, ctx: RequestContext) -> int | None:
        """Links a blob of `source` into `name`; None when `source` does not hold it."""
        push = Push(name, ctx, retain="mount")
        self.checks.admit(push)
        origin = self.get_repository(source)
        size = origin.blobs.get(digest) if origin else None
        if size is None or self.blobs.stat(digest) is None:
            return None
        push.sizes = {digest: size}
        try:
            self.checks.check(push)
        except BlobUnknownError:
            return None  # collected meanwhile: the client uploads it
        return self._record_push(push, lambda repo: repo.link_blob(digest, size, ctx, mounted_from=source))

    def adopt_blob(self, name: str, digest: str, ctx: RequestContext) -> int | None:
        """Links into `name` a blob the store holds, for the proxy cache once the upstream has
        shown that the repository has it there; None when the store does not hold it."""
        size = self.blobs.stat(digest)
        if size is None:
            return None
        push = Push(name, ctx, caching=True, sizes={digest: size}, retain="proxy-cache")
        self.checks.admit(push)
        try:
            self.checks.check(push)
        except BlobUnknownError:
            return None
        return self._record_push(push, lambda repo: repo.link_blob(digest, size, ctx))

    def unlink_blob(self, name: str, digest: str, ctx: RequestContext) -> int | None:
        return self._change_existing(name, lambda repo: repo.unlink_blob(digest, ctx))

    # Manifests and tags

    def push_manifest(self, name: str, reference: str, data: bytes, content_type: str | None,
                      ctx: RequestContext, caching: bool = False) -> tuple[ParsedManifest, int | None]:
        """`caching`: the proxy cache storing what it fetched. The manifest is parsed, then
        checked (domain/push_checks.py) before its bytes are stored, so that a refused manifest
        leaves nothing behind; the checks run again when the repository records the push
        (something may have changed in between)."""
        push = Push(name, ctx, caching, retain="manifest")
        self.checks.admit(push)
        by_digest = is_digest_reference(reference)
        expected = check_digest(reference) if by_digest else None
        tag = None if by_digest else check_tag(reference)
        manifest = parse_manifest(data, content_type, expected)
        push.manifest, push.sizes = manifest, {manifest.digest: manifest.size}
        push.points = {tag: manifest.digest} if tag is not None else {}
        push.artifacts = lambda: self._new_artifacts(name, manifest)
        self.checks.check(push)
        self.blobs.put(manifest.digest, data)
        position = self._record_push(push, lambda repo: repo.push_manifest(manifest, tag, ctx,
                                                                      children_required=not caching))
        return manifest, position

    def _new_artifacts(self, name: str, manifest: ParsedManifest) -> int:
        existing = self.get_repository(name)
        return 0 if existing is not None and manifest.digest in existing.manifests else 1

    def point_tag(self, name: str, tag: str, digest: str, ctx: RequestContext) -> int | None:
        check_tag(tag)
        push = Push(name, ctx, points={tag: digest})
        self.checks.admit(push)
        self.checks.check(push)
        return self._record_push(push, lambda repo: repo.point_tag(tag, digest, ctx), existing=True)

    def _record_push(self, push: Push, change: Callable[[Repository], None], existing: bool = False) -> int | None:
        """Records a push that passed the checks, checking again on the repository it changes."""

        def checked_change(repo: Repository) -> None:
            self.checks.recheck(push, repo)
            change(repo)

        if existing:
            position = self._change_existing(push.repository, checked_change)
        else:
            position = self._change(push.repository, push.ctx, checked_change)
        self.checks.recorded(push)
        return position

    def record_pulls(self, name: str, pulls: list[dict], ctx: RequestContext) -> int | None:
        return self._change_existing(name, lambda repo: repo.record_pulls(pulls, ctx))

    def delete_tag(self, name: str, tag: str, ctx: RequestContext) -> int | None:
        """A tag outside the tag grammar is one the repository cannot have: unknown, as on reads."""

        def change(repo: Repository) -> None:
            self.refuse_immutable(repo, [tag] if tag in repo.tags else [])
            repo.delete_tag(tag, ctx)

        return self._change_existing(name, change)

    def delete_manifest(self, name: str, digest: str, ctx: RequestContext) -> int | None:
        """Refused while an immutable tag points to the manifest, or an index of the repository
        lists it (as Harbor does)."""
        check_digest(digest)

        def change(repo: Repository) -> None:
            self.refuse_immutable(repo, sorted(t for t, d in repo.tags.items() if d == digest))
            repo.refuse_referenced("manifest", digest)
            repo.delete_manifest(digest, ctx)

        return self._change_existing(name, change)

    def delete_manifest_if_tags(self, name: str, digest: str, tags: tuple[str, ...],
                                ctx: RequestContext) -> int | None:
        """Deletes a manifest only while its tags are exactly `tags` (a retention plan's view of
        it): a tag pointed at it since keeps it (ConflictError)."""

        def change(repo: Repository) -> None:
            current = tuple(sorted(t for t, d in repo.tags.items() if d == digest))
            if digest in repo.manifests and current != tuple(sorted(tags)):
                raise ConflictError("the artifact's tags changed since the plan", {"tags": list(current)})
            self.refuse_immutable(repo, list(current))
            repo.refuse_referenced("manifest", digest)
            repo.delete_manifest(digest, ctx)

        return self._change_existing(name, change)

    def set_retention(self, project: str, rules: list, cron: str | None, ctx: RequestContext) -> int | None:
        return self.change_project(project, lambda p: p.set_retention(rules, cron, ctx))

    def remove_retention(self, project: str, ctx: RequestContext) -> int | None:
        return self.change_project(project, lambda p: p.remove_retention(ctx))

    # Deletion and undeletion. A deleted repository, or a deleted tag, can come back as long as
    # garbage collection has not taken the bytes it needs (docs/gc.md).

    def delete_repository(self, name: str, ctx: RequestContext) -> int | None:
        """Refused while an immutable tag is in the repository (as Harbor does)."""

        def change(repo: Repository) -> None:
            self.refuse_immutable(repo, sorted(repo.tags))
            repo.delete(ctx)

        return self._change_existing(name, change)

    def undelete_repository(self, name: str, ctx: RequestContext) -> int | None:
        def change() -> list[Aggregate]:
            repo = self.get_repository(name)
            if repo is None:
                raise NameUnknownError("repository name not known to registry", {"name": name})
            trash = repo.trash or {"blobs": {}, "manifests": {}}
            manifests = [self._stored_manifest(d, media_type) for d, media_type in trash["manifests"].items()]
            self.checks.quotas.check(name, {**trash["blobs"], **{m.digest: m.size for m in manifests}},
                                     len(manifests), ctx)
            fences = self.checks.gc_fence.fences([*trash["blobs"], *trash["manifests"]], "undelete", ctx)
            repo.undelete(manifests, ctx)
            return [repo, *fences]

        return self.save_together(change)

    def undelete_tag(self, name: str, tag: str, ctx: RequestContext, digest: str | None = None) -> int | None:
        """Points `tag` back at `digest` (by default the digest it had when it was deleted),
        bringing its manifest back from the stored bytes if it was deleted meanwhile."""
        check_tag(tag)

        def change() -> list[Aggregate]:
            repo = self.get_repository(name)
            if repo is None or repo.deleted:
                raise NameUnknownError("repository name not known to registry", {"name": name})
            target = digest or repo.deleted_tags.get(tag)
            if target is None:
                raise ManifestUnknownError("no deleted tag of that name", {"tag": tag})
            self.refuse_immutable(repo, [tag] if moved(repo, tag, target) else [])
            fences = []
            if target not in repo.manifests:
                fences = self.checks.gc_fence.fences([target], "undelete", ctx)
                try:
                    repo.push_manifest(self._stored_manifest(target, None), None, ctx)
                except ManifestBlobUnknownError as missing:
                    raise ConflictError("content was garbage-collected", missing.detail) from None
            repo.point_tag(tag, target, ctx)
            return [repo, *fences]

        return self.save_together(change)

    def _stored_manifest(self, digest: str, media_type: str | None) -> ParsedManifest:
        if self.blobs.stat(digest) is None:
            raise ConflictError("the manifest's bytes were garbage-collected", {"digest": digest})
        return parse_manifest(b"".join(self.blobs.read(digest)), media_type, digest)

    def save_together(self, change: Callable[[], list[Aggregate]]) -> int | None:
        """Saves what `change` loaded and changed in one transaction, again on a conflict."""
        for _ in range(MAX_ATTEMPTS):
            try:
                recordings = self.save(*change())
            except IntegrityError:
                continue
            return recordings[-1].notification.id if recordings else None
        raise ConcurrentUpdateError("too many concurrent writers", {})

    def retain(self, digest: str, reason: str, ctx: RequestContext) -> None:
        self.checks.gc_fence.retain(digest, reason, ctx)

    def refuse_immutable(self, repo: Repository, tags: list[str]) -> None:
        self.checks.immutable_tags.refuse(repo, tags)

    def set_quota(self, project: str, limits: QuotaLimits, ctx: RequestContext) -> int | None:
        return self.change_project(project, lambda p: p.set_quota(limits, ctx))

    # Tag immutability rules (domain/immutability.py) are Project events.

    def add_immutable_rule(self, project: str, rule: ImmutableRule, ctx: RequestContext) -> tuple[int, int | None]:
        """(the rule's number in the project, position)."""
        added = []
        position = self.change_project(project, lambda p: added.append(p.add_immutable_rule(rule, ctx)))
        return added[-1], position

    def change_immutable_rule(self, project: str, number: int, rule: ImmutableRule,
                              ctx: RequestContext) -> int | None:
        return self.change_project(project, lambda p: p.change_immutable_rule(number, rule, ctx))

    def remove_immutable_rule(self, project: str, number: int, ctx: RequestContext) -> int | None:
        return self.change_project(project, lambda p: p.remove_immutable_rule(number, ctx))

    def change_project(self, name: str, change: Callable[[Project], None]) -> int | None:
        return self.update(Project.create_id(name), change, missing=lambda: NotFoundError(
            "project not found", {"project": name}))

    # Writers in this process are grouped into one save (domain/group_commit.py); a version
    # conflict with another process is retried against the new state.

    def update(self, aggregate_id: UUID, change: Callable[[Aggregate], None],
               create: Callable[[], Aggregate] | None = None,
               missing: Callable[[], RegistryError] | None = None) -> int | None:
        """Loads (or creates) an aggregate, applies `change`, saves; returns the log position."""
        return self._committer.run(Command(aggregate_id, change, create, missing))

    def load(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if isinstance(aggregate, Repository) and aggregate.lacks_references():
            aggregate = self._replay(aggregate_id)
        return aggregate

    def _replay(self, aggregate_id: UUID) -> Aggregate:
        """The aggregate from all its events, not from its snapshot (one taken before the state
        had what the decisions now need); cached, so once per process until the next snapshot."""
        aggregate = project_aggregate(None, self.events.get(aggregate_id))
        if self.repository.cache is not None:
            self.repository.cache.put(aggregate_id, deepcopy(aggregate))
        return aggregate

    def peek_repository(self, name: str) -> Repository | None:
        """The repository as cached, not copied: only to read, for a check made again when saving."""
        try:
            return self.repository.get(Repository.create_id(name), deepcopy_from_cache=False)
        except AggregateNotFoundError:
            return None

    def _change_existing(self, name: str, change: Callable[[Repository], None]) -> int | None:
        return self.update(Repository.create_id(name), change, missing=lambda: NameUnknownError(
            "repository name not known to registry", {"name": name}))

    def _change(self, name: str, ctx: RequestContext,
                change: Callable[[Repository], None]) -> int | None:
        return self.update(Repository.create_id(name), change,
                           create=lambda: Repository.create(name, ctx))

