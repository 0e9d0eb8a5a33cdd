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
    case,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)

from domain.repository import Repository

metadata = MetaData()
references = Table(
    "refs_manifest_references", metadata,
    Column("repository", String(255), primary_key=True),
    Column("manifest_digest", String(200), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("target_digest", String(200), nullable=False, index=True),
    Column("role", String(20), nullable=False),
    Column("size", BigInteger, nullable=False),
)
usage = Table(
    "refs_digest_usage", metadata,
    Column("digest", String(200), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("blob_links", Integer, nullable=False),
    Column("manifest_entries", Integer, nullable=False),
    Column("referenced_by", Integer, nullable=False),
    Column("unreferenced_since", DateTime(timezone=True)),
)
_COUNTERS = ("blob_links", "manifest_entries", "referenced_by")


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
            conn.execute(insert(references).values(
                repository=event.repository, manifest_digest=event.digest, ordinal=ordinal,
                target_digest=ref["digest"], role=ref["role"], size=ref["size"]))
            _count(conn, ref["digest"], ref["size"], "referenced_by", +1, event.timestamp)

    def _manifest_deleted(self, conn: Connection, repository: str, digest: str, ts) -> None:
        where = and_(references.c.repository == repository,
                     references.c.manifest_digest == digest)
        for target in conn.execute(select(references.c.target_digest).where(where)).scalars():
            _count(conn, target, None, "referenced_by", -1, ts)
        conn.execute(delete(references).where(where))
        _count(conn, digest, None, "manifest_entries", -1, ts)


def _count(conn: Connection, digest: str, size: int | None, counter: str, delta: int, ts) -> None:
    changed = conn.execute(
        update(usage).where(usage.c.digest == digest)
        .values({counter: usage.c[counter] + delta})
    ).rowcount
    if not changed:
        values = dict.fromkeys(_COUNTERS, 0) | {counter: delta}
        conn.execute(insert(usage).values(digest=digest, size=size or 0, **values))
    all_zero = and_(*(usage.c[c] == 0 for c in _COUNTERS))
    conn.execute(
        update(usage).where(usage.c.digest == digest).values(
            unreferenced_since=case(
                (all_zero, func.coalesce(usage.c.unreferenced_since, literal(ts, DateTime(True)))),
                else_=None,
            ))
    )
