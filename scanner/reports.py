"""The two reports a scan produces, in the shapes the Harbor Scanner Adapter spec gives:

* the vulnerability report (`application/vnd.security.vulnerability.report; version=1.1`):
  generated_at, artifact, scanner, the highest severity, and one item per finding with its
  layer, preferred CVSS, CWE ids and vendor attributes (the CVSS vector and score, as Harbor's
  Trivy adapter names them);
* the SBOM report (`application/vnd.security.sbom.report+json; version=1.0`): the same header,
  and a CycloneDX 1.5 JSON document (cyclonedx-python-lib) as `sbom`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import orjson
from packageurl import PackageURL

from scanner.inventory import Inventory, Package
from scanner.layers import Layer
from scanner.vulndb import SEVERITIES, Finding

if TYPE_CHECKING:
    from cyclonedx.model.component import Component

VULNERABILITY_REPORT = "application/vnd.security.vulnerability.report; version=1.1"
SBOM_REPORT = "application/vnd.security.sbom.report+json; version=1.0"
CYCLONEDX_JSON = "application/vnd.cyclonedx+json"
PROPERTY_PREFIX = "portlog:"


@dataclass(frozen=True)
class ScannerInfo:
    name: str
    vendor: str
    version: str

    def as_json(self) -> dict:
        return {"name": self.name, "vendor": self.vendor, "version": self.version}


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, as Harbor's adapters write it."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def highest_severity(findings: list[Finding]) -> str:
    """The report's severity: its worst finding's; Unknown without findings (as Harbor's Trivy
    adapter reports a clean image)."""
    return max((f.severity for f in findings), key=SEVERITIES.index, default="Unknown")


def vulnerability_report(artifact: dict, scanner: ScannerInfo, findings: list[Finding], layers: list[Layer],
                         generated_at: datetime, packages: dict[str, list[str]] | None = None) -> dict:
    """`packages`: ecosystem → the package keys looked up (scanner/vulndb.py advisory_keys), as the
    report's `vendor_attributes.packages`: Portlog rescans an image when new data names one."""
    diff_ids = {layer.digest: layer.diff_id for layer in layers}
    report = {
        "generated_at": timestamp(generated_at),
        "artifact": artifact,
        "scanner": scanner.as_json(),
        "severity": highest_severity(findings),
        "vulnerabilities": [_item(finding, diff_ids) for finding in findings],
    }
    if packages is not None:
        report["vendor_attributes"] = {"packages": packages}
    return report


def _item(finding: Finding, diff_ids: dict[str, str]) -> dict:
    package = finding.package
    item = {
        "id": finding.id,
        "package": package.name,
        "version": package.version,
        "fix_version": finding.fix_version,
        "severity": finding.severity,
        "description": finding.description,
        "links": list(finding.links),
        "layer": {"digest": package.layer, "diff_id": diff_ids.get(package.layer, "")},
        "cwe_ids": list(finding.cwe_ids),
        "vendor_attributes": {"osv_ids": list(finding.osv_ids), "purl": package.purl, "path": package.path,
                              "package_type": package.kind},
    }
    cvss = finding.cvss
    if cvss is not None:
        generation = "V2" if cvss.version.startswith("2") else "V3" if cvss.version.startswith("3") else "V40"
        item["vendor_attributes"]["CVSS"] = {"osv": {f"{generation}Vector": cvss.vector,
                                                     f"{generation}Score": cvss.score}}
        if generation == "V3":
            item["preferred_cvss"] = {"score_v3": cvss.score, "vector_v3": cvss.vector}
        elif generation == "V2":
            item["preferred_cvss"] = {"score_v2": cvss.score, "vector_v2": cvss.vector}
    return item


def sbom_report(artifact: dict, scanner: ScannerInfo, inventory: Inventory, generated_at: datetime,
                registry_host: str = "", serial: UUID | None = None) -> dict:
    return {
        "generated_at": timestamp(generated_at),
        "artifact": artifact,
        "scanner": scanner.as_json(),
        "vendor_attributes": {"spec-version": "1.5", "created-by": scanner.name},
        "media_type": CYCLONEDX_JSON,
        "sbom": cyclonedx_document(artifact, scanner, inventory, generated_at, registry_host, serial),
    }


def cyclonedx_document(artifact: dict, scanner: ScannerInfo, inventory: Inventory, generated_at: datetime,
                       registry_host: str = "", serial: UUID | None = None) -> dict:
    """The image as the BOM's subject, the distribution and every package as its components."""
    # CycloneDX's model takes ~0.2 s to import: only a process that makes an SBOM pays for it
    # (every server worker and CLI command imports this module).
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output.json import JsonV1Dot5

    image = _image_component(artifact, registry_host)
    components = [_package_component(package, index) for index, package in enumerate(inventory.packages)]
    if inventory.distribution is not None:
        distribution = inventory.distribution
        components.insert(0, Component(type=ComponentType.OPERATING_SYSTEM, name=distribution.id,
                                       version=distribution.version or None, bom_ref="distribution",
                                       description=distribution.pretty_name or None))
    tool = Component(type=ComponentType.APPLICATION, name=scanner.name, version=scanner.version,
                     group=scanner.vendor)
    bom = Bom(serial_number=serial or uuid4(), components=components,
              metadata=BomMetaData(component=image, timestamp=generated_at, tools=ToolRepository(components=[tool])))
    bom.register_dependency(image, components)
    return orjson.loads(JsonV1Dot5(bom).output_as_string())


def _image_component(artifact: dict, registry_host: str) -> Component:
    from cyclonedx.model.component import Component, ComponentType

    repository = str(artifact.get("repository", ""))
    digest = str(artifact.get("digest", ""))
    qualifiers = {"repository_url": f"{registry_host}/{repository}"} if registry_host else {}
    purl = PackageURL("oci", None, repository.rsplit("/", 1)[-1] or "image", digest or None, qualifiers)
    return Component(type=ComponentType.CONTAINER, name=repository or "image", version=digest or None, purl=purl,
                     bom_ref="image")


def _package_component(package: Package, index: int) -> Component:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType

    properties = [Property(name=f"{PROPERTY_PREFIX}layer_digest", value=package.layer),
                  Property(name=f"{PROPERTY_PREFIX}path", value=package.path),
                  Property(name=f"{PROPERTY_PREFIX}package_type", value=package.kind)]
    if package.source_name:
        properties.append(Property(name=f"{PROPERTY_PREFIX}source_name", value=package.source_name))
    if package.source_version and package.source_version != package.version:
        properties.append(Property(name=f"{PROPERTY_PREFIX}source_version", value=package.source_version))
    # The same package may be installed twice (two virtual environments): bom-refs must be unique.
    return Component(type=ComponentType.LIBRARY, name=package.name, version=package.version,
                     purl=PackageURL.from_string(package.purl), bom_ref=f"{package.purl}#{index}",
                     properties=properties)
