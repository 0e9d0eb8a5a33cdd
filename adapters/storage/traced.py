"""A blob store whose operations are spans (tracing on: the composition root wraps the store
it chose in this). Reads are spans from the call to the last chunk; anything not listed here
goes straight to the store underneath."""

from __future__ import annotations

from typing import Any, BinaryIO, Iterator

from adapters.tracing import Tracing
from domain.ports import BlobStore, UploadInfo


class TracedBlobStore:
    def __init__(self, inner: BlobStore, tracing: Tracing) -> None:
        self.inner = inner
        self.tracing = tracing
        self.local_files = inner.local_files

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stat(self, digest: str) -> int | None:
        with self.tracing.span("blob stat", **{"portlog.digest": digest}):
            return self.inner.stat(digest)

    def read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        span = self.tracing.detached_span("blob read", **{"portlog.digest": digest, "portlog.offset": offset})
        try:
            size = 0
            for chunk in self.inner.read(digest, offset, length):
                size += len(chunk)
                yield chunk
            span.set_attribute("portlog.bytes", size)
        finally:
            span.end()

    def open(self, digest: str) -> BinaryIO:
        with self.tracing.span("blob open", **{"portlog.digest": digest}):
            return self.inner.open(digest)

    def put(self, digest: str, data: bytes) -> None:
        with self.tracing.span("blob put", **{"portlog.digest": digest, "portlog.bytes": len(data)}):
            self.inner.put(digest, data)

    def delete(self, digest: str) -> None:
        with self.tracing.span("blob delete", **{"portlog.digest": digest}):
            self.inner.delete(digest)

    def start_upload(self, repository: str) -> UploadInfo:
        with self.tracing.span("blob start_upload"):
            return self.inner.start_upload(repository)

    def complete_upload(self, upload_id: str, digest: str) -> int:
        with self.tracing.span("blob complete_upload", **{"portlog.digest": digest}) as span:
            size = self.inner.complete_upload(upload_id, digest)
            span.set_attribute("portlog.bytes", size)
            return size

    def cancel_upload(self, upload_id: str) -> None:
        with self.tracing.span("blob cancel_upload"):
            self.inner.cancel_upload(upload_id)
