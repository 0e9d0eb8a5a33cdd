"""This registry as one end of a copy (domain/transfer.py Side): reads from the catalog read
model and the blob store, writes through the registry's commands — the same checks, events,
quotas and GC fence as a client's push, attributed to the replication's context."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import Iterable, Iterator

from domain.context import RequestContext
from domain.names import is_digest_reference


class LocalSide:
    def __init__(self, services, ctx: RequestContext) -> None:
        self.services = services
        self.ctx = ctx

    def manifest(self, name: str, reference: str) -> tuple[bytes, str, str] | None:
        row = self._row(name, reference)
        if row is None:
            return None
        return self.services.manifests.read(row.digest), row.media_type, row.digest

    def manifest_digest(self, name: str, reference: str) -> str | None:
        row = self._row(name, reference)
        return row.digest if row else None

    def put_manifest(self, name: str, reference: str, data: bytes, media_type: str) -> str:
        manifest, position = self.services.artifacts.push_manifest(name, reference, data, media_type, self.ctx)
        self.services.projections.wait_for(position)
        return manifest.digest

    def blob_exists(self, name: str, digest: str) -> bool:
        return self.services.catalog.blob_size(name, digest) is not None

    @contextmanager
    def open_blob(self, name: str, digest: str) -> Iterator[tuple[int, Iterable[bytes]]]:
        size = self.services.catalog.blob_size(name, digest)
        if size is None:
            raise LookupError(f"{name}@{digest} is not in this registry")
        yield size, self.services.blobs.read(digest)

    def push_blob(self, name: str, digest: str, size: int, chunks: Iterable[bytes]) -> None:
        uploads = self.services.uploads
        upload = uploads.start_upload(name)
        writer = self.services.blobs.upload_writer(upload.upload_id)
        try:
            for chunk in chunks:
                writer.write(chunk)
            written = writer.commit()
        except BaseException:
            writer.abort()
            uploads.cancel_upload(name, upload.upload_id)
            raise
        position = uploads.complete_upload(name, replace(upload, size=written), digest, self.ctx)
        self.services.projections.wait_for(position)

    def mount_blob(self, name: str, digest: str, from_name: str) -> bool:
        position = self.services.uploads.mount_blob(name, digest, from_name, self.ctx)
        self.services.projections.wait_for(position)
        return position is not None or self.blob_exists(name, digest)

    def delete_manifest(self, name: str, digest: str) -> None:
        self.services.projections.wait_for(self.services.artifacts.delete_manifest(name, digest, self.ctx))

    def referrers(self, name: str, digest: str) -> list[str]:
        return [row.digest for row in self.services.catalog.referrers(name, digest, None)]

    def _row(self, name: str, reference: str):
        catalog = self.services.catalog
        if is_digest_reference(reference):
            return catalog.manifest_by_digest(name, reference)
        return catalog.manifest_by_tag(name, reference)
