"""The registry application service: commands that record events, and upload handling.

Commands return the notification id that read models must reach before the caller
answers, so clients read their own writes.
"""

from __future__ import annotations

import time
from copy import deepcopy
from typing import Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.account import User
from domain.blob import Blob
from domain.context import RequestContext
from domain.errors import (
    AccessDeniedError,
    BlobCondemnedError,
    BlobUnknownError,
    ConcurrentUpdateError,
    ConflictError,
    ManifestBlobUnknownError,
    ManifestUnknownError,
    NameUnknownError,
    NotFoundError,
    QuotaExceededError,
    RegistryError,
    StorageUnavailableError,
    TagImmutableError,
    UploadUnknownError,
)
from domain.group_commit import MAX_ATTEMPTS, Command, GroupCommitter
from domain.immutability import ImmutableRule
from domain.manifests import ParsedManifest, parse_manifest
from domain.names import check_digest, check_tag, is_digest_reference
from domain.permissions import project_of
from domain.ports import BlobStore, UploadInfo
from domain.project import Project
from domain.quotas import NoQuotas, QuotaCheck, QuotaLimits, QuotaReadModel
from domain.repository import Repository, check_references

CONDEMNED_WAIT_SECONDS = 30.0


class Registry(Application):
    name = "portlog"
    snapshotting_intervals = {Repository: 100, Project: 100, User: 100}

    def __init__(self, blobs: BlobStore, env: dict[str, str] | None = None) -> None:
        super().__init__(env=env)
        self.blobs = blobs
        self._committer = GroupCommitter(self, self.load)
        # (project, rule number) -> the rule's public id, the log position of the event that added
        # it: the read model knows it, the aggregate cannot. Only to name the rule in a refusal;
        # api/bootstrap.py wires it.
        self.immutable_rule_id: Callable[[str, int], int | None] = lambda project, number: None
        # Whether garbage collection could be condemning the digest (nothing references it);
        # the references read model knows, api/bootstrap.py wires it.
        self.collectable: Callable[[str], bool] = lambda digest: False
        self.quotas: QuotaReadModel = NoQuotas()  # the quota read model, wired by api/bootstrap.py
        # The upstream endpoint of a proxy-cache project, None for other projects (the access
        # read model knows; api/bootstrap.py wires it). Proxy-cache projects take no pushes.
        self.proxy_registry_of: Callable[[str], str | None] = lambda project: None

    def get_repository(self, name: str) -> Repository | None:
        return self.load(Repository.create_id(name))

    # Blobs and uploads

    def start_upload(self, name: str, caching: bool = False) -> UploadInfo:
        """`caching`: the proxy cache storing what it fetched (the only writer of its projects)."""
        if not caching:
            self._refuse_proxied(name)
        return self.blobs.start_upload(name)

    def get_upload(self, name: str, upload_id: str) -> UploadInfo:
        info = self.blobs.upload_info(upload_id)
        if info is None or info.repository != name:
            raise UploadUnknownError("upload unknown to registry", {"upload": upload_id})
        return info

    def complete_upload(self, name: str, upload: UploadInfo, digest: str, ctx: RequestContext):
        """Completes an upload the caller got from `start_upload` or `get_upload` for `name`
        (not read again: on S3 each look is a request to the bucket)."""
        if upload.repository != name:
            raise UploadUnknownError("upload unknown to registry", {"upload": upload.upload_id})
        try:
            quota = self._check_quota(name, {check_digest(digest): upload.size}, 0, ctx)
        except QuotaExceededError:
            self.blobs.cancel_upload(upload.upload_id)  # nothing of a refused push stays
            raise
        self.retain(digest, "upload", ctx)
        size = self.blobs.complete_upload(upload.upload_id, digest)
        position = self._change(name, ctx, lambda repo: repo.link_blob(digest, size, ctx))
        self._warn_quota(quota, ctx)
        return position

    def cancel_upload(self, name: str, upload_id: str) -> None:
        self.get_upload(name, upload_id)
        self.blobs.cancel_upload(upload_id)

    def mount_blob(self, name: str, digest: str, source: str, ctx: RequestContext) -> int | None:
        """Links a blob of `source` into `name`; None when `source` does not hold it."""
        self._refuse_proxied(name)
        origin = self.get_repository(source)
        size = origin.blobs.get(digest) if origin else None
        if size is None or self.blobs.stat(digest) is None:
            return None
        quota = self._check_quota(name, {digest: size}, 0, ctx)
        try:
            self.retain(digest, "mount", ctx)
        except BlobUnknownError:
            return None  # collected meanwhile: the client uploads it
        position = self._change(name, ctx, lambda repo: repo.link_blob(
            digest, size, ctx, mounted_from=source))
        self._warn_quota(quota, ctx)
        return position

    def adopt_blob(self, name: str, digest: str, ctx: RequestContext) -> int | None:
        """Links into `name` a blob the store holds, for the proxy cache once the upstream has
        shown that the repository has it there; None when the store does not hold it."""
        size = self.blobs.stat(digest)
        if size is None:
            return None
        quota = self._check_quota(name, {digest: size}, 0, ctx)
        try:
            self.retain(digest, "proxy-cache", ctx)
        except BlobUnknownError:
            return None
        position = self._change(name, ctx, lambda repo: repo.link_blob(digest, size, ctx))
        self._warn_quota(quota, ctx)
        return position

    def unlink_blob(self, name: str, digest: str, ctx: RequestContext) -> int | None:
        return self._change_existing(name, lambda repo: repo.unlink_blob(digest, ctx))

    # Manifests and tags

    def push_manifest(self, name: str, reference: str, data: bytes, content_type: str | None,
                      ctx: RequestContext, caching: bool = False) -> tuple[ParsedManifest, int | None]:
        """`caching`: the proxy cache storing what it fetched (the only writer of its projects; an
        index it caches may lack children no one pulled). The manifest is validated — parsed,
        then checked against the repository as it stands — before its bytes are stored, so that
        a refused manifest leaves nothing behind; the repository decides again when it records
        the push (something may have changed in between)."""
        if not caching:
            self._refuse_proxied(name)
        by_digest = is_digest_reference(reference)
        expected = check_digest(reference) if by_digest else None
        tag = None if by_digest else check_tag(reference)
        manifest = parse_manifest(data, content_type, expected)

        def check(repo: Repository | None) -> None:
            if repo is not None and tag is not None:
                self.refuse_immutable(repo, _moved(repo, tag, manifest.digest))
            check_references(manifest, repo.blobs if repo else {}, repo.manifests if repo else {},
                             children_required=not caching)

        check(self._peek_repository(name))
        quota = self._check_quota(name, {manifest.digest: manifest.size}, lambda: self._new_artifacts(name, manifest),
                                  ctx)
        self.retain(manifest.digest, "manifest", ctx)
        self.blobs.put(manifest.digest, data)

        def change(repo: Repository) -> None:
            check(repo)
            repo.push_manifest(manifest, tag, ctx, children_required=not caching)

        position = self._change(name, ctx, change)
        self._warn_quota(quota, ctx)
        return manifest, position

    def record_pulls(self, name: str, pulls: list[dict], ctx: RequestContext) -> int | None:
        return self._change_existing(name, lambda repo: repo.record_pulls(pulls, ctx))

    def point_tag(self, name: str, tag: str, digest: str, ctx: RequestContext) -> int | None:
        check_tag(tag)
        self._refuse_proxied(name)

        def change(repo: Repository) -> None:
            self.refuse_immutable(repo, _moved(repo, tag, digest))
            repo.point_tag(tag, digest, ctx)

        return self._change_existing(name, change)

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
        return self._project(project, lambda p: p.set_retention(rules, cron, ctx))

    def remove_retention(self, project: str, ctx: RequestContext) -> int | None:
        return self._project(project, lambda p: p.remove_retention(ctx))

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
            self._check_quota(name, {**trash["blobs"], **{m.digest: m.size for m in manifests}}, len(manifests), ctx)
            fences = self._fences([*trash["blobs"], *trash["manifests"]], "undelete", ctx)
            repo.undelete(manifests, ctx)
            return [repo, *fences]

        return self._save_fenced(change)

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
            self.refuse_immutable(repo, _moved(repo, tag, target))
            fences = []
            if target not in repo.manifests:
                fences = self._fences([target], "undelete", ctx)
                try:
                    repo.push_manifest(self._stored_manifest(target, None), None, ctx)
                except ManifestBlobUnknownError as missing:
                    raise ConflictError("content was garbage-collected", missing.detail) from None
            repo.point_tag(tag, target, ctx)
            return [repo, *fences]

        return self._save_fenced(change)

    def _stored_manifest(self, digest: str, media_type: str | None) -> ParsedManifest:
        if self.blobs.stat(digest) is None:
            raise ConflictError("the manifest's bytes were garbage-collected", {"digest": digest})
        return parse_manifest(b"".join(self.blobs.read(digest)), media_type, digest)

    def _fences(self, digests: list[str], reason: str, ctx: RequestContext) -> list[Blob]:
        """Blob aggregates retained for `digests`, to save with the change that uses them."""
        fences = []
        for digest in digests:
            blob = self.load(Blob.create_id(digest))
            # Collected bytes may have been pushed again since; a collector condemning them now
            # would change the Blob's version and fail the save.
            if blob is not None and (blob.condemned or (blob.collected and self.blobs.stat(digest) is None)):
                raise ConflictError("content was garbage-collected", {"digest": digest})
            blob = blob or Blob.create(digest, ctx)
            blob.retain(reason, ctx)
            fences.append(blob)
        return fences

    def _save_fenced(self, change: Callable[[], list[Aggregate]]) -> int | None:
        """Saves what `change` loaded and changed in one transaction, again on a conflict."""
        for _ in range(MAX_ATTEMPTS):
            try:
                recordings = self.save(*change())
            except IntegrityError:
                continue
            return recordings[-1].notification.id if recordings else None
        raise ConcurrentUpdateError("too many concurrent writers", {})

    # Garbage collection's fence, on the write paths: a digest nothing references may be
    # condemned by a collector at any moment, so a write that is about to use its bytes again
    # records Blob.Retained first (which a condemnation at the same time conflicts with). For
    # digests that are referenced, or new, `collectable` is False and nothing is recorded.

    def retain(self, digest: str, reason: str, ctx: RequestContext) -> None:
        if not self.collectable(digest):
            return
        deadline = time.monotonic() + CONDEMNED_WAIT_SECONDS
        while True:
            try:
                self.update(Blob.create_id(digest), lambda blob: blob.retain(reason, ctx),
                            create=lambda: Blob.create(digest, ctx))
                return
            except BlobCondemnedError:
                if time.monotonic() > deadline:
                    raise StorageUnavailableError("the blob is being garbage-collected; retry",
                                                  {"digest": digest}) from None
                time.sleep(0.05)  # the collector is deleting the bytes: store them after it

    def _refuse_proxied(self, name: str) -> None:
        project = project_of(name)
        upstream = self.proxy_registry_of(project)
        if upstream is not None:
            raise AccessDeniedError(f"{project} is a proxy-cache project of the registry {upstream}: "
                                    "it takes no pushes", {"project": project, "registry": upstream})

    # Quotas (domain/quotas.py): checked before anything is stored.

    def set_quota(self, project: str, limits: QuotaLimits, ctx: RequestContext) -> int | None:
        return self._project(project, lambda p: p.set_quota(limits, ctx))

    def _check_quota(self, name: str, sizes: dict[str, int], artifacts: int | Callable[[], int],
                     ctx: RequestContext) -> QuotaCheck | None:
        """Raises QuotaExceededError (and records the refusal) when adding `sizes` and
        `artifacts` (a count, or a function giving it) would take the project over a quota."""
        project = project_of(name)
        usage = self.quotas.limited_usage(project)
        if usage is None:
            return None
        artifacts = artifacts() if callable(artifacts) else artifacts
        held = self.quotas.held(project, list(sizes))
        adding = sum(size for digest, size in sizes.items() if digest not in held)
        try:
            usage.check(adding, artifacts)
        except QuotaExceededError as refused:
            detail = refused.detail
            self._project(project, lambda p: p.record_quota_exceeded(detail, name, ctx))
            raise
        return QuotaCheck(usage, adding, artifacts)

    def _new_artifacts(self, name: str, manifest: ParsedManifest) -> int:
        existing = self.get_repository(name)
        return 0 if existing is not None and manifest.digest in existing.manifests else 1

    def _warn_quota(self, check: QuotaCheck | None, ctx: RequestContext) -> None:
        for resource, used, limit in check.usage.warnings(check.adding_bytes, check.adding_artifacts) if check else ():
            self._project(check.usage.project, lambda p, r=resource, u=used, lim=limit: p.record_quota_warning(
                r, u, lim, ctx))

    # Tag immutability (domain/immutability.py): rules are Project events; every command that
    # would move or delete a tag checks them as the log has them now.

    def add_immutable_rule(self, project: str, rule: ImmutableRule, ctx: RequestContext) -> tuple[int, int | None]:
        """(the rule's number in the project, position)."""
        added = []
        position = self._project(project, lambda p: added.append(p.add_immutable_rule(rule, ctx)))
        return added[-1], position

    def change_immutable_rule(self, project: str, number: int, rule: ImmutableRule,
                              ctx: RequestContext) -> int | None:
        return self._project(project, lambda p: p.change_immutable_rule(number, rule, ctx))

    def remove_immutable_rule(self, project: str, number: int, ctx: RequestContext) -> int | None:
        return self._project(project, lambda p: p.remove_immutable_rule(number, ctx))

    def refuse_immutable(self, repo: Repository, tags: list[str]) -> None:
        """Raises TagImmutableError when an enabled rule of the repository's project protects
        one of `tags`. The project is loaded only when there is a tag to check."""
        project = self.load(Project.create_id(project_of(repo.name))) if tags else None
        if project is None:
            return
        for tag in tags:
            number = project.rule_protecting(repo.name, tag)
            if number is not None:
                raise self._immutable(repo.name, tag, project.name, number)

    def _immutable(self, repository: str, tag: str, project: str, number: int) -> TagImmutableError:
        rule_id = self.immutable_rule_id(project, number)
        rule = f"immutability rule {rule_id}" if rule_id is not None else f"an immutability rule of {project}"
        return TagImmutableError(f"tag {tag} of {repository} is immutable ({rule})",
                                 {"repository": repository, "tag": tag, "rule": rule_id})

    def _project(self, name: str, change: Callable[[Project], None]) -> int | None:
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

    def _peek_repository(self, name: str) -> Repository | None:
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


def _moved(repo: Repository, tag: str, digest: str) -> list[str]:
    """[tag] when pointing it at `digest` would move it from another manifest; pointing a new
    tag, or a tag at the manifest it already has, moves nothing."""
    current = repo.tags.get(tag)
    return [tag] if current is not None and current != digest else []
