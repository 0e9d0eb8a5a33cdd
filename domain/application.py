"""The registry application service: commands that record events, and upload handling.

Commands return the notification id that read models must reach before the caller
answers, so clients read their own writes.
"""

from __future__ import annotations

from typing import Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate

from domain.account import User
from domain.context import RequestContext
from domain.errors import NameUnknownError, NotFoundError, RegistryError, TagImmutableError, UploadUnknownError
from domain.group_commit import Command, GroupCommitter
from domain.immutability import ImmutableRule
from domain.manifests import ParsedManifest, parse_manifest
from domain.names import check_digest, check_tag, is_digest_reference
from domain.permissions import project_of
from domain.ports import BlobStore, UploadInfo
from domain.project import Project
from domain.repository import Repository


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

    def get_repository(self, name: str) -> Repository | None:
        return self.load(Repository.create_id(name))

    # Blobs and uploads

    def start_upload(self, name: str) -> UploadInfo:
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
        size = self.blobs.complete_upload(upload.upload_id, check_digest(digest))
        return self._change(name, ctx, lambda repo: repo.link_blob(digest, size, ctx))

    def cancel_upload(self, name: str, upload_id: str) -> None:
        self.get_upload(name, upload_id)
        self.blobs.cancel_upload(upload_id)

    def mount_blob(self, name: str, digest: str, source: str, ctx: RequestContext) -> int | None:
        """Links a blob of `source` into `name`; None when `source` does not hold it."""
        origin = self.get_repository(source)
        size = origin.blobs.get(digest) if origin else None
        if size is None or self.blobs.stat(digest) is None:
            return None
        return self._change(name, ctx, lambda repo: repo.link_blob(
            digest, size, ctx, mounted_from=source))

    def unlink_blob(self, name: str, digest: str, ctx: RequestContext) -> int | None:
        return self._change_existing(name, lambda repo: repo.unlink_blob(digest, ctx))

    # Manifests and tags

    def push_manifest(self, name: str, reference: str, data: bytes, content_type: str | None,
                      ctx: RequestContext) -> tuple[ParsedManifest, int | None]:
        by_digest = is_digest_reference(reference)
        expected = check_digest(reference) if by_digest else None
        tag = None if by_digest else check_tag(reference)
        manifest = parse_manifest(data, content_type, expected)
        self.blobs.put(manifest.digest, data)

        def change(repo: Repository) -> None:
            if tag is not None:
                self._refuse_immutable(repo, _moved(repo, tag, manifest.digest))
            repo.push_manifest(manifest, tag, ctx)

        return manifest, self._change(name, ctx, change)

    def record_pulls(self, name: str, pulls: list[dict], ctx: RequestContext) -> int | None:
        return self._change_existing(name, lambda repo: repo.record_pulls(pulls, ctx))

    def point_tag(self, name: str, tag: str, digest: str, ctx: RequestContext) -> int | None:
        check_tag(tag)

        def change(repo: Repository) -> None:
            self._refuse_immutable(repo, _moved(repo, tag, digest))
            repo.point_tag(tag, digest, ctx)

        return self._change_existing(name, change)

    def delete_tag(self, name: str, tag: str, ctx: RequestContext) -> int | None:
        check_tag(tag)

        def change(repo: Repository) -> None:
            self._refuse_immutable(repo, [tag] if tag in repo.tags else [])
            repo.delete_tag(tag, ctx)

        return self._change_existing(name, change)

    def delete_manifest(self, name: str, digest: str, ctx: RequestContext) -> int | None:
        """Refused while an immutable tag points to the manifest (as Harbor does)."""
        check_digest(digest)

        def change(repo: Repository) -> None:
            self._refuse_immutable(repo, sorted(t for t, d in repo.tags.items() if d == digest))
            repo.delete_manifest(digest, ctx)

        return self._change_existing(name, change)

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

    def _refuse_immutable(self, repo: Repository, tags: list[str]) -> None:
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
            return self.repository.get(aggregate_id)
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
