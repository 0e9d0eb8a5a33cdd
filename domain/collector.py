"""Online garbage collection (docs/gc.md): removes the bytes of digests nothing references
any more, while pushes and pulls go on.

A run takes candidates from the references read model in batches. For each batch it loads the
Blob aggregates and the repositories that still link the digests, brings the read models up to
the head of the log, checks the candidates again, and records — in one transaction, at the
versions it loaded — `Blob.Condemned` for each and `BlobUnlinked` from each repository linking
it. Any write that used one of them meanwhile (a manifest push in a linking repository, an
upload or a mount retaining the blob) changed a version, the transaction fails, and the batch is
tried digest by digest. Only condemned bytes are deleted; `Blob.Collected` follows.

While a backup runs (domain/backups.py), each batch spares what it may still copy: nothing
touched since the backup started, nothing still linked into a repository (`Cutoffs.fenced`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.backups import FENCE_MARGIN_SECONDS
from domain.blob import Blob
from domain.context import RequestContext
from domain.errors import TagImmutableError
from domain.gc import GcRun
from domain.repository import Repository

log = logging.getLogger("portlog.gc")

BATCH = 200
# A write that retained a digest is protected for this long whatever the grace period: longer
# than any write takes between retaining and recording its event.
RETAINED_PROTECTION_SECONDS = 300
# Nothing touched in the last second is collected, even with no grace period: read models on
# other nodes may lag the log by that much.
MIN_IDLE_SECONDS = 1
# Stored bytes no event knows (a writer died between storing and recording) are removed once
# this old: a writer in flight records its event within seconds.
ORPHAN_MIN_AGE_SECONDS = 3600


class CatalogReadModel(Protocol):
    def repositories_linking(self, digest: str) -> list[str]: ...

    def untagged_manifests(self, pushed_before: datetime, limit: int) -> list[tuple[str, str]]: ...

    def listed_by_a_manifest(self, name: str, digest: str) -> bool: ...

    def referrers(self, name: str, subject: str, artifact_type: str | None) -> list: ...


class ReferencesReadModel(Protocol):
    def candidates(self, unused_before: datetime, retained_before: datetime, after: str,
                   limit: int) -> list[tuple[str, int]]: ...

    def still_candidates(self, digests: list[str], unused_before: datetime,
                         retained_before: datetime) -> set[str]: ...

    def condemned(self, limit: int) -> list[tuple[str, int]]: ...

    def known(self, digests: list[str]) -> set[str]: ...


@dataclass(frozen=True)
class Cutoffs:
    unused_before: datetime
    retained_before: datetime
    orphaned_before: float  # POSIX seconds

    @classmethod
    def at(cls, now: datetime, grace_seconds: int) -> Cutoffs:
        grace = max(grace_seconds, MIN_IDLE_SECONDS)
        return cls(now - timedelta(seconds=grace),
                   now - timedelta(seconds=max(grace, RETAINED_PROTECTION_SECONDS)),
                   (now - timedelta(seconds=max(grace, ORPHAN_MIN_AGE_SECONDS))).timestamp())

    def fenced(self, backup_started: datetime | None) -> Cutoffs:
        """While a backup runs (it started at `backup_started`), nothing touched since its start
        is collected: the digests it copies were in use at its position P, and any that stopped
        being used since was touched after P."""
        if backup_started is None:
            return self
        cap = backup_started - timedelta(seconds=FENCE_MARGIN_SECONDS)
        return replace(self, unused_before=min(self.unused_before, cap))


class Collector:
    def __init__(self, registry, references: ReferencesReadModel, catalog: CatalogReadModel,
                 bring_read_models_to: Callable[[int], None],
                 refuse_immutable: Callable[[Repository, list[str]], None],
                 earliest_running_backup: Callable[[], datetime | None] = lambda: None) -> None:
        self.registry = registry
        self.earliest_running_backup = earliest_running_backup  # projections/backups.py
        self.refuse_immutable = refuse_immutable  # domain/push_checks.py ImmutableTags.refuse
        self.references = references
        self.catalog = catalog
        self.repositories_linking = catalog.repositories_linking
        self.bring_read_models_to = bring_read_models_to

    def execute(self, run_id: UUID, ctx: RequestContext, now: datetime | None = None) -> GcRun:
        """Runs a started GC run to its end; records Completed, or Failed and raises."""
        run: GcRun = self.registry.load(run_id)
        try:
            cutoffs = Cutoffs.at(now or datetime.now(timezone.utc), run.grace_seconds)
            if not run.dry_run:
                self._finish_condemned(run, ctx)
            untagged = self._delete_untagged(cutoffs, run.dry_run, ctx) if run.delete_untagged else 0
            self._sweep(run, cutoffs, ctx)
            orphans = self._remove_orphans(cutoffs, run.dry_run)
            self._record(run, lambda r: r.complete(untagged, orphans, ctx))
        except Exception as error:
            log.exception("garbage collection run %s failed", run_id)
            message = f"{type(error).__name__}: {error}"
            self._record(run, lambda r: r.fail(message, ctx))
            raise
        return run

    def _sweep(self, run: GcRun, cutoffs: Cutoffs, ctx: RequestContext) -> None:
        after = ""
        while batch := self.references.candidates(cutoffs.unused_before, cutoffs.retained_before, after, BATCH):
            after = batch[-1][0]
            sizes = dict(batch)
            if not run.dry_run:
                condemned = self._condemn(list(sizes), cutoffs, str(run.id), ctx)
                sizes = self._delete_bytes({d: sizes[d] for d in condemned}, str(run.id), ctx, condemned)
            self._record(run, lambda r, s=sizes: r.swept(s, ctx))

    def _condemn(self, digests: list[str], cutoffs: Cutoffs, run: str, ctx: RequestContext) -> dict[str, Blob]:
        """The Blobs condemned, by digest: the whole batch at once, or, when a write got in the
        way, each on its own (skipping the ones in use again)."""
        together = self._condemn_together(digests, cutoffs, run, ctx)
        if together is not None:
            return together
        one_by_one: dict[str, Blob] = {}
        for digest in digests:
            one_by_one.update(self._condemn_together([digest], cutoffs, run, ctx) or {})
        return one_by_one

    def _condemn_together(self, digests: list[str], cutoffs: Cutoffs, run: str,
                          ctx: RequestContext) -> dict[str, Blob] | None:
        blobs = {d: self.registry.load(Blob.create_id(d)) or Blob.create(d, ctx) for d in digests}
        linking = {d: self.repositories_linking(d) for d in digests}
        repositories = {name: self.registry.load(Repository.create_id(name))
                        for name in sorted({n for names in linking.values() for n in names})}
        # Everything recorded before the aggregates were loaded is now in the read models; a
        # write after it changes a version and fails the save below.
        self.bring_read_models_to(self.registry.recorder.max_notification_id())
        # A backup's fence, read after the read models caught up: a backup that started before
        # this point is seen (one that starts after it copies what this batch leaves).
        backup_started = self.earliest_running_backup()
        fenced = cutoffs.fenced(backup_started)
        still = self.references.still_candidates(digests, fenced.unused_before, fenced.retained_before)
        chosen = [d for d in digests if d in still and set(self.repositories_linking(d)) <= set(linking[d])]
        if backup_started is not None:  # a running backup copies what is linked: keep it
            chosen = [d for d in chosen if not linking[d]]
        for digest in chosen:
            for name in linking[digest]:
                if repositories[name] is not None:
                    repositories[name].release_blob(digest, ctx)
            blobs[digest].condemn(run, ctx)
        changed = [blobs[d] for d in chosen] + [r for r in repositories.values() if r is not None and r.pending_events]
        if not changed:
            return {}
        try:
            recordings = self.registry.save(*changed)
        except IntegrityError:
            return None
        # Links gone from the read models before the bytes go: a HEAD answering from them
        # cannot find a link to bytes that are being deleted.
        self.bring_read_models_to(recordings[-1].notification.id)
        return {d: blobs[d] for d in chosen}

    def _delete_bytes(self, sizes: dict[str, int], run: str, ctx: RequestContext,
                      condemned: dict[str, Blob] | None = None) -> dict[str, int]:
        """Deletes the bytes of the digests whose Blob is condemned (as just saved in
        `condemned`, or as loaded); returns those."""
        blobs, deleted = [], {}
        for digest, size in sizes.items():
            blob = (condemned or {}).get(digest) or self.registry.load(Blob.create_id(digest))
            if blob is None or not blob.condemned:
                continue  # only ever bytes the log says are condemned
            self.registry.blobs.delete(digest)
            blob.mark_collected(run, size, ctx)
            blobs.append(blob)
            deleted[digest] = size
        if blobs:
            self.registry.save(*blobs)
        return deleted

    def _finish_condemned(self, run: GcRun, ctx: RequestContext) -> None:
        """Digests an interrupted run condemned: their bytes go now."""
        self.bring_read_models_to(self.registry.recorder.max_notification_id())
        seen: set[str] = set()
        while leftovers := [row for row in self.references.condemned(BATCH) if row[0] not in seen]:
            seen.update(digest for digest, _ in leftovers)
            sizes = self._delete_bytes(dict(leftovers), str(run.id), ctx)
            self._record(run, lambda r: r.swept(sizes, ctx))
            self.bring_read_models_to(self.registry.recorder.max_notification_id())

    def _delete_untagged(self, cutoffs: Cutoffs, dry_run: bool, ctx: RequestContext) -> int:
        """Deletes manifests untagged (and listed by no index) for longer than the grace period,
        with their referrers; their bytes are collected once unreferenced for the grace period
        (by a later run). Each deletion is checked on the repository aggregate at the version
        that is saved, so a tag or an index pushed meanwhile keeps the manifest."""
        candidates = self.catalog.untagged_manifests(cutoffs.unused_before, 1 << 31)
        if dry_run:
            return len(candidates)
        return sum(self._delete_if_still_untagged(name, digest, ctx) for name, digest in candidates)

    def _delete_if_still_untagged(self, name: str, digest: str, ctx: RequestContext) -> bool:
        repository: Repository | None = self.registry.load(Repository.create_id(name))
        if repository is None or digest not in repository.manifests or digest in repository.tags.values():
            return False
        self.bring_read_models_to(self.registry.recorder.max_notification_id())
        if self.catalog.listed_by_a_manifest(name, digest):
            return False
        referrers = [r.digest for r in self.catalog.referrers(name, digest, None) if r.digest in repository.manifests]
        try:
            self.refuse_immutable(repository, sorted(t for t, d in repository.tags.items() if d in referrers))
        except TagImmutableError:
            return False  # an immutable tag on a referrer keeps it, and so its subject
        for referrer in referrers:
            repository.delete_manifest(referrer, ctx)
        repository.delete_manifest(digest, ctx)
        try:
            self.registry.save(repository)
        except IntegrityError:
            return False
        return True

    def _remove_orphans(self, cutoffs: Cutoffs, dry_run: bool) -> int:
        removed = 0
        for chunk in _chunks(self.registry.blobs.stored_blobs(), BATCH):
            old = [b.digest for b in chunk if b.modified_at < cutoffs.orphaned_before]
            for digest in set(old) - self.references.known(old) if old else ():
                if not dry_run:
                    self.registry.blobs.delete(digest)
                removed += 1
        return removed

    def _record(self, run: GcRun, change: Callable[[GcRun], None]) -> None:
        change(run)
        self.registry.save(run)


def _chunks(items: Iterable, size: int) -> Iterable[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def start_run(registry, grace_seconds: int, dry_run: bool, trigger: str, ctx: RequestContext,
              run_id: UUID | None = None, delete_untagged: bool = False) -> tuple[GcRun, int]:
    """Records a run's start; raises IntegrityError when `run_id` was started already (a
    scheduled slot another node took)."""
    run = GcRun.start(grace_seconds, dry_run, trigger, ctx, delete_untagged=delete_untagged, run_id=run_id)
    return run, registry.save(run)[-1].notification.id
