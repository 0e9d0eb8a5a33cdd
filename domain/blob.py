"""The Blob aggregate: the fence between garbage collection and writes that reuse stored bytes
(docs/gc.md). Topic `domain.blob:Blob.<Event>`.

One per digest, and only for digests that were at the edge of collection: a digest nothing
referenced when a write wanted it again (`Retained`), or one the collector took (`Condemned`,
then `Collected` once its bytes are gone). The collector condemns at the version it loaded,
so a `Retained` recorded meanwhile makes the condemnation fail; a write finding the blob
condemned waits for `Collected` and then stores the bytes again.

Events are a public schema: add fields only with defaults, never rename or repurpose one.
"""

from __future__ import annotations

import time
from dataclasses import KW_ONLY
from typing import TYPE_CHECKING, Callable
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.context import RequestContext
from domain.errors import BlobCondemnedError, BlobUnknownError, ConflictError, StorageUnavailableError

if TYPE_CHECKING:
    from domain.application import Registry

RELY_ON_STORED_BYTES = frozenset({"head", "mount"})
CONDEMNED_WAIT_SECONDS = 30.0


class Blob(Aggregate):
    class Event(Aggregate.Event):
        digest: str
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""

        def apply(self, aggregate: Blob) -> None:
            pass

    class Created(Event, Aggregate.Created):
        pass

    class Retained(Event):
        """A write is about to use the bytes again: `reason` is upload, mount, manifest,
        head (a client was told the blob exists), undelete or restore."""

        reason: str

        def apply(self, blob: Blob) -> None:
            blob.collected = False

    class Condemned(Event):
        """The collector will delete the bytes; `run` is its GC run's id."""

        run: str

        def apply(self, blob: Blob) -> None:
            blob.condemned = True

    class Collected(Event):
        run: str
        size: int

        def apply(self, blob: Blob) -> None:
            blob.condemned, blob.collected = False, True

    def __init__(self, digest: str) -> None:
        self.digest = digest
        self.condemned = False  # bytes being deleted: nothing may use them until Collected
        self.collected = False  # bytes gone, not stored again since

    @staticmethod
    def create_id(digest: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/blobs/{digest}")

    @classmethod
    def create(cls, digest: str, ctx: RequestContext) -> Blob:
        return cls._create(cls.Created, id=cls.create_id(digest), digest=digest, **ctx.event_fields())

    def retain(self, reason: str, ctx: RequestContext) -> None:
        """Writers that store the bytes again (upload, manifest, undelete) wait out a
        condemnation; those that rely on the stored bytes (head, mount) learn they are gone."""
        if reason in RELY_ON_STORED_BYTES and (self.condemned or self.collected):
            raise BlobUnknownError("blob unknown to registry", {"digest": self.digest})
        if self.condemned:
            raise BlobCondemnedError("blob is being garbage-collected", {"digest": self.digest})
        self._trigger(self.Retained, reason=reason, ctx=ctx)

    def condemn(self, run: str, ctx: RequestContext) -> None:
        if not self.condemned:
            self._trigger(self.Condemned, run=run, ctx=ctx)

    def mark_collected(self, run: str, size: int, ctx: RequestContext) -> None:
        if self.condemned:
            self._trigger(self.Collected, run=run, size=size, ctx=ctx)

    def _trigger(self, event_class: type[Blob.Event], ctx: RequestContext, **fields) -> None:
        self.trigger_event(event_class, digest=self.digest, **ctx.event_fields(), **fields)


class GcFence:
    """Garbage collection's fence, on the write paths: a digest nothing references may be
    condemned by a collector at any moment, so a write that is about to use its bytes again
    records Blob.Retained first (which a condemnation at the same time conflicts with). For
    digests that are referenced, or new, `collectable` is False and nothing is recorded."""

    def __init__(self, app: Registry, collectable: Callable[[str], bool]) -> None:
        self.app = app
        self.collectable = collectable  # nothing references the digest (the references read model knows)

    def retain(self, digest: str, reason: str, ctx: RequestContext) -> None:
        if not self.collectable(digest):
            return
        deadline = time.monotonic() + CONDEMNED_WAIT_SECONDS
        while True:
            try:
                self.app.update(Blob.create_id(digest), lambda blob: blob.retain(reason, ctx),
                                create=lambda: Blob.create(digest, ctx))
                return
            except BlobCondemnedError:
                if time.monotonic() > deadline:
                    raise StorageUnavailableError("the blob is being garbage-collected; retry",
                                                  {"digest": digest}) from None
                time.sleep(0.05)  # the collector is deleting the bytes: store them after it

    def fences(self, digests: list[str], reason: str, ctx: RequestContext) -> list[Blob]:
        """Blob aggregates retained for `digests`, to save with the change that uses them."""
        fences = []
        for digest in digests:
            blob = self.app.load(Blob.create_id(digest))
            # Collected bytes may have been pushed again since; a collector condemning them now
            # would change the Blob's version and fail the save.
            if blob is not None and (blob.condemned or (blob.collected and self.app.blobs.stat(digest) is None)):
                raise ConflictError("content was garbage-collected", {"digest": digest})
            blob = blob or Blob.create(digest, ctx)
            blob.retain(reason, ctx)
            fences.append(blob)
        return fences
