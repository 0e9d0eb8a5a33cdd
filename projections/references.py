"""Blob-reference read model: which manifests reference which blobs and manifests, and for
every digest how many things hold it. The basis of garbage collection and quota usage.

A digest is unreferenced when no repository links it as a blob, no repository holds it
as a manifest, and no manifest references it; `unreferenced_since` says from when. A scan's
report (bytes in the blob store, named by `Scan.Completed`) counts as referenced for ever: the log
keeps every report, and what was known at a moment is read from them.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    update,
)

from domain.blob import Blob
from domain.repository import Repository
from domain.scans import Scan
from domain.vulndb import VulnerabilityData
from projections.database import Name, ReadModelDatabase, as_utc

metadata = MetaData()
references = Table(
    "refs_manifest_references", metadata,
    Column("repository", Name(255), primary_key=True),
    Column("manifest_digest", Name(200), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("target_digest", Name(200), nullable=False, index=True),
    Column("role", String(20), nullable=False),
    Column("size", BigInteger, nullable=False),
)
usage = Table(
    "refs_digest_usage", metadata,
    Column("digest", Name(200), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("blob_links", Integer, nullable=False),
    Column("manifest_entries", Integer, nullable=False),
    Column("referenced_by", Integer, nullable=False),
    Column("unreferenced_since", DateTime(timezone=True)),
    # Garbage collection (docs/gc.md): when an event last touched the digest, when a write last
    # retained it (Blob.Retained), and whether a collector condemned it.
    Column("last_used_at", DateTime(timezone=True)),
    Column("retained_at", DateTime(timezone=True)),
    Column("condemned", Boolean, nullable=False, default=False),
    Index("refs_digest_usage_unreferenced", "referenced_by", "manifest_entries", "digest"),
)
_COUNTERS = ("blob_links", "manifest_entries", "referenced_by")


def _bump(counter: str):
    """Adds k_delta to one counter; the digest is unreferenced from k_time on (or still from
    when it was) once every counter is 0 after the change, else it is not. One statement: SET
    sees the row as it was, so the test adds the delta itself."""
    after = [usage.c[c] + bindparam("k_delta") if c == counter else usage.c[c] for c in _COUNTERS]
    unreferenced = case((and_(*(value == 0 for value in after)),
                         func.coalesce(usage.c.unreferenced_since, bindparam("k_time", type_=DateTime(timezone=True)))),
                        else_=None)
    return update(usage).where(usage.c.digest == bindparam("k_digest")).values(
        {counter: usage.c[counter] + bindparam("k_delta"), "last_used_at": bindparam("k_time"),
         "unreferenced_since": unreferenced})


_BUMP = {counter: _bump(counter) for counter in _COUNTERS}
_OF_DIGEST = usage.c.digest == bindparam("k_digest")
_RETAINED = update(usage).where(_OF_DIGEST).values(
    retained_at=bindparam("k_time"), last_used_at=bindparam("k_time"), condemned=False)
_USED = update(usage).where(_OF_DIGEST).values(last_used_at=bindparam("k_time"), condemned=False)
_CONDEMNED = update(usage).where(_OF_DIGEST).values(condemned=True)
_COLLECTED = delete(usage).where(_OF_DIGEST)
_INSERT_USAGE = usage.insert()
_INSERT_REFERENCE = references.insert()
_OF_MANIFEST = and_(references.c.repository == bindparam("k_repository"),
                    references.c.manifest_digest == bindparam("k_digest"))
_TARGETS = select(references.c.target_digest).where(_OF_MANIFEST)
_DELETE_REFERENCES = delete(references).where(_OF_MANIFEST)


class ReferencesProjection:
    name = "references"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case Repository.BlobLinked(digest=digest, size=size):
                _count(conn, digest, size, "blob_links", +1, event.timestamp)
            case Repository.BlobUnlinked(digest=digest):
                _count(conn, digest, None, "blob_links", -1, event.timestamp)
            case Repository.ManifestPushed():
                self._manifest_pushed(conn, event)
            case Repository.ManifestDeleted(digest=digest):
                self._manifest_deleted(conn, event.repository, digest, event.timestamp)
            case Blob.Retained(digest=digest, reason="undelete"):  # its links came in the same transaction
                conn.execute(_USED, dict(k_digest=digest, k_time=event.timestamp))
            case Blob.Retained(digest=digest):
                conn.execute(_RETAINED, dict(k_digest=digest, k_time=event.timestamp))
            case Blob.Condemned(digest=digest):
                conn.execute(_CONDEMNED, dict(k_digest=digest))
            case Blob.Collected(digest=digest):  # its links went with the condemnation: no counts left
                conn.execute(_COLLECTED, dict(k_digest=digest))
            case Scan.Completed(report_digest=digest, report_size=size):
                _count(conn, digest, size, "referenced_by", +1, event.timestamp)
            case VulnerabilityData.Imported():  # the imported file is kept until a new import replaces it
                _count(conn, event.digest, event.size, "referenced_by", +1, event.timestamp)
                if event.previous_digest:
                    _count(conn, event.previous_digest, None, "referenced_by", -1, event.timestamp)

    def _manifest_pushed(self, conn: Connection, event: Repository.ManifestPushed) -> None:
        _count(conn, event.digest, event.size, "manifest_entries", +1, event.timestamp)
        for ordinal, ref in enumerate(event.references):
            conn.execute(_INSERT_REFERENCE, dict(
                repository=event.repository, manifest_digest=event.digest, ordinal=ordinal,
                target_digest=ref["digest"], role=ref["role"], size=ref["size"]))
            _count(conn, ref["digest"], ref["size"], "referenced_by", +1, event.timestamp)

    def _manifest_deleted(self, conn: Connection, repository: str, digest: str, ts) -> None:
        key = dict(k_repository=repository, k_digest=digest)
        for target in conn.execute(_TARGETS, key).scalars().all():
            _count(conn, target, None, "referenced_by", -1, ts)
        conn.execute(_DELETE_REFERENCES, key)
        _count(conn, digest, None, "manifest_entries", -1, ts)


def _count(conn: Connection, digest: str, size: int | None, counter: str, delta: int, ts) -> None:
    if not conn.execute(_BUMP[counter], dict(k_digest=digest, k_delta=delta, k_time=ts)).rowcount:
        # A first row: its one counter is ±1, so the digest is not unreferenced (NULL).
        values = dict.fromkeys(_COUNTERS, 0) | {counter: delta}
        conn.execute(_INSERT_USAGE, dict(digest=digest, size=size or 0, last_used_at=ts, condemned=False,
                                         **values))


# Garbage collection's queries. A digest is collectable when no manifest references it and
# no repository holds it as a manifest; blob links alone do not keep it (a link nothing
# references is an abandoned upload or the layer of a deleted manifest).
RETAIN_REFRESH_SECONDS = 60  # a write retains a collectable digest again after this long
_UNREFERENCED = and_(usage.c.referenced_by == 0, usage.c.manifest_entries == 0)
_COLLECTABLE_SQL = ("SELECT referenced_by, manifest_entries, retained_at, condemned "
                    "FROM refs_digest_usage WHERE digest = ?")


class ReferencesView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.db = db

    def collectable(self, digest: str) -> bool:
        """Whether a collector could be condemning the digest now, so that a write reusing its
        bytes must retain it first: nothing references it, and no write retained it lately
        (a retention keeps collectors off for longer than RETAIN_REFRESH_SECONDS)."""
        rows = self.db.fetch(_COLLECTABLE_SQL, (digest,))
        if not rows:
            return False
        referenced_by, manifest_entries, retained_at, condemned = rows[0]
        if referenced_by or manifest_entries:
            return False
        if condemned or retained_at is None:
            return True
        age = datetime.now(timezone.utc) - as_utc(retained_at)
        return age.total_seconds() > RETAIN_REFRESH_SECONDS

    def candidates(self, unused_before: datetime, retained_before: datetime, after: str,
                   limit: int) -> list[tuple[str, int]]:
        """(digest, size) of digests to collect, in digest order after `after`."""
        query = select(usage.c.digest, usage.c.size).where(
            _UNREFERENCED, usage.c.condemned.is_(False), usage.c.digest > after,
            usage.c.last_used_at < unused_before,
            or_(usage.c.retained_at.is_(None), usage.c.retained_at < retained_before),
        ).order_by(usage.c.digest).limit(limit)
        with self.db.reader.connect() as conn:
            return [(digest, size) for digest, size in conn.execute(query)]

    def still_candidates(self, digests: list[str], unused_before: datetime,
                         retained_before: datetime) -> set[str]:
        query = select(usage.c.digest).where(
            usage.c.digest.in_(digests), _UNREFERENCED, usage.c.last_used_at < unused_before,
            or_(usage.c.retained_at.is_(None), usage.c.retained_at < retained_before))
        with self.db.reader.connect() as conn:
            return set(conn.execute(query).scalars())

    def condemned(self, limit: int) -> list[tuple[str, int]]:
        """Digests a collector condemned and did not finish (it stopped half way)."""
        query = select(usage.c.digest, usage.c.size).where(usage.c.condemned.is_(True)) \
            .order_by(usage.c.digest).limit(limit)
        with self.db.reader.connect() as conn:
            return [(digest, size) for digest, size in conn.execute(query)]

    def known(self, digests: list[str]) -> set[str]:
        """Which of `digests` an event recorded (they have a usage row)."""
        with self.db.reader.connect() as conn:
            return set(conn.execute(select(usage.c.digest).where(usage.c.digest.in_(digests))).scalars())

    def kept(self) -> dict[str, int]:
        """digest → size of everything whose bytes must stay: the reference of what storage
        should hold after a collection with no grace period."""
        query = select(usage.c.digest, usage.c.size).where(~_UNREFERENCED)
        with self.db.reader.connect() as conn:
            return dict(conn.execute(query).all())

