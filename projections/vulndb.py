"""Vulnerability data read model: the OSV records of every imported source, indexed by
(ecosystem, package) for the scanner, and what each source holds for `portlog vulndb status`.

Rebuilt from the log by reading each import's stored file again (domain/vulndb.py). A file that
cannot be read (gone from the blob store, not OSV) leaves its source with no records and the
reason, instead of stopping every read model; an unavailable store is retried like any error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Iterable

import orjson
from sqlalchemy import BigInteger, Column, Connection, DateTime, Integer, MetaData, String, Table, Text, delete, select

from domain.errors import RegistryError, StorageUnavailableError
from domain.vulndb import VulnerabilityData
from projections.database import Name, ReadModelDatabase, as_utc
from scanner.vulndb import InvalidVulnerabilityData, affected_packages, read_file_records

log = logging.getLogger("portlog")
INSERT_BATCH = 500
KEY_LENGTH = 255  # longer package names or record ids are not indexed (none are known)

metadata = MetaData()
sources = Table(
    "vulndb_sources", metadata,
    Column("name", Name(100), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("records", Integer, nullable=False),  # as the import counted them
    Column("stored_records", Integer, nullable=False),  # as this read model holds them
    Column("ecosystems", Text, nullable=False),  # JSON: records per ecosystem
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("imported_by", String(255), nullable=False),
    Column("error", Text),  # why the stored file could not be read
)
records = Table(
    "vulndb_records", metadata,
    Column("source", Name(100), primary_key=True),
    Column("record_id", Name(KEY_LENGTH), primary_key=True),
    Column("data", Text, nullable=False),
)
affected = Table(
    "vulndb_affected", metadata,
    Column("ecosystem", Name(100), primary_key=True),
    Column("package", Name(KEY_LENGTH), primary_key=True),
    Column("source", Name(100), primary_key=True),
    Column("record_id", Name(KEY_LENGTH), primary_key=True),
)


class VulnerabilityDataProjection:
    name = "vulndb"
    metadata = metadata

    def __init__(self, blobs) -> None:
        self.blobs = blobs  # the stored files are read again

    def apply(self, conn: Connection, event: object, position: int) -> None:
        if isinstance(event, VulnerabilityData.Imported):
            self._forget(conn, event.name)
            stored, error = 0, None
            try:
                stored = self._load(conn, event)
            except StorageUnavailableError:
                raise
            except (RegistryError, InvalidVulnerabilityData, OSError) as failure:
                error = getattr(failure, "message", None) or str(failure)
                log.warning("vulnerability data %s (%s) cannot be read: %s", event.name, event.digest, error)
                self._forget(conn, event.name)
            conn.execute(sources.insert().values(
                name=event.name, digest=event.digest, size=event.size, file_name=event.file_name,
                records=event.records, stored_records=stored, ecosystems=orjson.dumps(event.ecosystems).decode(),
                imported_at=event.timestamp, imported_by=event.actor, error=error))

    def _forget(self, conn: Connection, name: str) -> None:
        conn.execute(delete(affected).where(affected.c.source == name))
        conn.execute(delete(records).where(records.c.source == name))
        conn.execute(delete(sources).where(sources.c.name == name))

    def _load(self, conn: Connection, event) -> int:
        seen: set[str] = set()
        with self.blobs.open(event.digest) as stream:
            found = (record for _, record in read_file_records(stream, event.file_name))
            while batch := list(islice(found, INSERT_BATCH)):
                kept = [r for r in batch if len(r["id"]) <= KEY_LENGTH and r["id"] not in seen]
                seen.update(r["id"] for r in kept)
                if not kept:
                    continue
                conn.execute(records.insert(), [{"source": event.name, "record_id": r["id"],
                                                 "data": orjson.dumps(r).decode()} for r in kept])
                rows = [{"ecosystem": ecosystem, "package": package, "source": event.name, "record_id": r["id"]}
                        for r in kept for ecosystem, package in affected_packages(r) if len(package) <= KEY_LENGTH]
                if rows:
                    conn.execute(affected.insert(), rows)
        return len(seen)


@dataclass(frozen=True)
class SourceRow:
    name: str
    digest: str
    size: int
    file_name: str
    records: int
    stored_records: int
    ecosystems: dict[str, int]
    imported_at: datetime
    imported_by: str
    error: str | None


class VulnerabilityDataView:
    """The scanner's vulnerability source (scanner/vulndb.py VulnerabilitySource) and the status."""

    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def records_for(self, ecosystem: str, names: Iterable[str]) -> list[dict]:
        """Every record about one of the packages; a record two sources hold once, the newest import's."""
        names = sorted(set(names))
        found: dict[str, tuple[datetime, dict]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(names), INSERT_BATCH):
                query = select(records.c.record_id, records.c.data, sources.c.imported_at) \
                    .join(affected, (affected.c.source == records.c.source) &
                          (affected.c.record_id == records.c.record_id)) \
                    .join(sources, sources.c.name == records.c.source) \
                    .where(affected.c.ecosystem == ecosystem, affected.c.package.in_(names[start:start + INSERT_BATCH]))
                for record_id, data, imported_at in conn.execute(query):
                    imported_at = as_utc(imported_at)
                    if record_id not in found or found[record_id][0] < imported_at:
                        found[record_id] = (imported_at, orjson.loads(data))
        return [record for _, record in found.values()]

    def sources(self) -> list[SourceRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(sources).order_by(sources.c.name)).all()
        return [SourceRow(**{**row._mapping, "ecosystems": orjson.loads(row.ecosystems),
                             "imported_at": as_utc(row.imported_at)}) for row in rows]

    def updated_at(self) -> datetime | None:
        """When the newest data was imported."""
        return max((source.imported_at for source in self.sources()), default=None)
