"""Manifests and tags: pushing a manifest, pointing and deleting tags, deleting manifests,
recording pulls. Pushes pass the push checks (domain/push_checks.py); a tag move or delete is
refused while an immutability rule protects the tag."""

from __future__ import annotations

from domain.application import Registry
from domain.context import RequestContext
from domain.errors import ConflictError
from domain.manifests import ParsedManifest, parse_manifest
from domain.names import check_digest, check_tag, is_digest_reference
from domain.push_checks import Push, PushChecks
from domain.repository import Repository


class Artifacts:
    def __init__(self, app: Registry, checks: PushChecks) -> None:
        self.app = app
        self.checks = checks
        self.refuse_immutable = checks.immutable_tags.refuse

    def push_manifest(self, name: str, reference: str, data: bytes, content_type: str | None,
                      ctx: RequestContext, caching: bool = False) -> tuple[ParsedManifest, int | None]:
        """`caching`: the proxy cache storing what it fetched. The manifest is parsed, then
        checked before its bytes are stored, so that a refused manifest leaves nothing behind;
        the checks run again when the repository records the push (something may have changed
        in between)."""
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
        self.app.blobs.put(manifest.digest, data)
        position = self.checks.record(push, lambda repo: repo.push_manifest(manifest, tag, ctx,
                                                                            children_required=not caching))
        return manifest, position

    def _new_artifacts(self, name: str, manifest: ParsedManifest) -> int:
        existing = self.app.get_repository(name)
        return 0 if existing is not None and manifest.digest in existing.manifests else 1

    def point_tag(self, name: str, tag: str, digest: str, ctx: RequestContext) -> int | None:
        check_tag(tag)
        push = Push(name, ctx, points={tag: digest})
        self.checks.admit(push)
        self.checks.check(push)
        return self.checks.record(push, lambda repo: repo.point_tag(tag, digest, ctx), existing=True)

    def record_pulls(self, name: str, pulls: list[dict], ctx: RequestContext) -> int | None:
        return self.app.change_existing_repository(name, lambda repo: repo.record_pulls(pulls, ctx))

    def delete_tag(self, name: str, tag: str, ctx: RequestContext) -> int | None:
        """A tag outside the tag grammar is one the repository cannot have: unknown, as on reads."""

        def change(repo: Repository) -> None:
            self.refuse_immutable(repo, [tag] if tag in repo.tags else [])
            repo.delete_tag(tag, ctx)

        return self.app.change_existing_repository(name, change)

    def delete_manifest(self, name: str, digest: str, ctx: RequestContext) -> int | None:
        """Refused while an immutable tag points to the manifest, or an index of the repository
        lists it (as Harbor does)."""
        check_digest(digest)
        return self.app.change_existing_repository(name, lambda repo: self._delete_manifest(repo, digest, ctx))

    def delete_manifest_if_tags(self, name: str, digest: str, tags: tuple[str, ...],
                                ctx: RequestContext) -> int | None:
        """Deletes a manifest only while its tags are exactly `tags` (a retention plan's view of
        it): a tag pointed at it since keeps it (ConflictError)."""

        def change(repo: Repository) -> None:
            current = tuple(sorted(t for t, d in repo.tags.items() if d == digest))
            if digest in repo.manifests and current != tuple(sorted(tags)):
                raise ConflictError("the artifact's tags changed since the plan", {"tags": list(current)})
            self._delete_manifest(repo, digest, ctx)

        return self.app.change_existing_repository(name, change)

    def _delete_manifest(self, repo: Repository, digest: str, ctx: RequestContext) -> None:
        self.refuse_immutable(repo, sorted(t for t, d in repo.tags.items() if d == digest))
        repo.refuse_referenced("manifest", digest)
        repo.delete_manifest(digest, ctx)
