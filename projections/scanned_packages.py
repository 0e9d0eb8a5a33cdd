"""Scanned packages read model: per artifact, the packages its latest completed vulnerability
report says were looked up in the vulnerability data (the built-in scanner's report carries them
as `vendor_attributes.packages`: ecosystem → package keys, scanner/reports.py), so that a new
import finds the artifacts it may change (background/vulndb_rescans.py). Reports of other
scanners carry none: their artifacts are theirs to rescan with their own data.

Rebuilt from the log by reading each completed report again from the blob store (streamed); a
report that cannot be read leaves its artifact without packages.
"""

from __future__ import annotations

import logging

import ijson
from sqlalchemy import Column, Connection, Index, MetaData, Table, delete, select, tuple_

from domain.errors import RegistryError, StorageUnavailableError
from domain.scans import VULNERABILITY, Scan
from projections.database import Name, ReadModelDatabase
from projections.vulndb import KEY_LENGTH, affected

log = logging.getLogger("portlog")
INSERT_BATCH = 500

metadata = MetaData()
packages = Table(
    "scanned_packages", metadata,
    Column("repository", Name(255), primary_key=True),
    Column("digest", Name(200), primary_key=True),
    Column("ecosystem", Name(100), primary_key=True),
    Column("package", Name(KEY_LENGTH), primary_key=True),
    Index("scanned_packages_package", "ecosystem", "package"),
)


class ScannedPackagesProjection:
    name = "scanned_packages"
    metadata = metadata

    def __init__(self, blobs) -> None:
        self.blobs = blobs  # the stored reports are read again

    def apply(self, conn: Connection, event: object, position: int) -> None:
        if isinstance(event, Scan.Completed) and event.scan_type == VULNERABILITY:
            conn.execute(delete(packages).where(packages.c.repository == event.repository,
                                                packages.c.digest == event.digest))
            try:
                self._load(conn, event)
            except StorageUnavailableError:
                raise
            except (RegistryError, ijson.JSONError, OSError) as failure:
                log.warning("the packages of report %s cannot be read: %s", event.report_digest, failure)

    def _load(self, conn: Connection, event: Scan.Completed) -> None:
        rows: list[dict] = []
        with self.blobs.open(event.report_digest) as stream:
            for ecosystem, names in ijson.kvitems(stream, "vendor_attributes.packages"):
                if not isinstance(names, list) or not isinstance(ecosystem, str) or len(ecosystem) > 100:
                    continue
                rows += [{"repository": event.repository, "digest": event.digest, "ecosystem": ecosystem,
                          "package": name} for name in set(names) if isinstance(name, str) and len(name) <= KEY_LENGTH]
                while len(rows) >= INSERT_BATCH:
                    conn.execute(packages.insert(), rows[:INSERT_BATCH])
                    rows = rows[INSERT_BATCH:]
        if rows:
            conn.execute(packages.insert(), rows)


class ScannedPackagesView:
    def __init__(self, db: ReadModelDatabase) -> None:
        self.engine = db.reader

    def affected_by(self, source: str, after: tuple[str, str] = ("", ""), limit: int = 100) -> list[tuple[str, str]]:
        """(repository, digest) of the artifacts with a package the source's records name, in
        order, after `after`: a page."""
        query = select(packages.c.repository, packages.c.digest).distinct().join(
            affected, (affected.c.ecosystem == packages.c.ecosystem) & (affected.c.package == packages.c.package)
        ).where(affected.c.source == source, tuple_(packages.c.repository, packages.c.digest) > after) \
            .order_by(packages.c.repository, packages.c.digest).limit(limit)
        with self.engine.connect() as conn:
            return [(repository, digest) for repository, digest in conn.execute(query)]
