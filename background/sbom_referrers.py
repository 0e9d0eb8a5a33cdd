"""The SBOM as a referrer of its artifact, as Harbor attaches its SBOM accessory: once an SBOM
scan completes, the CycloneDX document of its report (the report's `sbom`, streamed out of the
blob store) is pushed into the artifact's repository as one layer of an OCI image manifest
whose config media type and `artifactType` are Harbor's `application/vnd.goharbor.harbor.sbom.v1`
and whose `subject` is the artifact. So Harbor-aware tools see Harbor's accessory type
(`sbom.harbor`), and `oras discover` and the referrers API list it.

The push goes through the domain's own commands (domain/uploads.py, domain/artifacts.py): the
push checks apply, a refusal (a quota) is recorded on the scan (`Scan.SbomNotAttached`, in the
scan's log) and the report stays. The scanner is the actor. Like Harbor, an artifact keeps one
SBOM accessory: the previous ones are deleted once the new one is in place.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Iterator

import ijson
import orjson

from domain.context import RequestContext
from domain.errors import ConflictError, RegistryError
from domain.scans import Scan

log = logging.getLogger("portlog.scans")

HARBOR_SBOM = "application/vnd.goharbor.harbor.sbom.v1"  # Harbor's config media type: accessory sbom.harbor
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"  # Harbor's layer type for the document
CHUNK = 64 * 1024


class NoSbom(Exception):
    """The stored report holds no `sbom` object or array."""


def attach_sbom(services, scan: Scan, report_digest: str) -> int | None:
    """Pushes the report's SBOM as a referrer of the scanned artifact and records the outcome on
    the scan; returns the log position reached."""
    ctx = RequestContext(f"scanner:{scan.scanner_name}", scan.report_id)
    try:
        sbom_digest = push_sbom_referrer(services, scan.repository, scan.digest, report_digest, ctx)
        reason = ""
    except NoSbom:
        sbom_digest, reason = None, "the SBOM report holds no sbom document"
    except RegistryError as refused:
        sbom_digest, reason = None, f"the SBOM could not be pushed as a referrer: {refused.message}"
    except (ijson.JSONError, OSError) as error:  # the stored report unreadable: the scan itself stands
        log.exception("the SBOM of %s@%s could not be read", scan.repository, scan.digest)
        sbom_digest, reason = None, f"the SBOM could not be read from the report: {error}"
    if sbom_digest is not None:
        _delete_previous(services, scan.repository, scan.digest, sbom_digest, ctx)
    try:
        return services.scan_requests.record_sbom_referrer(scan.id, scan.report_id, sbom_digest, reason, ctx)
    except ConflictError:
        return None  # a new scan of it started meanwhile: it will attach its own


def push_sbom_referrer(services, repository: str, subject_digest: str, report_digest: str,
                       ctx: RequestContext) -> str:
    """The referrer's digest, once its layer, config and manifest are pushed."""
    subject = services.catalog.manifest_by_digest(repository, subject_digest)
    if subject is None:
        raise RegistryError("the scanned artifact is no longer in the repository")
    layer_digest, layer_size = _push_blob(services, repository, sbom_document(services.blobs, report_digest), ctx)
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    config = orjson.dumps({"created": created, "architecture": "", "os": "",
                           "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
                           "history": [{"created": created, "created_by": "portlog", "author": "portlog"}]})
    config_digest, config_size = _push_blob(services, repository, iter([config]), ctx)
    manifest = orjson.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": HARBOR_SBOM,
        "config": {"mediaType": HARBOR_SBOM, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer_size}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {"created": created, "created-by": "Portlog", "org.opencontainers.artifact.created": created,
                        "org.opencontainers.artifact.description": "CycloneDX JSON SBOM"},
    })
    parsed, position = services.artifacts.push_manifest(repository, _digest_of(manifest), manifest, OCI_MANIFEST, ctx)
    services.projections.wait_for(position)
    return parsed.digest


def _push_blob(services, repository: str, chunks: Iterator[bytes], ctx: RequestContext) -> tuple[str, int]:
    upload = services.uploads.start_upload(repository)
    writer = services.blobs.upload_writer(upload.upload_id)
    digest, size = hashlib.sha256(), 0
    try:
        for chunk in chunks:
            writer.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        writer.commit()
    except BaseException:
        writer.abort()
        services.blobs.cancel_upload(upload.upload_id)
        raise
    content = f"sha256:{digest.hexdigest()}"
    services.uploads.complete_upload(repository, services.uploads.get_upload(repository, upload.upload_id),
                                     content, ctx)
    return content, size


def _digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _delete_previous(services, repository: str, subject: str, kept: str, ctx: RequestContext) -> None:
    services.projections.catch_up()
    for row in services.catalog.referrers(repository, subject, HARBOR_SBOM):
        if row.digest != kept:
            try:
                services.projections.wait_for(services.artifacts.delete_manifest(repository, row.digest, ctx))
            except RegistryError as error:  # e.g. something refers to it: it stays, the new one is there
                log.warning("the previous SBOM %s of %s@%s stays: %s", row.digest, repository, subject, error.message)


def sbom_document(blobs, report_digest: str) -> Iterator[bytes]:
    """The report's top-level `sbom` value as JSON bytes, re-serialised from the parser's events
    as the stored report streams (never held whole)."""
    with blobs.open(report_digest) as stream:
        pending = bytearray()
        for token in _value_tokens(ijson.parse(stream), "sbom"):
            pending += token
            if len(pending) >= CHUNK:
                yield bytes(pending)
                pending.clear()
        if not pending:
            raise NoSbom()
        yield bytes(pending)


def _value_tokens(events, wanted: str) -> Iterator[bytes]:
    """JSON tokens of the container at prefix `wanted` directly under the top-level object."""
    open_containers: list[bool] = []  # per open container: whether a member was written already
    after_key = False
    for prefix, event, value in events:
        if not open_containers and not (prefix == wanted and event in ("start_map", "start_array")):
            continue
        if event in ("end_map", "end_array"):
            open_containers.pop()
            yield b"}" if event == "end_map" else b"]"
            if not open_containers:
                return
            continue
        if not after_key and open_containers:
            if open_containers[-1]:
                yield b","
            open_containers[-1] = True
        after_key = event == "map_key"
        if event == "map_key":
            yield orjson.dumps(value) + b":"
        elif event in ("start_map", "start_array"):
            open_containers.append(False)
            yield b"{" if event == "start_map" else b"["
        elif event == "number":
            yield str(value).encode()
        else:  # string, boolean, null
            yield orjson.dumps(value)
