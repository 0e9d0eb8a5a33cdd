"""Catalog read model: repositories, tags, manifests (with subject for referrers), and the
blobs linked into each repository. The `/v2/` read path is served from here."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from domain.repository import Repository
from projections.database import Name, ReadModelDatabase
from projections.references import references

metadata = MetaData()
repositories = Table(
    "catalog_repositories", metadata,
    Column("name", Name(255), primary_key=True),
    Column("id", BigInteger, nullable=False, unique=True),  # log position of its creation
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
tags = Table(
    "catalog_tags", metadata,
    Column("repository", Name(255), primary_key=True),
    Column("tag", Name(128), primary_key=True),
    Column("digest", Name(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("catalog_tags_by_digest", "repository", "digest"),
)
manifests = Table(
    "catalog_manifests", metadata,
    Column("repository", Name(255), primary_key=True),
    Column("digest", Name(200), primary_key=True),
    Column("id", BigInteger, nullable=False, unique=True),  # log position of its push
    Column("media_type", Name(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("artifact_type", Name(255)),
    Column("subject", Name(200)),
    Column("annotations", Text, nullable=False),
    Column("pushed_at", DateTime(timezone=True), nullable=False),
    Index("catalog_manifests_by_subject", "repository", "subject"),
)
# What a repository lists and counts as its artifacts (Harbor's artifact list, its artifact_count,
# a tag search): every manifest but an untagged referrer of a subject the repository holds, an
# accessory shown under that subject. A referrer with a tag (an SBOM tagged `sbom`) is one a user
# finds by its tag, so it is listed (and still shown under its subject).
_subject = manifests.alias("listed_subject")
LISTED_ARTIFACT = or_(
    manifests.c.subject.is_(None),
    exists().where(tags.c.repository == manifests.c.repository, tags.c.digest == manifests.c.digest),
    ~exists().where(_subject.c.repository == manifests.c.repository, _subject.c.digest == manifests.c.subject),
)

blobs = Table(
    "catalog_blobs", metadata,
    Column("repository", Name(255), primary_key=True),
    Column("digest", Name(200), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    Index("catalog_blobs_by_digest", "digest"),
)


def _where_key(table: Table, second: str):
    return and_(table.c.repository == bindparam("k_repository"), table.c[second] == bindparam("k_" + second))


# Statements built once and executed with parameters: building them per event cost ~10×
# their execution (the push profile).
_INSERT_REPOSITORY = repositories.insert()
_DELETE_REPOSITORY = delete(repositories).where(repositories.c.name == bindparam("k_repository"))
_TOUCH_REPOSITORY = update(repositories).where(repositories.c.name == bindparam("k_repository")).values(
    updated_at=bindparam("k_time"))
_DELETE_BLOB = delete(blobs).where(_where_key(blobs, "digest"))
_INSERT_MANIFEST, _DELETE_MANIFEST = manifests.insert(), delete(manifests).where(_where_key(manifests, "digest"))
_DELETE_TAG = delete(tags).where(_where_key(tags, "tag"))


def _upsert(table: Table) -> dict[str, object]:
    """By dialect name: insert the row, or replace the values of the row with its key. One
    statement where a DELETE and an INSERT were (a replay runs one per blob link and tag)."""
    key = [column.name for column in table.primary_key]
    statements = {}
    for dialect, insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert)):
        statement = insert(table)
        statements[dialect] = statement.on_conflict_do_update(index_elements=key, set_={
            column.name: statement.excluded[column.name] for column in table.c if column.name not in key})
    return statements


_UPSERT_BLOB, _UPSERT_TAG = _upsert(blobs), _upsert(tags)


class CatalogProjection:
    name = "catalog"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        if not isinstance(event, Repository.Event):
            return
        repo, ts = event.repository, event.timestamp
        match event:
            case Repository.Created() | Repository.Undeleted() | Repository.Recreated():
                conn.execute(_INSERT_REPOSITORY, dict(name=repo, id=position, created_at=ts, updated_at=ts))
                return
            case Repository.Deleted():  # its tags, manifests and blobs went in the events before
                conn.execute(_DELETE_REPOSITORY, dict(k_repository=repo))
                return
            case Repository.BlobLinked(digest=digest, size=size):
                conn.execute(_UPSERT_BLOB[conn.dialect.name],
                             dict(repository=repo, digest=digest, size=size, linked_at=ts))
            case Repository.BlobUnlinked(digest=digest):
                conn.execute(_DELETE_BLOB, dict(k_repository=repo, k_digest=digest))
            case Repository.ManifestPushed():
                conn.execute(_INSERT_MANIFEST, dict(
                    repository=repo, digest=event.digest, id=position, media_type=event.media_type,
                    size=event.size, artifact_type=event.artifact_type, subject=event.subject,
                    annotations=orjson.dumps(event.annotations).decode(), pushed_at=ts))
            case Repository.ManifestDeleted(digest=digest):
                conn.execute(_DELETE_MANIFEST, dict(k_repository=repo, k_digest=digest))
            case Repository.TagPointed(tag=tag, digest=digest):
                conn.execute(_UPSERT_TAG[conn.dialect.name],
                             dict(repository=repo, tag=tag, digest=digest, updated_at=ts))
            case Repository.TagDeleted(tag=tag):
                conn.execute(_DELETE_TAG, dict(k_repository=repo, k_tag=tag))
            case _:
                return
        conn.execute(_TOUCH_REPOSITORY, dict(k_repository=repo, k_time=ts))


@dataclass(frozen=True)
class ManifestRow:
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    subject: str | None
    annotations: dict


class CatalogView:
    """Queries of the catalog read model. Cheap: one indexed lookup each."""

    def __init__(self, db: ReadModelDatabase) -> None:
        self.db = db
        self.engine = db.reader

    def repository_exists(self, name: str) -> bool:
        return bool(self.db.fetch(_REPOSITORY_SQL, (name,)))

    def blob_size(self, name: str, digest: str) -> int | None:
        rows = self.db.fetch(_BLOB_SIZE_SQL, (name, digest))
        return rows[0][0] if rows else None

    def manifest_by_digest(self, name: str, digest: str) -> ManifestRow | None:
        rows = self.db.fetch(_MANIFEST_BY_DIGEST_SQL, (name, digest))
        return _manifest_row(rows[0]) if rows else None

    def manifest_by_tag(self, name: str, tag: str) -> ManifestRow | None:
        rows = self.db.fetch(_MANIFEST_BY_TAG_SQL, (name, tag))
        return _manifest_row(rows[0]) if rows else None

    def tags(self, name: str, limit: int, last: str | None = None) -> list[str]:
        return self.db.fetch_column(_TAGS_SQL, (name, last or "", limit))

    def repositories(self, limit: int, last: str | None = None) -> list[str]:
        return self.db.fetch_column(_REPOSITORIES_SQL, (last or "", limit))

    def repository_count(self, project: str) -> int:
        query = select(func.count()).select_from(repositories).where(
            repositories.c.name.startswith(f"{project}/", autoescape=True))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def repositories_linking(self, digest: str) -> list[str]:
        return self.db.fetch_column(_LINKING_SQL, (digest,))

    def untagged_manifests(self, pushed_before, limit: int) -> list[tuple[str, str]]:
        """(repository, digest) of manifests no tag points at, that no manifest of their
        repository lists (an index's children) and that are not referrers (those go with their
        subject), pushed before `pushed_before`: what GC's delete_untagged removes."""
        query = select(manifests.c.repository, manifests.c.digest).where(
            manifests.c.subject.is_(None), manifests.c.pushed_at < pushed_before,
            ~exists().where(tags.c.repository == manifests.c.repository, tags.c.digest == manifests.c.digest),
            ~exists().where(references.c.repository == manifests.c.repository,
                            references.c.target_digest == manifests.c.digest),
        ).order_by(manifests.c.repository, manifests.c.digest).limit(limit)
        with self.engine.connect() as conn:
            return [(repository, digest) for repository, digest in conn.execute(query)]

    def listed_by_a_manifest(self, name: str, digest: str) -> bool:
        query = select(references.c.manifest_digest).where(
            references.c.repository == name, references.c.target_digest == digest).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def parents(self, name: str, digest: str) -> list[str]:
        """The manifests of the repository that list the manifest `digest` (its indexes)."""
        query = select(references.c.manifest_digest).where(
            references.c.repository == name, references.c.target_digest == digest, references.c.role == "manifest")
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(references.c.manifest_digest)).scalars())

    def referrers_of(self, name: str, subjects: list[str]) -> dict[str, list[ManifestRow]]:
        """The referrers of several subjects at once: subject → its referrers (by digest)."""
        query = select(*_MANIFEST_COLUMNS).where(manifests.c.repository == name, manifests.c.subject.in_(subjects))
        found: dict[str, list[ManifestRow]] = {subject: [] for subject in subjects}
        with self.engine.connect() as conn:
            for row in conn.execute(query.order_by(manifests.c.digest)):
                referrer = _manifest_row(row)
                found[referrer.subject].append(referrer)
        return found

    def image_manifests(self, media_types: tuple[str, ...], after: tuple[str, str] = ("", ""),
                        limit: int = 500) -> list[tuple[str, str, str, str | None]]:
        """(repository, digest, media type, its latest tag or None) of manifests of those media
        types that are not referrers, in (repository, digest) order after `after`: what a scan
        of everything goes through, page by page."""
        latest_tag = select(tags.c.tag).where(tags.c.repository == manifests.c.repository,
                                              tags.c.digest == manifests.c.digest) \
            .order_by(tags.c.updated_at.desc()).limit(1).scalar_subquery()
        query = select(manifests.c.repository, manifests.c.digest, manifests.c.media_type, latest_tag).where(
            manifests.c.media_type.in_(media_types), manifests.c.subject.is_(None),
            or_(manifests.c.repository > after[0],
                and_(manifests.c.repository == after[0], manifests.c.digest > after[1])),
        ).order_by(manifests.c.repository, manifests.c.digest).limit(limit)
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def referrers(self, name: str, subject: str, artifact_type: str | None) -> list[ManifestRow]:
        query = select(*_MANIFEST_COLUMNS).where(
            and_(manifests.c.repository == name, manifests.c.subject == subject))
        if artifact_type is not None:
            query = query.where(manifests.c.artifact_type == artifact_type)
        with self.engine.connect() as conn:
            return [_manifest_row(row) for row in conn.execute(query.order_by(manifests.c.digest))]


# The pull path's queries, as fixed SQL (see ReadModelDatabase.fetch).
_MANIFEST_FIELDS = "m.digest, m.media_type, m.size, m.artifact_type, m.subject, m.annotations"
_REPOSITORY_SQL = "SELECT 1 FROM catalog_repositories WHERE name = ?"
_BLOB_SIZE_SQL = "SELECT size FROM catalog_blobs WHERE repository = ? AND digest = ?"
_MANIFEST_BY_DIGEST_SQL = f"SELECT {_MANIFEST_FIELDS} FROM catalog_manifests m WHERE m.repository = ? AND m.digest = ?"
_MANIFEST_BY_TAG_SQL = (
    f"SELECT {_MANIFEST_FIELDS} FROM catalog_tags t JOIN catalog_manifests m "
    "ON m.repository = t.repository AND m.digest = t.digest WHERE t.repository = ? AND t.tag = ?")
_TAGS_SQL = "SELECT tag AS value FROM catalog_tags WHERE repository = ? AND tag > ? ORDER BY tag LIMIT ?"
_LINKING_SQL = "SELECT repository AS value FROM catalog_blobs WHERE digest = ? ORDER BY repository"
_REPOSITORIES_SQL = "SELECT name AS value FROM catalog_repositories WHERE name > ? ORDER BY name LIMIT ?"
_MANIFEST_COLUMNS = (
    manifests.c.digest, manifests.c.media_type, manifests.c.size, manifests.c.artifact_type,
    manifests.c.subject, manifests.c.annotations,
)


def _manifest_row(row) -> ManifestRow:
    digest, media_type, size, artifact_type, subject, annotations = row
    return ManifestRow(digest, media_type, size, artifact_type, subject, orjson.loads(annotations))
