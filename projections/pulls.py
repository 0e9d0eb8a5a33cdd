"""Pull statistics read model: how often and when last each artifact (by digest) and each tag
was pulled, from `Repository.PullsRecorded` events (domain/pulls.py). Retention's "most
recently pulled" rules and the artifacts' `pull_time` read it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    MetaData,
    Table,
    and_,
    bindparam,
    case,
    func,
    select,
    update,
)

from domain.repository import Repository
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
artifact_pulls = Table(
    "pulls_artifacts", metadata,
    Column("repository", Name(255), primary_key=True),
    Column("digest", Name(200), primary_key=True),
    Column("pull_count", BigInteger, nullable=False),
    Column("last_pulled_at", DateTime(timezone=True), nullable=False),
)
tag_pulls = Table(
    "pulls_tags", metadata,
    Column("repository", Name(255), primary_key=True),
    Column("tag", Name(128), primary_key=True),
    Column("pull_count", BigInteger, nullable=False),
    Column("last_pulled_at", DateTime(timezone=True), nullable=False),
)


def _add_statement(table: Table, key: str):
    """Adds pulls to a row; the later of the two times stays (counts from several nodes may
    arrive out of order)."""
    last = bindparam("k_last", type_=DateTime(timezone=True))
    return update(table).where(and_(table.c.repository == bindparam("k_repository"),
                                    table.c[key] == bindparam("k_key"))).values(
        pull_count=table.c.pull_count + bindparam("k_count"),
        last_pulled_at=case((table.c.last_pulled_at < last, last), else_=table.c.last_pulled_at))


_ADD = {artifact_pulls: _add_statement(artifact_pulls, "digest"), tag_pulls: _add_statement(tag_pulls, "tag")}
_INSERT = {table: table.insert() for table in (artifact_pulls, tag_pulls)}


class PullsProjection:
    name = "pulls"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        if isinstance(event, Repository.PullsRecorded):
            for pull in event.pulls:
                when = datetime.fromisoformat(pull["last_pulled_at"])
                _add(conn, artifact_pulls, "digest", event.repository, pull["digest"], pull["count"], when)
                if pull.get("tag"):
                    _add(conn, tag_pulls, "tag", event.repository, pull["tag"], pull["count"], when)


def _add(conn: Connection, table: Table, key: str, repository: str, value: str, count: int,
         when: datetime) -> None:
    """Update, or insert the first row (as references.py counts digests)."""
    added = conn.execute(_ADD[table], dict(k_repository=repository, k_key=value, k_count=count, k_last=when))
    if not added.rowcount:
        conn.execute(_INSERT[table], {"repository": repository, key: value, "pull_count": count,
                                      "last_pulled_at": when})


class PullsView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.db = db

    def of_artifacts(self, repository: str, digests: list[str]) -> dict[str, tuple[int, datetime]]:
        """digest → (pull count, last pulled), for the digests ever pulled."""
        query = select(artifact_pulls.c.digest, artifact_pulls.c.pull_count, artifact_pulls.c.last_pulled_at) \
            .where(artifact_pulls.c.repository == repository, artifact_pulls.c.digest.in_(digests))
        with self.db.reader.connect() as conn:
            return {digest: (count, last) for digest, count, last in conn.execute(query)}

    def of_tags(self, repository: str, tags: list[str]) -> dict[str, tuple[int, datetime]]:
        query = select(tag_pulls.c.tag, tag_pulls.c.pull_count, tag_pulls.c.last_pulled_at) \
            .where(tag_pulls.c.repository == repository, tag_pulls.c.tag.in_(tags))
        with self.db.reader.connect() as conn:
            return {tag: (count, last) for tag, count, last in conn.execute(query)}

    def of_repositories(self, repositories: list[str]) -> dict[str, int]:
        """repository → manifest pulls in all, for the repositories ever pulled from."""
        query = select(artifact_pulls.c.repository, func.sum(artifact_pulls.c.pull_count)) \
            .where(artifact_pulls.c.repository.in_(repositories)).group_by(artifact_pulls.c.repository)
        with self.db.reader.connect() as conn:
            return {repository: int(total) for repository, total in conn.execute(query)}
