"""Labels read model: the labels (a label's public id is the log position of its creation) and
which artifacts carry them. An artifact's labels go with the artifact, a label's with the label."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    select,
    update,
)

from domain.labels import GLOBAL, Label, LabelKey
from domain.permissions import project_of
from domain.repository import Repository
from projections.catalog import tags
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
labels = Table(
    "labels", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("path", Name(400), nullable=False, unique=True),  # LabelKey.path: scope/project/name
    Column("name", Name(128), nullable=False),
    Column("scope", String(1), nullable=False),
    Column("project", Name(255)),  # project labels only
    Column("color", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
artifact_labels = Table(
    "artifact_labels", metadata,
    Column("repository", Name(255), primary_key=True),
    Column("digest", Name(200), primary_key=True),
    Column("label_id", BigInteger, primary_key=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Index("artifact_labels_by_label", "label_id"),
)


class LabelsProjection:
    name = "labels"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case Label.Created() | Label.Recreated():
                path = _key(event).path
                conn.execute(delete(labels).where(labels.c.path == path))
                conn.execute(labels.insert().values(
                    id=position, path=path, name=event.label, scope=event.scope, project=event.project,
                    color=event.color, description=event.description, created_at=event.timestamp,
                    updated_at=event.timestamp))
            case Label.Updated():
                conn.execute(update(labels).where(labels.c.path == _key(event).path).values(
                    color=event.color, description=event.description, updated_at=event.timestamp))
            case Label.Deleted():
                label_id = _label_id(conn, _key(event))
                conn.execute(delete(artifact_labels).where(artifact_labels.c.label_id == label_id))
                conn.execute(delete(labels).where(labels.c.id == label_id))
            case Repository.ArtifactLabelAdded():
                label_id = _label_id(conn, _carried_key(event))
                if label_id is not None:
                    conn.execute(artifact_labels.insert().values(
                        repository=event.repository, digest=event.digest, label_id=label_id, added_at=event.timestamp))
            case Repository.ArtifactLabelRemoved():
                conn.execute(delete(artifact_labels).where(
                    _artifact(event.repository, event.digest),
                    artifact_labels.c.label_id == _label_id(conn, _carried_key(event))))
            case Repository.ManifestDeleted():
                conn.execute(delete(artifact_labels).where(_artifact(event.repository, event.digest)))


def _key(event: Label.Event) -> LabelKey:
    return LabelKey(event.scope, event.project, event.label)


def _carried_key(event: Repository.ArtifactLabelAdded | Repository.ArtifactLabelRemoved) -> LabelKey:
    return LabelKey(event.scope, None if event.scope == GLOBAL else project_of(event.repository), event.label)


def _label_id(conn: Connection, key: LabelKey) -> int | None:
    return conn.execute(select(labels.c.id).where(labels.c.path == key.path)).scalar()


def _artifact(repository: str, digest: str):
    return and_(artifact_labels.c.repository == repository, artifact_labels.c.digest == digest)


@dataclass(frozen=True)
class LabelRow:
    id: int
    name: str
    scope: str
    project: str | None
    color: str
    description: str
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> LabelKey:
        return LabelKey(self.scope, self.project, self.name)


_ROW_COLUMNS = [labels.c[name] for name in LabelRow.__dataclass_fields__]


class LabelsView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def labels(self, scope: str, project: str | None = None, name_contains: str | None = None) -> list[LabelRow]:
        query = select(*_ROW_COLUMNS).where(labels.c.scope == scope)
        if project is not None:
            query = query.where(labels.c.project == project)
        if name_contains:
            query = query.where(labels.c.name.contains(name_contains, autoescape=True))
        return self._rows(query.order_by(labels.c.id))

    def by_id(self, label_id: int) -> LabelRow | None:
        return next(iter(self._rows(select(*_ROW_COLUMNS).where(labels.c.id == label_id))), None)

    def by_key(self, key: LabelKey) -> LabelRow | None:
        return next(iter(self._rows(select(*_ROW_COLUMNS).where(labels.c.path == key.path))), None)

    def of_artifacts(self, repository: str, digests: list[str]) -> dict[str, list[LabelRow]]:
        """The labels each artifact carries, oldest label first."""
        query = (select(artifact_labels.c.digest, *_ROW_COLUMNS)
                 .join(labels, labels.c.id == artifact_labels.c.label_id)
                 .where(artifact_labels.c.repository == repository, artifact_labels.c.digest.in_(digests))
                 .order_by(labels.c.id))
        found: dict[str, list[LabelRow]] = {digest: [] for digest in digests}
        with self.engine.connect() as conn:
            for digest, *columns in conn.execute(query):
                found[digest].append(LabelRow(*columns))
        return found

    def labelled_repositories(self, key: LabelKey) -> list[str]:
        """The repositories where some artifact carries the label."""
        query = (select(artifact_labels.c.repository).distinct()
                 .join(labels, labels.c.id == artifact_labels.c.label_id).where(labels.c.path == key.path)
                 .order_by(artifact_labels.c.repository))
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def tag_labels(self, repository: str) -> dict[str, frozenset[str]]:
        """Each labelled tag of the repository → the names of its artifact's labels."""
        query = (select(tags.c.tag, labels.c.name)
                 .join(artifact_labels, and_(artifact_labels.c.repository == tags.c.repository,
                                             artifact_labels.c.digest == tags.c.digest))
                 .join(labels, labels.c.id == artifact_labels.c.label_id)
                 .where(tags.c.repository == repository))
        found: dict[str, set[str]] = {}
        with self.engine.connect() as conn:
            for tag, name in conn.execute(query):
                found.setdefault(tag, set()).add(name)
        return {tag: frozenset(names) for tag, names in found.items()}

    def _rows(self, query) -> list[LabelRow]:
        with self.engine.connect() as conn:
            return [LabelRow(*row) for row in conn.execute(query)]
