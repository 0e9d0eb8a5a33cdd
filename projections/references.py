"""Blob-reference read model: which manifests reference which blobs and manifests, and for
every digest how many things hold it. The basis of garbage collection and quota usage.

A digest is unreferenced when no repository links it as a blob, no repository holds it
as a manifest, and no manifest references it; `unreferenced_since` says from when.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)

from domain.repository import Repository
from projections.database import Name

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
)
_COUNTERS = ("blob_links", "manifest_entries", "referenced_by")


_BUMP = {counter: update(usage).where(usage.c.digest == bindparam("k_digest")).values(
    {counter: usage.c[counter] + bindparam("k_delta")}) for counter in _COUNTERS}
_INSERT_USAGE = usage.insert()
_MARK_UNREFERENCED = update(usage).where(usage.c.digest == bindparam("k_digest")).values(
    unreferenced_since=case(
        (and_(*(usage.c[c] == 0 for c in _COUNTERS)),
         func.coalesce(usage.c.unreferenced_since, bindparam("k_time", type_=DateTime(timezone=True)))),
        else_=None,
    ))
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
    if not conn.execute(_BUMP[counter], dict(k_digest=digest, k_delta=delta)).rowcount:
        values = dict.fromkeys(_COUNTERS, 0) | {counter: delta}
        conn.execute(_INSERT_USAGE, dict(digest=digest, size=size or 0, **values))
    conn.execute(_MARK_UNREFERENCED, dict(k_digest=digest, k_time=ts))
