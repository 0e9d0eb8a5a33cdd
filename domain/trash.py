"""The trash: deleting a repository, and undeleting a repository or a tag. A deleted repository, or a
deleted tag, can come back as long as garbage collection has not taken the bytes it needs
(docs/gc.md): an undelete saves the Blob fences it needs in one transaction with the change."""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from domain.application import Registry
from domain.context import RequestContext
from domain.errors import ConflictError, ManifestBlobUnknownError, ManifestUnknownError, NameUnknownError
from domain.manifests import ParsedManifest, parse_manifest
from domain.names import check_tag
from domain.push_checks import PushChecks, moved
from domain.repository import Repository


class Trash:
    def __init__(self, app: Registry, checks: PushChecks) -> None:
        self.app = app
        self.refuse_immutable = checks.immutable_tags.refuse
        self.quotas = checks.quotas
        self.gc_fence = checks.gc_fence

    def delete_repository(self, name: str, ctx: RequestContext) -> int | None:
        """Refused while an immutable tag is in the repository (as Harbor does)."""

        def change(repo: Repository) -> None:
            self.refuse_immutable(repo, sorted(repo.tags))
            repo.delete(ctx)

        return self.app.change_existing_repository(name, change)

    def undelete_repository(self, name: str, ctx: RequestContext) -> int | None:
        def change() -> list[Aggregate]:
            repo = self.app.get_repository(name)
            if repo is None:
                raise NameUnknownError("repository name not known to registry", {"name": name})
            trash = repo.trash or {"blobs": {}, "manifests": {}}
            manifests = [self._stored_manifest(d, media_type) for d, media_type in trash["manifests"].items()]
            self.quotas.check(name, {**trash["blobs"], **{m.digest: m.size for m in manifests}}, len(manifests), ctx)
            fences = self.gc_fence.fences([*trash["blobs"], *trash["manifests"]], "undelete", ctx)
            repo.undelete(manifests, ctx)
            return [repo, *fences]

        return self.app.save_together(change)

    def undelete_tag(self, name: str, tag: str, ctx: RequestContext, digest: str | None = None) -> int | None:
        """Points `tag` back at `digest` (by default the digest it had when it was deleted),
        bringing its manifest back from the stored bytes if it was deleted meanwhile."""
        check_tag(tag)

        def change() -> list[Aggregate]:
            repo = self.app.get_repository(name)
            if repo is None or repo.deleted:
                raise NameUnknownError("repository name not known to registry", {"name": name})
            target = digest or repo.deleted_tags.get(tag)
            if target is None:
                raise ManifestUnknownError("no deleted tag of that name", {"tag": tag})
            self.refuse_immutable(repo, [tag] if moved(repo, tag, target) else [])
            fences = []
            if target not in repo.manifests:
                fences = self.gc_fence.fences([target], "undelete", ctx)
                try:
                    repo.push_manifest(self._stored_manifest(target, None), None, ctx)
                except ManifestBlobUnknownError as missing:
                    raise ConflictError("content was garbage-collected", missing.detail) from None
            repo.point_tag(tag, target, ctx)
            return [repo, *fences]

        return self.app.save_together(change)

    def _stored_manifest(self, digest: str, media_type: str | None) -> ParsedManifest:
        if self.app.blobs.stat(digest) is None:
            raise ConflictError("the manifest's bytes were garbage-collected", {"digest": digest})
        return parse_manifest(b"".join(self.app.blobs.read(digest)), media_type, digest)
