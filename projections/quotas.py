"""Quota read model: per project, its limits (Project.QuotaSet) and its usage — storage bytes,
each digest counted once however many of the project's repositories hold it (as a linked blob
or as a manifest), and the number of artifacts (manifests, per repository). Exact after
deletes and garbage collection: usage follows the events that unlink and delete."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    Table,
    and_,
    bindparam,
    delete,
    select,
    update,
)

from domain.permissions import project_of
from domain.project import Project
from domain.quotas import DEFAULT_WARNING_PERCENT, QuotaLimits, QuotaUsage
from domain.repository import Repository
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
usage = Table(
    "quota_usage", metadata,
    Column("project", Name(255), primary_key=True),
    Column("storage_bytes", BigInteger, nullable=False),
    Column("artifacts", BigInteger, nullable=False),
    Column("storage_limit", BigInteger),
    Column("artifact_limit", BigInteger),
    Column("warning_percent", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
digests = Table(  # what the project holds: a digest's bytes count while holders > 0
    "quota_digests", metadata,
    Column("project", Name(255), primary_key=True),
    Column("digest", Name(200), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("holders", Integer, nullable=False),
)

_OF_PROJECT = usage.c.project == bindparam("k_project")
_OF_DIGEST = and_(digests.c.project == bindparam("k_project"), digests.c.digest == bindparam("k_digest"))
_HOLD = update(digests).where(_OF_DIGEST).values(holders=digests.c.holders + bindparam("k_delta"))
_HOLDERS = select(digests.c.holders, digests.c.size).where(_OF_DIGEST)
_DROP_DIGEST = delete(digests).where(_OF_DIGEST)
_INSERT_DIGEST = digests.insert()
_ADD = update(usage).where(_OF_PROJECT).values(
    storage_bytes=usage.c.storage_bytes + bindparam("k_bytes"),
    artifacts=usage.c.artifacts + bindparam("k_artifacts"), updated_at=bindparam("k_time"))


class QuotaProjection:
    name = "quotas"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case Project.Deleted():  # an empty project: it holds nothing
                conn.execute(delete(usage).where(usage.c.project == event.project))
            case Project.Created() | Project.Recreated() | Project.Undeleted():
                conn.execute(delete(usage).where(usage.c.project == event.project))
                conn.execute(usage.insert().values(
                    project=event.project, storage_bytes=0, artifacts=0, warning_percent=DEFAULT_WARNING_PERCENT,
                    updated_at=event.timestamp))
            case Project.QuotaSet():
                conn.execute(update(usage).where(usage.c.project == event.project).values(
                    storage_limit=event.storage_bytes, artifact_limit=event.artifacts,
                    warning_percent=event.warning_percent, updated_at=event.timestamp))
            case Repository.BlobLinked(digest=digest, size=size):
                self._hold(conn, event, digest, size, +1)
            case Repository.BlobUnlinked(digest=digest):
                self._hold(conn, event, digest, 0, -1)
            case Repository.ManifestPushed(digest=digest, size=size):
                self._hold(conn, event, digest, size, +1, artifacts=+1)
            case Repository.ManifestDeleted(digest=digest):
                self._hold(conn, event, digest, 0, -1, artifacts=-1)

    def _hold(self, conn: Connection, event: Repository.Event, digest: str, size: int, delta: int,
              artifacts: int = 0) -> None:
        """One more (or one fewer) holder of `digest` in the event's project; its bytes count
        from the first holder to the last."""
        key = dict(k_project=project_of(event.repository), k_digest=digest)
        added = 0
        if delta > 0:
            if not conn.execute(_HOLD, dict(key, k_delta=delta)).rowcount:
                conn.execute(_INSERT_DIGEST, dict(project=key["k_project"], digest=digest, size=size, holders=1))
                added = size
        else:
            row = conn.execute(_HOLDERS, key).first()
            if row is not None and row.holders <= 1:
                conn.execute(_DROP_DIGEST, key)
                added = -row.size
            elif row is not None:
                conn.execute(_HOLD, dict(key, k_delta=-1))
        if added or artifacts:
            conn.execute(_ADD, dict(k_project=key["k_project"], k_bytes=added, k_artifacts=artifacts,
                                    k_time=event.timestamp))


_LIMITED_SQL = ("SELECT storage_bytes, artifacts, storage_limit, artifact_limit, warning_percent FROM quota_usage "
                "WHERE project = ? AND (storage_limit IS NOT NULL OR artifact_limit IS NOT NULL)")


class QuotaView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.db = db

    def usage(self, project: str) -> QuotaUsage | None:
        with self.db.reader.connect() as conn:
            row = conn.execute(select(usage).where(usage.c.project == project)).first()
        if row is None:
            return None
        return QuotaUsage(project, QuotaLimits(row.storage_limit, row.artifact_limit, row.warning_percent),
                          row.storage_bytes, row.artifacts)

    def limited_usage(self, project: str) -> QuotaUsage | None:
        """The usage of a project with a quota (None without one: nothing to check). On every
        push: fixed SQL (ReadModelDatabase.fetch), a fraction of Core's cost."""
        rows = self.db.fetch(_LIMITED_SQL, (project,))
        if not rows:
            return None
        storage_bytes, artifacts, storage_limit, artifact_limit, warning_percent = rows[0]
        return QuotaUsage(project, QuotaLimits(storage_limit, artifact_limit, warning_percent), storage_bytes,
                          artifacts)

    def held(self, project: str, candidates: list[str]) -> set[str]:
        """Which of `candidates` the project holds already (their bytes are counted)."""
        query = select(digests.c.digest).where(digests.c.project == project, digests.c.digest.in_(candidates))
        with self.db.reader.connect() as conn:
            return set(conn.execute(query).scalars())

    def all_usage(self) -> list[tuple[QuotaUsage, datetime]]:
        with self.db.reader.connect() as conn:
            rows = conn.execute(select(usage).order_by(usage.c.project)).all()
        return [(QuotaUsage(r.project, QuotaLimits(r.storage_limit, r.artifact_limit, r.warning_percent),
                            r.storage_bytes, r.artifacts), r.updated_at) for r in rows]
