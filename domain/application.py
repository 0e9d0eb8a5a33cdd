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
from domain.errors import NameUnknownError, RegistryError, UploadUnknownError
from domain.group_commit import Command, GroupCommitter
from domain.manifests import ParsedManifest, parse_manifest
from domain.names import check_digest, check_tag, is_digest_reference
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

    def complete_upload(self, name: str, upload_id: str, digest: str, ctx: RequestContext):
        self.get_upload(name, upload_id)
        size = self.blobs.complete_upload(upload_id, check_digest(digest))
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
        position = self._change(name, ctx, lambda repo: repo.push_manifest(
            manifest, tag, ctx))
        return manifest, position

    def record_pulls(self, name: str, pulls: list[dict], ctx: RequestContext) -> int | None:
        return self._change_existing(name, lambda repo: repo.record_pulls(pulls, ctx))

    def point_tag(self, name: str, tag: str, digest: str, ctx: RequestContext) -> int | None:
        check_tag(tag)
        return self._change_existing(name, lambda repo: repo.point_tag(tag, digest, ctx))

    def delete_tag(self, name: str, tag: str, ctx: RequestContext) -> int | None:
        check_tag(tag)
        return self._change_existing(name, lambda repo: repo.delete_tag(
            tag, ctx))

    def delete_manifest(self, name: str, digest: str, ctx: RequestContext) -> int | None:
        check_digest(digest)
        return self._change_existing(name, lambda repo: repo.delete_manifest(
            digest, ctx))

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
