"""Vulnerability data imported offline (`portlog vulndb import`), one aggregate per source
name. Topic `domain.vulndb:VulnerabilityData.<Event>`; events are a public schema (fields only
added, with defaults).

The imported file (a JSON file or a zip of OSV records) is stored in the blob store at its
content address before the event is recorded; the event carries its digest and what it held,
never the records. The read model (projections/vulndb.py) reads the file again, so the log
alone rebuilds it. A new import of a source replaces what the source held.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import KW_ONLY
from typing import Iterable
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.blob import GcFence
from domain.context import RequestContext
from domain.errors import InvalidInputError

_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}$")
UPLOAD_OWNER = "vulndb"  # what the blob store's scratch space records as the upload's owner


class VulnerabilityData(Aggregate):
    class Event(Aggregate.Event):
        name: str  # the source's name: "Debian", "PyPI", "osv-all"
        actor: str
        request_id: str
        _: KW_ONLY
        source: str = ""  # the client's address, as on every event

        def apply(self, aggregate: VulnerabilityData) -> None:
            pass

    class Created(Event, Aggregate.Created):
        pass

    class Imported(Event):
        """The source's data is now the file at `digest`."""

        digest: str
        size: int
        file_name: str  # as the operator named it
        records: int
        ecosystems: dict  # records per ecosystem, as the records name it ("Debian:12": 1234)
        previous_digest: str | None  # the file this import replaces

        def apply(self, data: VulnerabilityData) -> None:
            data.digest = self.digest

    def __init__(self, name: str) -> None:
        self.name = name
        self.digest: str | None = None

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/vulndb/{name}")

    @classmethod
    def create(cls, name: str, ctx: RequestContext) -> VulnerabilityData:
        return cls._create(cls.Created, id=cls.create_id(check_source_name(name)), name=name, **ctx.event_fields())

    def imported(self, digest: str, size: int, file_name: str, ecosystems: dict[str, int], records: int,
                 ctx: RequestContext) -> None:
        self.trigger_event(self.Imported, name=self.name, digest=digest, size=size, file_name=file_name,
                           records=records, ecosystems=dict(sorted(ecosystems.items())),
                           previous_digest=self.digest, **ctx.event_fields())


def check_source_name(name: object) -> str:
    if not isinstance(name, str) or not _SOURCE_NAME.match(name):
        raise InvalidInputError("a vulnerability data source is named by 1 to 100 letters, digits and . _ : + -, "
                                "starting with a letter or digit", {"source": name})
    return name


class VulnerabilityImports:
    """Stores an imported file's bytes, streamed, at their content address, then records the import."""

    def __init__(self, app, fence: GcFence) -> None:
        self.app = app  # the Registry: the log and its blob store
        self.fence = fence

    def record(self, name: str, chunks: Iterable[bytes], file_name: str, ecosystems: dict[str, int], records: int,
               ctx: RequestContext) -> tuple[str, int | None]:
        """(digest, log position) of the import."""
        check_source_name(name)
        digest, size = self._store(chunks, ctx)
        position = self.app.update(VulnerabilityData.create_id(name),
                                   lambda data: data.imported(digest, size, file_name, ecosystems, records, ctx),
                                   create=lambda: VulnerabilityData.create(name, ctx))
        return digest, position

    def _store(self, chunks: Iterable[bytes], ctx: RequestContext) -> tuple[str, int]:
        blobs = self.app.blobs
        upload = blobs.start_upload(UPLOAD_OWNER)
        try:
            writer, hasher = blobs.upload_writer(upload.upload_id), hashlib.sha256()
            try:
                for chunk in chunks:
                    writer.write(chunk)
                    hasher.update(chunk)
            except BaseException:
                writer.abort()
                raise
            writer.commit()
            digest = f"sha256:{hasher.hexdigest()}"
            # The same bytes imported before may be what a collector is condemning now.
            self.fence.retain(digest, "upload", ctx)
            return digest, blobs.complete_upload(upload.upload_id, digest)
        except BaseException:
            blobs.cancel_upload(upload.upload_id)
            raise
