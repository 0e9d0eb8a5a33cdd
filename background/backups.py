"""Consistent online backups (docs/operations.md, Backups): writing one, verifying one, and the
steps of restoring one; the backups started from the API (on a thread of their own), the
command line and the schedule (background/scheduler.py).

What a backup holds is the registry at one log position P: the log up to P and every blob the
read models need at P (projections/backups.py reads both from one snapshot), nothing else; and
the secret box's key, so that sealed credentials open after a restore. While it runs, garbage
collection collects nothing it may need (domain/collector.py, the fence). The format:

    backup.json                  the manifest (BackupManifest): format, P, the log's hash-chain
                                 head, every log segment (sha256, size, positions), every blob
    log/<first>-<last>.jsonl     log segments: LoggedEvent.to_json() per line
    blobs/sha256/<xx>/<hex>      blobs, at their content address
    secret.key                   the secret box's key (when the registry has one)

The manifest is written last and pruning comes after it: a backup interrupted half way leaves
the previous one at the destination whole. Incremental: blobs the previous backup there holds
(same size) and log segments it holds (same bytes) are not written again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from sqlalchemy import create_engine, select
from sqlalchemy.pool import StaticPool

from adapters.backup_destinations import Destination
from adapters.log_store import LoggedEvent, LogStore, read_all
from adapters.run_locks import HeldLock
from domain.application import Registry
from domain.backups import MAX_RUNNING_SECONDS, Backup, BackupSchedule
from domain.context import RequestContext
from domain.cron import CronSchedule
from domain.errors import BlobUnknownError, ConflictError, InvalidInputError, RegistryError
from domain.ports import BlobStore
from domain.scans import Scan
from domain.vulndb import VulnerabilityData
from projections import references
from projections.backups import IN_USE, backup_snapshot

log = logging.getLogger("portlog.backups")

FORMAT = "portlog-backup/1"
MANIFEST = "backup.json"
SECRET_KEY = "secret.key"
SEGMENT_EVENTS = 10_000
CHUNK = 1024 * 1024
APPEND_BATCH = 1000
RESTORE_REPOSITORY = "backup-restore"  # what the blob store's upload scratch space is labelled with


class BackupFailed(Exception):
    """A backup could not be written; the message says why (a missing blob names its digest)."""


class BackupInvalid(Exception):
    """A backup that does not verify; the message names the first bad item."""


def blob_name(digest: str) -> str:
    algorithm, encoded = digest.split(":", 1)
    return f"blobs/{algorithm}/{encoded[:2]}/{encoded}"


@dataclass(frozen=True)
class Segment:
    name: str
    sha256: str
    size: int
    events: int
    first: int
    last: int


@dataclass
class BackupManifest:
    position: int
    log_events: int
    log_digest: str
    segments: list[Segment]
    blobs: dict[str, int]  # digest → size
    secret_key: bool
    created_at: str
    backup: str  # the Backup aggregate's id: a restore records its completion (cli/backup.py)
    copied_blobs: int
    copied_bytes: int
    format: str = FORMAT

    def to_bytes(self) -> bytes:
        document = asdict(self)
        document["blobs"] = [{"digest": d, "size": s} for d, s in sorted(self.blobs.items())]
        return orjson.dumps(document, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_bytes(cls, data: bytes) -> BackupManifest:
        try:
            document = orjson.loads(data)
            if document.get("format") != FORMAT:
                raise ValueError(f"unknown format {document.get('format')!r}")
            return cls(position=int(document["position"]), log_events=int(document["log_events"]),
                       log_digest=str(document["log_digest"]),
                       segments=[Segment(**segment) for segment in document["segments"]],
                       blobs={str(b["digest"]): int(b["size"]) for b in document["blobs"]},
                       secret_key=bool(document["secret_key"]), created_at=str(document["created_at"]),
                       backup=str(document["backup"]), copied_blobs=int(document["copied_blobs"]),
                       copied_bytes=int(document["copied_bytes"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise BackupInvalid(f"{MANIFEST} is malformed: {error}") from None


@dataclass
class Written:
    """What a backup wrote: the Completed event's numbers."""

    position: int = 0
    blob_count: int = 0
    bytes: int = 0
    copied_blobs: int = 0
    copied_bytes: int = 0
    log_events: int = 0
    log_digest: str = ""
    copied: set[str] = field(default_factory=set)  # blobs written by this backup
    segments: list[Segment] = field(default_factory=list)
    needed: dict[str, int] = field(default_factory=dict)  # digest → size: every blob of the backup


class _Hashing(io.RawIOBase):
    """Reads through a stream, hashing and counting what passes."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.hasher, self.count = stream, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(len(buffer))
        buffer[:len(data)] = data
        self.hasher.update(data)
        self.count += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.hasher.update(data)
        self.count += len(data)
        return data

    def digest(self) -> str:
        return f"sha256:{self.hasher.hexdigest()}"


# Writing


def read_manifest(destination: Destination) -> BackupManifest | None:
    try:
        with destination.open(MANIFEST) as stream:
            return BackupManifest.from_bytes(stream.read())
    except FileNotFoundError:
        return None


_BACKUP_FILE = re.compile(r"backup\.json|secret\.key|log/\d{12}-\d{12}\.jsonl|blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}")


def check_destination(destination: Destination) -> BackupManifest | None:
    """The backup already there (None: none, or one that did not finish); refuses a destination
    holding any other file, so that a mistyped path never mixes a backup into other files."""
    previous = read_manifest(destination)
    if previous is None:
        stranger = next((name for name in destination.names() if not _BACKUP_FILE.fullmatch(name)), None)
        if stranger is not None:
            raise ConflictError("the destination holds files that are not a Portlog backup's: give an empty "
                                "directory or prefix, or one holding a backup", {"destination": destination.describe(),
                                                                                 "file": stranger})
    return previous


def write_backup(log_store: LogStore, db, blobs: BlobStore, destination: Destination, incremental: bool,
                 secret_key: str | None, backup_id: str, deadline: float | None = None) -> Written:
    """Writes the registry as it is at the read models' position into `destination`. A needed
    blob found missing (a collection that began before this backup's fence was seen) is looked
    for once more at a new position; missing again, the backup fails naming it."""
    previous = check_destination(destination)
    kept = _held(destination, previous) if (incremental and previous) else {}
    written = Written()
    for attempt in (1, 2):
        position, needed = backup_snapshot(db)
        try:
            written = _write_at(log_store, blobs, destination, position, needed, kept, previous, written, deadline)
            break
        except BlobUnknownError as missing:
            if attempt == 2:
                raise BackupFailed(f"blob {missing.detail['digest']} is missing from storage") from None
            log.warning("backup: blob %s went missing; taking a new snapshot", missing.detail["digest"])
    if secret_key is not None:
        destination.write_bytes(SECRET_KEY, secret_key.encode() + b"\n")
    destination.flush()  # what the manifest lists is on disk before it is
    destination.write_bytes(MANIFEST, BackupManifest(
        written.position, written.log_events, written.log_digest, written.segments, written.needed,
        secret_key is not None, datetime.now(timezone.utc).isoformat(timespec="seconds"), backup_id,
        written.copied_blobs, written.copied_bytes).to_bytes())
    destination.flush()
    written.blob_count, written.bytes = len(written.needed), sum(written.needed.values())
    if previous is not None:  # what only the previous backup needed goes, now that the new one is whole
        names = {segment.name for segment in written.segments}
        destination.delete([blob_name(d) for d in previous.blobs if d not in written.needed]
                           + [segment.name for segment in previous.segments if segment.name not in names])
    return written


def _held(destination: Destination, previous: BackupManifest) -> dict[str, int]:
    """The blobs the previous backup lists that are there with their size."""
    return {digest: size for digest, size in previous.blobs.items() if destination.size(blob_name(digest)) == size}


def _write_at(log_store: LogStore, blobs: BlobStore, destination: Destination, position: int,
              needed: dict[str, int], kept: dict[str, int], previous: BackupManifest | None, written: Written,
              deadline: float | None) -> Written:
    segments, chain, events = _write_log(log_store, destination, position, previous)
    result = Written(position=position, log_events=events, log_digest=chain, copied=set(written.copied),
                     copied_blobs=written.copied_blobs, copied_bytes=written.copied_bytes, segments=segments,
                     needed=needed)
    for digest, size in sorted(needed.items()):
        if deadline is not None and time.monotonic() > deadline:
            raise BackupFailed(f"the backup ran for longer than {MAX_RUNNING_SECONDS} seconds")
        if kept.get(digest) == size or digest in result.copied:
            continue
        _copy_blob(blobs, destination, digest, size)
        result.copied.add(digest)
        result.copied_blobs += 1
        result.copied_bytes += size
    return result


def _copy_blob(blobs: BlobStore, destination: Destination, digest: str, size: int) -> None:
    """Streams the blob to the destination, hashing it on the way; bytes that do not match their
    digest are not kept."""
    with blobs.open(digest) as stream:
        hashing = _Hashing(stream)
        destination.write(blob_name(digest), hashing, size)
    if hashing.digest() != digest or hashing.count != size:
        destination.delete([blob_name(digest)])
        raise BackupFailed(f"the stored bytes of {digest} do not match their digest or size")


def _write_log(log_store: LogStore, destination: Destination, position: int,
               previous: BackupManifest | None) -> tuple[list[Segment], str, int]:
    """Writes the log up to `position` in segments of SEGMENT_EVENTS events; a segment the
    previous backup holds with the same bytes is not written again. Returns the segments, the
    hash chain's head and the number of events."""
    held = {segment.name: segment for segment in (previous.segments if previous else [])}
    segments, chain, count = [], "", 0
    for batch in _batches(read_all(log_store, up_to=position), SEGMENT_EVENTS):
        lines = []
        for event in batch:
            chain = event.digest(chain)
            lines.append(orjson.dumps(event.to_json()))
        data = b"\n".join(lines) + b"\n"
        segment = Segment(f"log/{batch[0].position:012d}-{batch[-1].position:012d}.jsonl",
                          hashlib.sha256(data).hexdigest(), len(data), len(batch), batch[0].position,
                          batch[-1].position)
        if held.get(segment.name) != segment or destination.size(segment.name) != segment.size:
            destination.write_bytes(segment.name, data)
        segments.append(segment)
        count += len(batch)
    return segments, chain, count


def _batches(events: Iterable[LoggedEvent], size: int) -> Iterator[list[LoggedEvent]]:
    batch: list[LoggedEvent] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# Verifying


@dataclass(frozen=True)
class Verified:
    position: int
    log_events: int
    log_digest: str
    blob_count: int
    bytes: int


def verify_backup(destination: Destination) -> Verified:
    """Checks everything a restore relies on; raises BackupInvalid naming the first bad item:
    every log segment (its bytes, its events in order, the hash chain), every digest the copied
    log's state references listed, every blob there with its size and its digest re-hashed."""
    manifest = read_manifest(destination)
    if manifest is None:
        raise BackupInvalid(f"{MANIFEST} is missing: no backup at {destination.describe()}")
    references = _ReferenceTracker()
    chain, count = "", 0
    for event in logged_events(destination, manifest):
        chain = event.digest(chain)
        count += 1
        references.apply(event)
    if count != manifest.log_events or chain != manifest.log_digest:
        raise BackupInvalid(f"the log does not match {MANIFEST}: {count} events with hash-chain head {chain}, "
                            f"expected {manifest.log_events} ending in {manifest.log_digest}")
    for digest in sorted(references.needed()):
        if digest not in manifest.blobs:
            raise BackupInvalid(f"blob {digest}: referenced by the log at position {manifest.position}, "
                                f"not in the backup")
    for digest, size in sorted(manifest.blobs.items()):
        _verify_blob(destination, digest, size)
    if manifest.secret_key and destination.size(SECRET_KEY) is None:
        raise BackupInvalid(f"{SECRET_KEY} is missing")
    return Verified(manifest.position, count, chain, len(manifest.blobs), sum(manifest.blobs.values()))


def logged_events(destination: Destination, manifest: BackupManifest) -> Iterator[LoggedEvent]:
    """The backup's events in order, each segment checked (bytes, order, last position P)."""
    last = 0
    for segment in manifest.segments:
        data = _read_segment(destination, segment)
        events = []
        for number, line in enumerate(data.splitlines(), 1):
            try:
                event = LoggedEvent.from_json(orjson.loads(line))
            except (orjson.JSONDecodeError, ValueError) as error:
                raise BackupInvalid(f"{segment.name} line {number}: {error}") from None
            if event.position <= last:
                raise BackupInvalid(f"{segment.name} line {number}: position {event.position} after {last}")
            last = event.position
            events.append(event)
        if len(events) != segment.events or events[0].position != segment.first or last != segment.last:
            raise BackupInvalid(f"{segment.name}: its events do not match {MANIFEST}")
        yield from events
    if last != manifest.position:
        raise BackupInvalid(f"the log ends at position {last}, the backup is of position {manifest.position}")


def _read_segment(destination: Destination, segment: Segment) -> bytes:
    """A segment's bytes (one segment, SEGMENT_EVENTS events of metadata, is held at a time)."""
    try:
        with destination.open(segment.name) as stream:
            data = stream.read(segment.size + 1)
    except FileNotFoundError:
        raise BackupInvalid(f"{segment.name} is missing") from None
    if len(data) != segment.size:
        raise BackupInvalid(f"{segment.name}: {len(data)} bytes, expected {segment.size} (truncated?)")
    if hashlib.sha256(data).hexdigest() != segment.sha256:
        raise BackupInvalid(f"{segment.name}: its sha256 does not match {MANIFEST} (modified)")
    return data


def _verify_blob(destination: Destination, digest: str, size: int) -> None:
    name = blob_name(digest)
    try:
        with destination.open(name) as stream:
            hashing = _Hashing(stream)
            while hashing.read(CHUNK):
                pass
    except FileNotFoundError:
        raise BackupInvalid(f"blob {digest} is missing ({name})") from None
    if hashing.count != size:
        raise BackupInvalid(f"blob {digest}: {hashing.count} bytes, expected {size} (truncated?)")
    if hashing.digest() != digest:
        raise BackupInvalid(f"blob {digest}: its bytes hash to {hashing.digest()} (corrupt)")


class _ReferenceTracker:
    """What the copied log's state at its last position needs stored, found as the backup found it:
    the references read model (projections/references.py) replayed into an in-memory database for
    the digests linked or held as manifests, and the scan reports and each vulnerability data
    source's current file, as the scans and vulndb read models keep them."""

    def __init__(self) -> None:
        self.mapper = Registry(None, env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
        self.engine = create_engine("sqlite://", poolclass=StaticPool)
        references.metadata.create_all(self.engine)
        self.projection = references.ReferencesProjection()
        self.conn = self.engine.connect()
        self.conn.begin()
        self.reports: set[str] = set()
        self.data_files: dict[str, str] = {}  # vulnerability data source → its file's digest

    def apply(self, event: LoggedEvent) -> None:
        try:
            domain_event = self.mapper.to_domain_event(
                StoredEvent(event.originator_id, event.originator_version, event.topic, event.state))
        except Exception as error:  # an event this version cannot decode is not a backup it can restore
            raise BackupInvalid(f"event at position {event.position} cannot be read: {error}") from None
        self.projection.apply(self.conn, domain_event, event.position)
        if isinstance(domain_event, Scan.Completed):
            self.reports.add(domain_event.report_digest)
        elif isinstance(domain_event, VulnerabilityData.Imported):
            self.data_files[domain_event.name] = domain_event.digest

    def needed(self) -> set[str]:
        try:
            linked = set(self.conn.execute(select(references.usage.c.digest).where(IN_USE)).scalars())
        finally:
            self.conn.close()
            self.engine.dispose()
        return linked | self.reports | set(self.data_files.values())


# Restoring (the command line puts the steps together: cli/backup.py)


def restore_log(destination: Destination, manifest: BackupManifest, log_store: LogStore) -> int:
    """Appends the backup's events, verbatim and at their positions, to an empty log; returns the head."""
    head = 0
    for batch in _batches(logged_events(destination, manifest), APPEND_BATCH):
        head = log_store.append_verbatim(batch)
    return head


def restore_blobs(destination: Destination, manifest: BackupManifest, blobs: BlobStore) -> None:
    """Streams every blob into the blob store through its upload path, which checks the digest."""
    for digest in sorted(manifest.blobs):
        upload = blobs.start_upload(RESTORE_REPOSITORY)
        writer = blobs.upload_writer(upload.upload_id)
        with destination.open(blob_name(digest)) as stream:
            while chunk := stream.read(CHUNK):
                writer.write(chunk)
        writer.commit()
        blobs.complete_upload(upload.upload_id, digest)


def record_restored(registry, manifest: BackupManifest, ctx: RequestContext) -> int | None:
    """Records, in the restored registry, that the backup it came from completed: its log ends
    with the backup's Started (before P) and not its Completed (after P), and a backup seen
    running would fence garbage collection. Returns the position, None when nothing was recorded."""
    backup: Backup | None = registry.load(UUID(manifest.backup))
    if backup is None or backup.finished:
        return None
    backup.complete(manifest.position, len(manifest.blobs), sum(manifest.blobs.values()), manifest.copied_blobs,
                    manifest.copied_bytes, manifest.log_events, manifest.log_digest, ctx)
    return registry.save(backup)[-1].notification.id


def read_secret_key(destination: Destination) -> str | None:
    try:
        with destination.open(SECRET_KEY) as stream:
            return stream.read().decode().strip() or None
    except FileNotFoundError:
        return None


# Jobs


def secret_key_of(settings) -> str | None:
    """The secret box's key: the configured one, or the key file beside embedded data."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret.key"
    return path.read_text().strip() if path.is_file() else None


def backup_lock(destination: Destination) -> str:
    """The run lock (adapters/run_locks.py) a backup to `destination` holds while it runs."""
    return "backup-" + hashlib.sha256(destination.describe().encode()).hexdigest()[:16]


class BackupJobs:
    """Backups started here; several may run at once, one per destination across the processes
    and nodes that share the data (each holds its destination's run lock while it runs)."""

    def __init__(self, services) -> None:
        self.services = services

    def start(self, url: str, incremental: bool, trigger: str, ctx: RequestContext, *, guarded: bool = True,
              background: bool = True, backup_id: UUID | None = None) -> tuple[Backup, int]:
        """Records the start (after checking the destination) and runs the backup; `guarded`:
        the destination is a user's (through the API), reached through the outbound guard."""
        services = self.services
        if guarded and not url.startswith(("s3://", "file:///", "/")):
            raise InvalidInputError("a backup destination is an absolute path on the server or an s3:// URL",
                                    {"field": "destination"})
        destination = services.backup_destination(url, services.outbound if guarded else None)
        self._refuse_data_dir(destination)
        held = services.run_locks.try_acquire(backup_lock(destination))
        if held is None:
            raise self._running(destination)
        try:
            backup, position = self._record_start(destination, incremental, trigger, ctx, backup_id)
        except BaseException:
            held.release()
            raise
        if background:
            threading.Thread(target=self._run, args=(backup, destination, ctx, held), name="portlog-backup",
                             daemon=True).start()
        else:
            self._run(backup, destination, ctx, held)
        return backup, position

    def _record_start(self, destination: Destination, incremental: bool, trigger: str, ctx: RequestContext,
                      backup_id: UUID | None) -> tuple[Backup, int]:
        services = self.services
        if services.backups.running_to(destination.describe()):  # recorded running, not yet given up for dead
            raise self._running(destination)
        try:
            check_destination(destination)
        except RegistryError:
            raise
        except Exception as error:  # unreachable, refused, denied: said before anything is recorded
            raise InvalidInputError(f"the destination cannot be used: {_reason(error)}",
                                    {"destination": destination.describe()}) from None
        backup = Backup.start(trigger, destination.describe(), incremental, services.log_store.head(), ctx,
                              backup_id=backup_id)
        position = services.registry.save(backup)[-1].notification.id
        services.projections.wait_for(position)  # the fence is in the read models before the snapshot
        return backup, position

    @staticmethod
    def _running(destination: Destination) -> ConflictError:
        return ConflictError("a backup to this destination is running", {"destination": destination.describe()})

    def _run(self, backup: Backup, destination: Destination, ctx: RequestContext, held: HeldLock) -> None:
        try:
            self._write(backup, destination, ctx)
        finally:
            held.release()

    def _write(self, backup: Backup, destination: Destination, ctx: RequestContext) -> None:
        services = self.services
        try:
            written = write_backup(services.log_store, services.db, services.blobs, destination, backup.incremental,
                                   secret_key_of(services.settings), str(backup.id),
                                   time.monotonic() + MAX_RUNNING_SECONDS)
        except Exception as error:
            log.exception("backup %s to %s failed", backup.id, destination.describe())
            backup.fail(_reason(error), ctx)
        else:
            backup.complete(written.position, written.blob_count, written.bytes, written.copied_blobs,
                            written.copied_bytes, written.log_events, written.log_digest, ctx)
        services.registry.save(backup)
        services.projections.catch_up()

    def _refuse_data_dir(self, destination: Destination) -> None:
        root = getattr(destination, "root", None)
        settings = self.services.settings
        for kept in {Path(settings.data_dir).absolute(), Path(settings.blob_root).absolute()}:
            if root is not None and (root == kept or kept in root.parents or root in kept.parents):
                raise InvalidInputError("a backup cannot be written inside the data directory or the blob storage "
                                        "(or around them)", {"destination": destination.describe()})


def _reason(error: Exception) -> str:
    """Why, in words that name no credential (the SDK's messages name keys, never secrets)."""
    return (getattr(error, "message", None) or str(error) or type(error).__name__)[:2000]


def set_schedule(services, cron: str | None, url: str | None, incremental: bool, ctx: RequestContext) -> int | None:
    """Records the schedule; the destination's credentials, if any, sealed with the secret box."""
    text = str(CronSchedule.parse(cron)) if cron else None  # refuses a bad expression before recording
    shown, sealed = None, None
    if url:
        destination = services.backup_destination(url, services.outbound)
        shown = destination.describe()
        if shown != url:  # it had credentials (or spelled itself otherwise): the whole URL, sealed
            sealed = services.secret_box.seal(url)
    return services.registry.update(
        BackupSchedule.ID, lambda s: s.set(text, shown, incremental, sealed, ctx),
        create=lambda: BackupSchedule.create(ctx))


def scheduled_destination(services, schedule: BackupSchedule) -> str | None:
    if schedule.sealed_secret:
        return services.secret_box.open(schedule.sealed_secret)
    return schedule.destination
