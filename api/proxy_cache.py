"""Proxy-cache projects (docs/proxy-cache.md): a project bound to an upstream registry endpoint
mirrors it on demand; `<project>/<path>` here is `<path>` there.

Manifests by digest: a cached one is served as it is (a digest names its bytes for ever); a miss
is fetched from the upstream, served, and cached in the background. By tag: a HEAD asks the
upstream which digest the tag has now; the cached manifest is served when it is that one, the
upstream's otherwise (and cached). When the upstream cannot answer — unreachable, 5xx, 429,
credentials refused — the cached copy is served: a cache that fails with its upstream is no
cache. A tag the upstream says it does not have is deleted here too (as Harbor does).

Blobs: a blob the repository holds is served from here without asking anyone. A miss is streamed
from the upstream to the client and into an upload at once; the upload completes (the digest
checked, the blob linked into the repository) when the last byte has gone through.

Caching a manifest: the registry takes a manifest only once its blobs are in the repository, so
a background worker waits for the client downloads under way, fetches what no client asked for
(a client that has the layers asks for none), then stores the manifest and points the tag. An
index is stored at once (its children are not required): the children are cached as clients pull
them, so only the platforms in use take space.

Everything cached goes through the registry's commands as the actor "proxy-cache" (the pulling
request's id kept): it is in the log, counts against quotas, and retention and GC treat it as
anything pushed. Nothing else may push into a proxy-cache project (domain/push_checks.py).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, AsyncIterator, Callable, Iterator

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from domain.context import RequestContext
from domain.errors import (
    BlobUnknownError,
    ManifestUnknownError,
    RegistryError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
)
from domain.manifests import parse_manifest
from domain.names import check_digest, check_tag, is_digest_reference
from domain.ports import UploadInfo, UploadWriter
from projections.catalog import ManifestRow

log = logging.getLogger("portlog.proxy_cache")

ACTOR = "proxy-cache"
FILL_WORKERS = 4
DOWNLOAD_WAIT_SECONDS = 600.0  # how long a fill waits for a client's download of a blob


@dataclass(frozen=True)
class Upstream:
    """Where a proxied repository comes from: the endpoint's name, and the repository's name there."""

    endpoint: str
    repository: str


@dataclass(frozen=True)
class Fetched:
    """A manifest the upstream gave, not (yet) cached; `size` and `digest` as a ManifestRow has them."""

    data: bytes
    media_type: str
    digest: str

    @property
    def size(self) -> int:
        return len(self.data)


class ProxyCache:
    def __init__(self, services, client_for: Callable[[str], Any],
                 upstream_errors: tuple[type[Exception], ...]) -> None:
        """`client_for(endpoint name)` gives a registry client of the endpoint (RegistryClient);
        `upstream_errors` are the exceptions its calls raise for the upstream's failures."""
        self.services = services
        self._client_for = client_for
        self._upstream_errors = upstream_errors
        self._clients: dict[str, tuple[datetime, Any]] = {}
        self._lock = threading.Lock()
        self._downloads = threading.Condition(self._lock)
        self._downloading: dict[str, int] = {}  # digest -> client downloads under way
        self._filling: set[tuple[str, str, str | None]] = set()
        self._pool = ThreadPoolExecutor(FILL_WORKERS, thread_name_prefix="proxy-cache")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for _, client in clients:
            client.close()

    def upstream_of(self, name: str) -> Upstream | None:
        """The upstream of a repository of a proxy-cache project; None for any other."""
        project, _, path = name.partition("/")
        row = self.services.access.project(project) if path else None
        if row is None or row.proxy_registry is None:
            return None
        return Upstream(row.proxy_registry, path)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Whether every background fill finished within `timeout` (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._filling and not self._downloading:
                    return True
            time.sleep(0.02)
        return False

    # --- manifests ---

    def manifest(self, name: str, upstream: Upstream, reference: str,
                 ctx: RequestContext) -> ManifestRow | Fetched:
        """What a GET or HEAD of the manifest answers: a cached row, or what the upstream gave."""
        catalog = self.services.catalog
        if is_digest_reference(reference):
            cached = catalog.manifest_by_digest(name, check_digest(reference))
            if cached is not None:
                return cached
            fetched = self._fetch_manifest(upstream, reference)
            self._cache_later(name, upstream, fetched, None, ctx)
            return fetched
        tag = check_tag(reference)
        cached = catalog.manifest_by_tag(name, tag)
        try:
            current = self._call(upstream, lambda client: client.manifest_digest(upstream.repository, tag))
        except (UpstreamUnavailableError, UpstreamRateLimitedError) as error:
            if cached is None:
                raise
            log.info("serving the cached %s:%s: %s", name, tag, error.message)
            return cached
        if current is None:
            if cached is not None:
                self._forget_tag(name, tag, ctx)
            raise ManifestUnknownError("manifest unknown to the upstream registry",
                                       {"reference": tag, "registry": upstream.endpoint})
        if cached is not None and cached.digest == current:
            return cached
        held = catalog.manifest_by_digest(name, current)
        if held is not None:
            fetched = Fetched(self.services.manifests.read(current), held.media_type, current)
        else:
            fetched = self._fetch_manifest(upstream, current)  # by digest: what the HEAD said
        self._cache_later(name, upstream, fetched, tag, ctx)
        return fetched

    def _fetch_manifest(self, upstream: Upstream, digest_or_tag: str) -> Fetched:
        try:
            found = self._call(upstream, lambda client: client.manifest(upstream.repository, digest_or_tag))
        except _UpstreamNotFound:
            raise ManifestUnknownError("manifest unknown to the upstream registry",
                                       {"reference": digest_or_tag, "registry": upstream.endpoint}) from None
        return Fetched(found.data, found.media_type, found.digest)

    def _forget_tag(self, name: str, tag: str, ctx: RequestContext) -> None:
        try:
            self.services.projections.wait_for(self.services.artifacts.delete_tag(name, tag, _as_cache(ctx)))
        except RegistryError as error:  # an immutable tag stays
            log.info("keeping %s:%s, gone upstream: %s", name, tag, error.message)

    # --- blobs ---

    def open_blob(self, name: str, upstream: Upstream, digest: str,
                  ctx: RequestContext) -> tuple[int, AsyncIterator[bytes]] | None:
        """A blob the repository lacks: (size, its chunks streamed from the upstream while they
        are cached). None when it is in the repository now (the store had the bytes)."""
        found = self._open_unless_held(name, upstream, digest, ctx)
        if found is None:
            return None
        opened, stream = found
        if stream.size is None:
            opened.__exit__(None, None, None)
            raise UpstreamUnavailableError("the upstream registry did not say the blob's size",
                                           {"digest": digest, "registry": upstream.endpoint})
        chunks = self._cached_while_read(name, digest, opened, stream, ctx)
        return stream.size, _closing_in_threadpool(chunks)

    def blob_size(self, upstream: Upstream, digest: str) -> int:
        """The size of a blob the upstream has (a HEAD of a blob not cached yet)."""
        opened, stream = self._open_upstream_blob(upstream, digest)
        opened.__exit__(None, None, None)  # the size is in the headers: no byte of the body is read
        if stream.size is None:
            raise UpstreamUnavailableError("the upstream registry did not say the blob's size",
                                           {"digest": digest, "registry": upstream.endpoint})
        return stream.size

    def _open_upstream_blob(self, upstream: Upstream, digest: str) -> tuple[AbstractContextManager, Any]:
        """(the open response, to exit once done; the stream of its chunks)."""
        def open_now(client):
            opened = client.open_blob(upstream.repository, digest)
            return opened, opened.__enter__()

        try:
            return self._call(upstream, open_now)
        except _UpstreamNotFound:
            raise BlobUnknownError("blob unknown to the upstream registry",
                                   {"digest": digest, "registry": upstream.endpoint}) from None

    def _open_unless_held(self, name: str, upstream: Upstream, digest: str,
                          ctx: RequestContext) -> tuple[AbstractContextManager, Any] | None:
        """The upstream's stream of the blob; None when the store had its bytes, which are now
        linked into the repository."""
        opened, stream = self._open_upstream_blob(upstream, digest)
        try:
            if not self._adopt(name, digest, ctx):
                return opened, stream
        except BaseException:
            opened.__exit__(None, None, None)
            raise
        opened.__exit__(None, None, None)
        return None

    def _adopt(self, name: str, digest: str, ctx: RequestContext) -> bool:
        """Links bytes the store already holds (the upstream has just shown it has the blob)."""
        position = self.services.uploads.adopt_blob(name, digest, _as_cache(ctx))
        if position is None:
            return self.services.catalog.blob_size(name, digest) is not None
        self.services.projections.wait_for(position)
        return True

    def _cached_while_read(self, name: str, digest: str, opened: AbstractContextManager, stream,
                           ctx: RequestContext) -> Iterator[bytes]:
        """The upstream's chunks, each written to an upload as it goes by; the upload completes
        after the last one. A reader that stops early leaves nothing behind, and the store
        failing only stops the caching, never the reader's download."""
        self._download_started(digest)
        upload, writer = self._open_upload(name, digest)
        try:
            for chunk in stream:
                if writer is not None and not self._written(writer, chunk, name, digest):
                    self._abandon(upload, writer)
                    writer = None
                yield chunk
            if writer is not None:
                done, writer = writer, None
                self._complete(name, upload, done, digest, ctx)
        finally:
            if writer is not None:
                self._abandon(upload, writer)
            opened.__exit__(None, None, None)
            self._download_ended(digest)

    def _open_upload(self, name: str, digest: str) -> tuple[UploadInfo | None, UploadWriter | None]:
        try:
            upload = self.services.uploads.start_upload(name, caching=True)
            return upload, self.services.blobs.upload_writer(upload.upload_id)
        except Exception as error:  # the store: this download goes on, uncached
            log.warning("cannot cache %s@%s: %s", name, digest, getattr(error, "message", error))
            return None, None

    def _written(self, writer: UploadWriter, chunk: bytes, name: str, digest: str) -> bool:
        try:
            writer.write(chunk)
            return True
        except Exception as error:
            log.warning("stopped caching %s@%s: %s", name, digest, getattr(error, "message", error))
            return False

    def _abandon(self, upload: UploadInfo, writer: UploadWriter) -> None:
        try:
            writer.abort()
            self.services.blobs.cancel_upload(upload.upload_id)
        except Exception:  # an upload left behind is aborted as stale later
            log.exception("could not cancel the upload %s", upload.upload_id)

    def _complete(self, name: str, upload: UploadInfo, writer: UploadWriter, digest: str,
                  ctx: RequestContext) -> None:
        """The reader has every byte by now: a failure here only means the blob is not cached."""
        try:
            size = writer.commit()
        except Exception as error:
            log.warning("could not cache %s@%s: %s", name, digest, getattr(error, "message", error))
            self._abandon(upload, writer)
            return
        try:
            position = self.services.uploads.complete_upload(name, replace(upload, size=size), digest,
                                                             _as_cache(ctx))
            self.services.projections.wait_for(position)
        except RegistryError as error:  # over quota, or not the bytes the digest names
            log.warning("could not cache %s@%s: %s", name, digest, error.message)

    def _download_started(self, digest: str) -> None:
        with self._lock:
            self._downloading[digest] = self._downloading.get(digest, 0) + 1

    def _download_ended(self, digest: str) -> None:
        with self._lock:
            left = self._downloading.pop(digest) - 1
            if left:
                self._downloading[digest] = left
            self._downloads.notify_all()

    def _wait_for_downloads(self, digest: str) -> None:
        with self._lock:
            self._downloads.wait_for(lambda: digest not in self._downloading, DOWNLOAD_WAIT_SECONDS)

    # --- caching manifests in the background ---

    def _cache_later(self, name: str, upstream: Upstream, fetched: Fetched, tag: str | None,
                     ctx: RequestContext) -> None:
        key = (name, fetched.digest, tag)
        with self._lock:
            if key in self._filling:
                return
            self._filling.add(key)
        self._pool.submit(self._fill, key, upstream, fetched, _as_cache(ctx))

    def _fill(self, key: tuple[str, str, str | None], upstream: Upstream, fetched: Fetched,
              ctx: RequestContext) -> None:
        name, digest, tag = key
        try:
            manifest = parse_manifest(fetched.data, fetched.media_type, digest)
            for blob in manifest.required_blobs:
                self._ensure_blob(name, upstream, blob.digest, ctx)
            _, position = self.services.artifacts.push_manifest(
                name, tag or digest, fetched.data, fetched.media_type, ctx, caching=True)
            self.services.projections.wait_for(position)
        except Exception as error:  # the client was served; the next pull tries again
            log.warning("could not cache %s@%s: %s", name, digest, getattr(error, "message", error))
        finally:
            with self._lock:
                self._filling.discard(key)

    def _ensure_blob(self, name: str, upstream: Upstream, digest: str, ctx: RequestContext) -> None:
        if self.services.catalog.blob_size(name, digest) is not None:
            return
        self._wait_for_downloads(digest)
        if self.services.catalog.blob_size(name, digest) is not None:
            return
        found = self._open_unless_held(name, upstream, digest, ctx)
        if found is not None:
            for _ in self._cached_while_read(name, digest, *found, ctx):
                pass

    # --- the upstream ---

    def _client(self, endpoint: str) -> Any:
        """A client per endpoint (it keeps its tokens), made again when the endpoint changed."""
        row = self.services.registries.by_name(endpoint)
        if row is None:
            return None
        with self._lock:
            known = self._clients.get(endpoint)
            if known is not None and known[0] == row.updated_at:
                return known[1]
        client = self._client_for(endpoint)
        with self._lock:
            stale = self._clients.get(endpoint)
            self._clients[endpoint] = (row.updated_at, client)
        if stale is not None and stale[1] is not client:
            stale[1].close()
        return client

    def _call(self, upstream: Upstream, call: Callable[[Any], Any]) -> Any:
        """`call(client)`, its failures as domain errors (a 404 as _UpstreamNotFound)."""
        client = self._client(upstream.endpoint)
        if client is None:
            raise UpstreamUnavailableError("the proxy cache's registry endpoint is gone",
                                           {"registry": upstream.endpoint})
        try:
            return call(client)
        except self._upstream_errors as error:
            status = getattr(error, "status", None)
            if status == 404:
                raise _UpstreamNotFound() from None
            detail = {"registry": upstream.endpoint, "status": status}
            if status == 429:
                raise UpstreamRateLimitedError("the upstream registry rate-limits", detail,
                                               getattr(error, "retry_after", None)) from None
            # Why is for those who manage the endpoint (the log), not for whoever pulls.
            log.info("the upstream %s cannot answer: %s", upstream.endpoint, error)
            raise UpstreamUnavailableError("the upstream registry cannot answer", detail) from None


class _UpstreamNotFound(Exception):
    pass


def _as_cache(ctx: RequestContext) -> RequestContext:
    return RequestContext(ACTOR, ctx.request_id, ctx.source)


async def _closing_in_threadpool(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks of a blocking generator, read on worker threads; closed when the client goes."""
    try:
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk
    finally:
        await run_in_threadpool(chunks.close)
