"""One scan: pull the image, read its layers, list its packages, match them, write the reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import httpx
import orjson

from scanner.inventory import inventory, wanted
from scanner.layers import read_image_files
from scanner.limits import Deadline, ScanLimits
from scanner.registry_pull import RegistryPull
from scanner.reports import ScannerInfo, sbom_report, vulnerability_report
from scanner.vulndb import VulnerabilitySource, advisory_keys, match

VULNERABILITY, SBOM = "vulnerability", "sbom"


@dataclass(frozen=True)
class ScanRequest:
    registry_url: str
    authorization: str  # sent to the registry as is; never stored
    artifact: dict  # repository, digest, tag, mime_type: as the client sent them
    capabilities: tuple[str, ...]  # "vulnerability", "sbom"

    @property
    def repository(self) -> str:
        return self.artifact["repository"]

    @property
    def digest(self) -> str:
        return self.artifact["digest"]


@dataclass(frozen=True)
class Reports:
    vulnerability: str | None  # JSON text
    sbom: str | None


def scan(request: ScanRequest, client: httpx.Client, vulnerabilities: VulnerabilitySource, scanner: ScannerInfo,
         limits: ScanLimits, deadline: Deadline) -> Reports:
    """Raises scanner.limits.ScanFailed with the reason when the scan cannot be done."""
    registry = RegistryPull(client, request.registry_url, request.authorization, request.repository, limits, deadline)
    _, layers = registry.image(request.digest)
    files = read_image_files(layers, registry.open_blob, wanted, limits, deadline)
    packages = inventory(files)
    generated_at = datetime.now(timezone.utc)
    vulnerability = sbom = None
    if VULNERABILITY in request.capabilities:
        findings = match(packages.packages, vulnerabilities)
        vulnerability = _json(vulnerability_report(request.artifact, scanner, findings, layers, generated_at,
                                                   advisory_keys(packages.packages)))
    if SBOM in request.capabilities:
        host = urlsplit(request.registry_url).netloc
        sbom = _json(sbom_report(request.artifact, scanner, packages, generated_at, host))
    return Reports(vulnerability, sbom)


def _json(document: dict) -> str:
    return orjson.dumps(document).decode()
