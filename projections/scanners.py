"""Scanner registrations read model: what the APIs list (never a credential, sealed or not: only
whether one is stored), which registration is the system default, and each project's own choice.
A registration's public id is its uuid (Harbor's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)

from domain.project import Project
from domain.scanners import ScannerRegistration
from projections.database import Name, ReadModelDatabase

metadata = MetaData()
registrations = Table(
    "scanner_registrations", metadata,
    Column("uuid", String(36), primary_key=True),
    Column("id", BigInteger, nullable=False),  # the log position of its creation
    Column("name", Name(128), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("auth", String(32), nullable=False),
    Column("has_credential", Boolean, nullable=False),
    Column("skip_cert_verify", Boolean, nullable=False),
    Column("use_internal_addr", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("immutable", Boolean, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
project_scanners = Table(
    "scanner_projects", metadata,
    Column("project", Name(255), primary_key=True),
    Column("scanner", String(36), nullable=False),
)


class ScannersProjection:
    name = "scanners"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case ScannerRegistration.Created():
                conn.execute(registrations.insert().values(
                    uuid=str(event.originator_id), id=position, name=event.scanner, immutable=event.immutable,
                    is_default=False, created_at=event.timestamp, **_columns(event)))
            case ScannerRegistration.Updated():
                conn.execute(update(registrations).where(registrations.c.uuid == str(event.originator_id))
                             .values(name=event.scanner, **_columns(event)))
            case ScannerRegistration.Deleted():
                conn.execute(delete(registrations).where(registrations.c.uuid == str(event.originator_id)))
                conn.execute(delete(project_scanners).where(project_scanners.c.scanner == str(event.originator_id)))
            case ScannerRegistration.DefaultSet():
                conn.execute(update(registrations).values(
                    is_default=registrations.c.uuid == str(event.originator_id)))
            case Project.ScannerChosen():
                conn.execute(delete(project_scanners).where(project_scanners.c.project == event.project))
                conn.execute(project_scanners.insert().values(project=event.project, scanner=event.scanner))
            case Project.Deleted() | Project.Recreated():
                conn.execute(delete(project_scanners).where(project_scanners.c.project == event.project))


def _columns(event) -> dict:
    return dict(url=event.url, description=event.description, auth=event.auth,
                has_credential=event.access_credential is not None, skip_cert_verify=event.skip_cert_verify,
                use_internal_addr=event.use_internal_addr, disabled=event.disabled, updated_at=event.timestamp)


@dataclass(frozen=True)
class RegistrationRow:
    uuid: str
    id: int
    name: str
    description: str
    url: str
    auth: str
    has_credential: bool
    skip_cert_verify: bool
    use_internal_addr: bool
    disabled: bool
    immutable: bool
    is_default: bool
    created_at: datetime
    updated_at: datetime


class ScannersView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def all(self) -> list[RegistrationRow]:
        return self._rows(select(registrations).order_by(registrations.c.id))

    def by_uuid(self, uuid: str) -> RegistrationRow | None:
        return next(iter(self._rows(select(registrations).where(registrations.c.uuid == uuid))), None)

    def by_name(self, name: str) -> RegistrationRow | None:
        return next(iter(self._rows(select(registrations).where(registrations.c.name == name))), None)

    def default(self) -> RegistrationRow | None:
        return next(iter(self._rows(select(registrations).where(registrations.c.is_default.is_(True)))), None)

    def default_uuid(self) -> str | None:
        row = self.default()
        return row.uuid if row else None

    def name_taken(self, name: str, other_than: str | None = None) -> bool:
        row = self.by_name(name)
        return row is not None and row.uuid != other_than

    def chosen_by(self, project: str) -> RegistrationRow | None:
        """The project's own choice, if it made one (and the registration still exists)."""
        query = select(registrations).join(project_scanners, project_scanners.c.scanner == registrations.c.uuid) \
            .where(project_scanners.c.project == project)
        return next(iter(self._rows(query)), None)

    def of_project(self, project: str) -> RegistrationRow | None:
        """The scanner that scans the project's artifacts: its own choice, else the default."""
        return self.chosen_by(project) or self.default()

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(registrations)).scalar_one()

    def _rows(self, query) -> list[RegistrationRow]:
        with self.engine.connect() as conn:
            return [RegistrationRow(**row._mapping) for row in conn.execute(query)]
