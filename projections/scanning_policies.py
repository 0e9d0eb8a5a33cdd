"""Scanning policies read model: each project's scanning settings (domain/scanning_settings.py)
and the CVE allowlists, the system's and each project's own (domain/cve_allowlist.py).

The pull checks read it on every manifest pull of a project (`settings`, one fixed query, and
`effective_allowlist` when the project prevents vulnerable pulls); the scan jobs ask
`auto_scan_enabled`. A project without a row has Harbor's defaults and an empty allowlist; its
rows leave with the project. An allowlist's public id is the log position of its first event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
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
    insert,
    select,
    update,
)

from domain.cve_allowlist import CveAllowlist, SystemCveAllowlist
from domain.project import Project
from domain.scanning_settings import DEFAULT, NAMES, ScanningSettings
from projections.database import Name, ReadModelDatabase, as_utc

SYSTEM = ""  # the scope of the system's allowlist (a project's is its name)

metadata = MetaData()
settings_table = Table(
    "scanning_settings", metadata,
    Column("project", Name(255), primary_key=True),
    Column("auto_scan", Boolean, nullable=False),
    Column("prevent_vul", Boolean, nullable=False),
    Column("severity", String(10), nullable=False),
    Column("reuse_sys_cve_allowlist", Boolean, nullable=False),
    Column("enable_content_trust_cosign", Boolean, nullable=False),
    Column("enable_content_trust", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
allowlists = Table(
    "scanning_cve_allowlists", metadata,
    Column("scope", Name(255), primary_key=True),  # the project's name; SYSTEM for the system's
    Column("id", BigInteger, nullable=False, unique=True),
    Column("items", Text, nullable=False),  # a JSON array of vulnerability ids
    Column("expires_at", BigInteger),  # Unix seconds; NULL: never
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class ScanningPoliciesProjection:
    name = "scanning_policies"
    metadata = metadata

    def apply(self, conn: Connection, event: object, position: int) -> None:
        match event:
            case Project.ScanningSettingsChanged():
                conn.execute(delete(settings_table).where(settings_table.c.project == event.project))
                conn.execute(insert(settings_table).values(
                    project=event.project, updated_at=event.timestamp,
                    **{name: getattr(event, name) for name in NAMES}))
            case Project.CveAllowlistSet():
                _set_allowlist(conn, event.project, event, position)
            case Project.Deleted() | Project.Recreated():
                conn.execute(delete(settings_table).where(settings_table.c.project == event.project))
                conn.execute(delete(allowlists).where(allowlists.c.scope == event.project))
            case SystemCveAllowlist.Created():
                _set_allowlist(conn, SYSTEM, None, position, event.timestamp)
            case SystemCveAllowlist.Set():
                _set_allowlist(conn, SYSTEM, event, position)


def _set_allowlist(conn: Connection, scope: str, event, position: int, timestamp: datetime | None = None) -> None:
    """The list as `event` has it (None: empty), keeping the id and creation time it first got."""
    values = {"items": orjson.dumps(list(event.items) if event else []).decode(),
              "expires_at": event.expires_at if event else None,
              "updated_at": timestamp or event.timestamp}
    where = allowlists.c.scope == scope
    if conn.execute(select(allowlists.c.id).where(where)).first() is None:
        conn.execute(insert(allowlists).values(scope=scope, id=position, created_at=values["updated_at"], **values))
    else:
        conn.execute(update(allowlists).where(where).values(**values))


@dataclass(frozen=True)
class AllowlistRow:
    id: int
    allowlist: CveAllowlist
    created_at: datetime
    updated_at: datetime


# The pull path's query, as fixed SQL (see ReadModelDatabase.fetch).
_SETTINGS_SQL = f"SELECT {', '.join(NAMES)} FROM scanning_settings WHERE project = ?"


class ScanningPoliciesView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.db = db
        self.engine = db.reader

    def settings(self, project: str) -> ScanningSettings:
        """The project's settings; Harbor's defaults for a project that never set any."""
        rows = self.db.fetch(_SETTINGS_SQL, (project,))
        if not rows:
            return DEFAULT
        values = dict(zip(NAMES, rows[0], strict=True))  # SQLite gives the flags back as 0 and 1
        return ScanningSettings(**{name: value if name == "severity" else bool(value)
                                   for name, value in values.items()})

    def auto_scan_enabled(self, project: str) -> bool:
        """Whether artifacts pushed to the project are scanned without a request (the scan jobs ask)."""
        return self.settings(project).auto_scan

    def allowlist(self, project: str) -> AllowlistRow | None:
        """The project's own allowlist, None if it never set one."""
        return self._allowlist(project)

    def system_allowlist(self) -> AllowlistRow | None:
        return self._allowlist(SYSTEM)

    def effective_allowlist(self, project: str) -> CveAllowlist:
        """The list that exempts the project's findings: the system's when the project reuses it
        (the default), else its own."""
        row = self.system_allowlist() if self.settings(project).reuse_sys_cve_allowlist else self.allowlist(project)
        return row.allowlist if row else CveAllowlist()

    def _allowlist(self, scope: str) -> AllowlistRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(allowlists).where(allowlists.c.scope == scope)).first()
        if row is None:
            return None
        return AllowlistRow(row.id, CveAllowlist(tuple(orjson.loads(row.items)), row.expires_at),
                            as_utc(row.created_at), as_utc(row.updated_at))
