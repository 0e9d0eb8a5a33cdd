"""A vulnerability data import rescans what it affects: follows the log from a durable position of
its own and, for each `VulnerabilityData.Imported`, asks for a vulnerability scan of every artifact
whose latest report names a package the imported records are about (projections/
scanned_packages.py joined with the source's records, projections/vulndb.py). The requests name
the import (`trigger` vulndb, `reason`), and go out a page at a time, never more than
RESCAN_PENDING waiting at once: the scan pool works through them without a flood in the log or
the queue. An artifact asked for since the import (a restart half-way through) is not asked again.
"""

from __future__ import annotations

import logging
import threading

from background.scan_jobs import IMAGE_MANIFESTS
from background.webhook_dispatcher import DispatchPosition, FromHeadPosition, events_after, follow_from
from domain.context import RequestContext
from domain.errors import ConflictError
from domain.scans import VULNDB, VULNERABILITY
from domain.vulndb import VulnerabilityData

log = logging.getLogger("portlog.scans")

FOLLOW_SECONDS = 2.0
FOLLOW_BATCH = 200
RESCAN_PAGE = 50
RESCAN_PENDING = 50  # rescans of one import waiting at once, at most
READ_MODELS = ("vulndb", "scanned_packages", "scans", "scanners")


class RescanPosition(FromHeadPosition):
    """An upgrade does not rescan for past imports."""

    NAME = "vulndb_rescans"


def follow_for_rescans(services, stop: threading.Event) -> None:
    follow_from(RescanPosition, lambda position: rescan_after_imports(services, position, stop),
                services, stop, FOLLOW_SECONDS, "rescans after vulnerability data imports", log)


def rescan_after_imports(services, position: DispatchPosition, stop: threading.Event) -> None:
    """Handles the imports recorded since `position`, as far as the read models it reads applied."""
    start = position.get()
    applied = services.projections.positions()
    readable = min(applied.get(name, 0) for name in READ_MODELS)
    if readable <= start:
        return
    events, reached = events_after(services.registry, start, readable, FOLLOW_BATCH)
    for at, event in events:
        if isinstance(event, VulnerabilityData.Imported):
            rescan_affected(services, event, stop)
            position.advance(at)
        if stop.is_set():
            return
    position.advance(reached)


def rescan_affected(services, imported: VulnerabilityData.Imported, stop: threading.Event) -> int:
    """Asks for the rescans one import calls for; returns how many were asked."""
    ctx = RequestContext(imported.actor, imported.request_id, imported.source)
    reason = f"vulnerability data {imported.name} imported ({imported.digest})"
    after, asked = ("", ""), 0
    while page := services.scanned_packages.affected_by(imported.name, after, RESCAN_PAGE):
        after = page[-1]
        for repository, digest in page:
            while not stop.is_set() and _waiting(services) >= RESCAN_PENDING:
                stop.wait(1.0)
            if stop.is_set():
                return asked
            asked += _rescan(services, repository, digest, imported, reason, ctx)
    log.info("%s: %d artifacts asked to be scanned again", reason, asked)
    return asked


def _waiting(services) -> int:
    services.projections.catch_up()
    return services.scans.waiting(VULNDB)


def _rescan(services, repository: str, digest: str, imported, reason: str, ctx: RequestContext) -> int:
    manifest = services.catalog.manifest_by_digest(repository, digest)
    if manifest is None or manifest.media_type not in IMAGE_MANIFESTS:
        return 0  # deleted since its scan
    overview = services.scans.overview(repository, digest, VULNERABILITY)
    if overview is not None and overview.requested_at is not None and overview.requested_at >= imported.timestamp:
        return 0  # asked since the import (by anyone): its report will use the new data
    registration = services.scanner_registrations.of_project(repository.split("/", 1)[0])
    if registration is None or registration.disabled:
        return 0
    try:
        services.scan_requests.request(repository, digest, VULNERABILITY, registration.uuid, registration.name,
                                       None, manifest.media_type, VULNDB, ctx, reason=reason)
    except ConflictError:
        return 0  # a scan of it is under way: the new data may come too late for it, but a scan is there
    return 1
