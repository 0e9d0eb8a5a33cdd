"""Blob uploads, mounts, and the blobs the proxy cache adopts: the push paths that link a blob
into a repository. Each passes the push checks (domain/push_checks.py)."""

from __future__ import annotations

from domain.application import Registry
from domain.context import RequestContext
from domain.errors import BlobUnknownError, QuotaExceededError, UploadUnknownError
from domain.names import check_digest
from domain.ports import UploadInfo
from domain.push_checks import Push, PushChecks


class Uploads:
    def __init__(self, app: Registry, checks: PushChecks) -> None:
        self.app = app
        self.blobs = app.blobs
        self.checks = checks

    def start_upload(self, name: str, caching: bool = False) -> UploadInfo:
        """`caching`: the proxy cache storing what it fetched (the only writer of its projects)."""
        self.checks.admit(Push(name, None, caching))
        return self.blobs.start_upload(name)

    def get_upload(self, name: str, upload_id: str) -> UploadInfo:
        info = self.blobs.upload_info(upload_id)
        if info is None or info.repository != name:
            raise UploadUnknownError("upload unknown to registry", {"upload": upload_id})
        return info

    def complete_upload(self, name: str, upload: UploadInfo, digest: str, ctx: RequestContext) -> int | None:
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
        return self.checks.record(push, lambda repo: repo.link_blob(digest, size, ctx))

    def cancel_upload(self, name: str, upload_id: str) -> None:
        self.get_upload(name, upload_id)
        self.blobs.cancel_upload(upload_id)

    def mount_blob(self, name: str, digest: str, source: str, ctx: RequestContext) -> int | None:
        """Links a blob of `source` into `name`; None when `source` does not hold it."""
        push = Push(name, ctx, retain="mount")
        self.checks.admit(push)
        origin = self.app.get_repository(source)
        size = origin.blobs.get(digest) if origin else None
        if size is None or self.blobs.stat(digest) is None:
            return None
        push.sizes = {digest: size}
        try:
            self.checks.check(push)
        except BlobUnknownError:
            return None  # collected meanwhile: the client uploads it
        return self.checks.record(push, lambda repo: repo.link_blob(digest, size, ctx, mounted_from=source))

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
        return self.checks.record(push, lambda repo: repo.link_blob(digest, size, ctx))

    def retain(self, digest: str, reason: str, ctx: RequestContext) -> None:
        """A client told that the blob exists (`head`) relies on its bytes: garbage collection's
        fence (domain/blob.py GcFence)."""
        self.checks.gc_fence.retain(digest, reason, ctx)

    def unlink_blob(self, name: str, digest: str, ctx: RequestContext) -> int | None:
        return self.app.change_existing_repository(name, lambda repo: repo.unlink_blob(digest, ctx))
