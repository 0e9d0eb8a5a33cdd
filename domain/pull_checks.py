"""The checks a pull must pass, listed in one place (`PullChecks.in_order`).

A pull is a registry client's GET or HEAD of /v2/<name>/manifests/<reference>
(api/v2/manifests.py). Blob reads are not checked, as in Harbor: a client learns which blobs
to fetch from the manifest. Each check is a named object with one step, `check(pull)`, that
refuses by raising PolicyViolationError (HTTP 412 and a message saying why, Harbor's words); a
new policy is one more class and one more entry in the list. Only the read models are read
(the settings through `PullChecks.settings_of`, one lookup per pull; the rest only in a project
whose settings restrict pulls). In Harbor's order:

* SignedOnly: `enable_content_trust_cosign` requires a cosign signature, `enable_content_trust` a
  notation one (Harbor 2.9's meaning of that key), among the artifact's referrers in its
  repository (or, for cosign, its tag `sha256-<hex>.sig`, cosign's tag scheme). Beyond Harbor,
  a manifest listed by a signed index of the repository counts as signed: the index's signature
  covers the digests it lists, and `cosign sign` signs only the index unless told `--recursive`.
* VulnerabilityPolicy: `prevent_vul` refuses an image with a vulnerability of the project's
  `severity` or graver that the effective CVE allowlist does not exempt, and, like Harbor, an
  image not scanned or whose last scan did not succeed.

Exempt from every check, as in Harbor (its `SkipPolicyChecking`); system administrators are not:

* A scanner's pull. The scan jobs give a scanner a registry token (api/tokens.py) whose access
  entry for the repository holds the action `scanner-pull` (SCANNER_PULL, the name of Harbor's
  permission for its scanner robots) beside `pull`: `Scope("repository", name, ("pull",
  SCANNER_PULL))`. The token service never grants that action to a client (it grants pull, push
  and delete only), so such a token comes from Portlog itself; the authorizer marks the request
  (api/auth.py `scanner_pull`) and the handler sets `Pull.scanner`.
* A signing tool (cosign or notation in the User-Agent) of a principal who may push to the
  repository: it reads the manifest to sign it.
* A signature itself: a cosign or notation signature artifact, or a cosign tag-scheme signature
  (layers all cosign simple-signing payloads), provided it holds no filesystem layer.

The scan results come through a port (`ScanResults`: the scans read model, projections/scans.py,
connected in config/bootstrap.py; `NeverScanned` where none is given).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

from domain.cve_allowlist import CveAllowlist
from domain.errors import PolicyViolationError
from domain.manifests import IMAGE_CONFIG_TYPES, IMAGE_TYPES, INDEX_TYPES
from domain.permissions import project_of
from domain.scanning_settings import DEFAULT, ScanningSettings
from domain.severity import SEVERITIES, severity_at_least

SCANNER_PULL = "scanner-pull"  # the token action of a scanner's pulls (Harbor's permission name)
COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
NOTATION_SIGNATURE = "application/vnd.cncf.notary.signature"
COSIGN_SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_TYPES = {COSIGN_SIGNATURE: "cosign", NOTATION_SIGNATURE: "notation"}
# Layers holding a filesystem (tar archives, compressed or not): what a scanner inventories.
FILESYSTEM_LAYER_PREFIXES = ("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs.")
SCAN_SUCCEEDED = "Success"
MAX_LISTED_IDS = 50  # vulnerability ids named in a refusal's detail


class ScanOverview(Protocol):
    """What the pull checks read of an artifact's last vulnerability scan (projections/scans.py)."""

    status: str  # Harbor's: Pending, Running, Success, Error, Stopped
    severity: str  # the highest found, a Harbor severity
    summary: Mapping[str, int]  # severity -> number of findings
    cve_ids: tuple[str, ...]  # the id of every finding, as allowlists name them


class ScanResults(Protocol):
    def overview(self, repository: str, digest: str, scan_type: str = "vulnerability") -> ScanOverview | None:
        """The artifact's last scan of that type; None if it was never scanned."""


class NeverScanned:
    """Scan results before the scans read model is connected: no artifact was ever scanned."""

    def overview(self, repository: str, digest: str, scan_type: str = "vulnerability") -> None:
        return None


class Catalog(Protocol):
    """The catalog's lookups the signature check needs (projections/catalog.py CatalogView)."""

    def referrers(self, name: str, subject: str, artifact_type: str | None) -> list: ...

    def manifest_by_tag(self, name: str, tag: str): ...

    def parents(self, name: str, digest: str) -> list[str]: ...


@dataclass
class Pull:
    """A manifest pull, as the checks see it."""

    repository: str
    reference: str  # the tag or digest asked for
    digest: str
    media_type: str
    artifact_type: str | None  # the manifest's artifactType or config media type (signatures have theirs)
    document: Callable[[], dict] = dict  # the manifest's JSON, read only when a check needs it
    scanner: bool = False  # a scanner's pull (a token with SCANNER_PULL)
    signing_tool: Callable[[], bool] = lambda: False  # a signing tool of a principal who may push here
    settings: ScanningSettings = field(default=DEFAULT)  # the project's (set by PullChecks.check)

    @property
    def project(self) -> str:
        return project_of(self.repository)

    def layer_types(self) -> list[str]:
        layers = self.document().get("layers") if self.media_type in IMAGE_TYPES else None
        return [str(layer.get("mediaType", "")) for layer in layers or [] if isinstance(layer, dict)]

    def has_filesystem(self) -> bool:
        """An image with a filesystem layer: what a scanner inventories, and a runtime runs
        (whatever `artifactType` it claims). Indexes are not (each child is checked when it is
        pulled), nor are charts, SBOMs, signatures, attestations."""
        config = self.document().get("config") if self.media_type in IMAGE_TYPES else None
        return isinstance(config, dict) and config.get("mediaType") in IMAGE_CONFIG_TYPES and \
            any(kind.startswith(FILESYSTEM_LAYER_PREFIXES) for kind in self.layer_types())

    def is_signature(self) -> bool:
        if self.media_type in INDEX_TYPES or self.has_filesystem():
            return False
        layers = self.layer_types()
        return self.artifact_type in SIGNATURE_TYPES or (bool(layers) and all(
            kind == COSIGN_SIMPLE_SIGNING for kind in layers))


class PullCheck:
    name = ""

    def check(self, pull: Pull) -> None:
        pass


class SignedOnly(PullCheck):
    """The project's signature requirements: a cosign signature, a notation one, or both."""

    name = "signed only"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def check(self, pull: Pull) -> None:
        required = [kind for kind, on in (("cosign", pull.settings.enable_content_trust_cosign),
                                          ("notation", pull.settings.enable_content_trust)) if on]
        if not required:
            return
        found = self.signatures(pull.repository, pull.digest)
        if not found.issuperset(required):
            found |= self.inherited(pull.repository, pull.digest)
        missing = next((kind for kind in required if kind not in found), None)
        if missing is not None:
            setting = "enable_content_trust_cosign" if missing == "cosign" else "enable_content_trust"
            raise PolicyViolationError(f"The image is not signed by {missing}.", {
                "digest": pull.digest, "required_signature": missing,
                "how": f"sign it with {missing}, or ask a project administrator to turn off {setting}"})

    def signatures(self, repository: str, digest: str) -> set[str]:
        """The kinds of signatures of the manifest `digest` in the repository."""
        kinds = {SIGNATURE_TYPES[row.artifact_type] for row in self.catalog.referrers(repository, digest, None)
                 if row.artifact_type in SIGNATURE_TYPES}
        if "cosign" not in kinds and self.catalog.manifest_by_tag(repository, cosign_signature_tag(digest)):
            kinds.add("cosign")
        return kinds

    def inherited(self, repository: str, digest: str) -> set[str]:
        """The signatures of the indexes of the repository that list the manifest."""
        return {kind for parent in self.catalog.parents(repository, digest)
                for kind in self.signatures(repository, parent)}


class VulnerabilityPolicy(PullCheck):
    """Harbor's "Prevent vulnerable images from running" (`prevent_vul`, `severity`)."""

    name = "vulnerability policy"

    def __init__(self, scans: ScanResults, allowlist_of: Callable[[str], CveAllowlist],
                 clock: Callable[[], float] = time.time) -> None:
        self.scans = scans
        self.allowlist_of = allowlist_of  # the project's effective allowlist
        self.clock = clock

    def check(self, pull: Pull) -> None:
        settings = pull.settings
        if not settings.prevent_vul or not pull.has_filesystem():
            return
        policy = (f"'Prevent images with vulnerability severity of \"{settings.severity}\" or higher "
                  "from running.'")
        overview = self.scans.overview(pull.repository, pull.digest)
        if overview is None:
            raise PolicyViolationError(
                f"current image without vulnerability scanning cannot be pulled due to configured policy in "
                f"{policy} To continue with pull, please contact your project administrator for help.",
                {"digest": pull.digest, "scan_status": None, "how": "scan the artifact"})
        if overview.status != SCAN_SUCCEEDED:
            raise PolicyViolationError(
                f"current image with \"{overview.status}\" status of vulnerability scanning cannot be pulled "
                f"due to configured policy in {policy} To continue with pull, please contact your project "
                "administrator for help.", {"digest": pull.digest, "scan_status": overview.status,
                                            "how": "scan the artifact again"})
        count, highest, ids = remaining(overview, self.allowlist_of(pull.project).exempted(self.clock()))
        if count and refuses(highest, settings.severity):
            thing = "vulnerabilities" if count > 1 else "vulnerability"
            raise PolicyViolationError(
                f"current image with {count} {thing} cannot be pulled due to configured policy in {policy} "
                "To continue with pull, please contact your project administrator to exempt matched "
                "vulnerabilities through configuring the CVE allowlist.",
                {"digest": pull.digest, "severity": highest, "vulnerabilities": count,
                 "cve_ids": list(ids[:MAX_LISTED_IDS]),
                 "how": "add the ids to the project's CVE allowlist (or the system's, when the project reuses it)"})


def remaining(overview: ScanOverview, exempted: frozenset[str]) -> tuple[int, str | None, tuple[str, ...]]:
    """(how many findings the allowlist leaves, the highest severity among them, their ids).

    A finding is exempted by its id. The overview counts findings per severity; when the
    allowlist exempts some ids and the overview also maps each id to its severity
    (`cve_severities`), the highest severity is that of the ids left; otherwise it is the
    report's highest, which can only overstate it."""
    left = tuple(dict.fromkeys(cve for cve in overview.cve_ids if cve not in exempted))
    if len(left) == len(set(overview.cve_ids)):
        total = sum(overview.summary.values())
        return total, (overview.severity if total else None), left
    if not left:
        return 0, None, ()
    severities: Mapping[str, str] | None = getattr(overview, "cve_severities", None)
    if severities is None:
        return len(left), overview.severity, left
    graver_first = sorted((severities.get(cve, "Unknown") for cve in left), key=_rank, reverse=True)
    return len(left), graver_first[0], left


def refuses(highest: str | None, threshold: str) -> bool:
    """Whether a finding of severity `highest` meets the project's `severity`. Harbor ranks None
    and Unknown alike: a threshold of None takes every finding."""
    if highest is None:
        return False
    if highest not in SEVERITIES:  # one the scanner invented: the gravest, as in Harbor
        return True
    return threshold == "None" or severity_at_least(highest, threshold)


def _rank(severity: str) -> int:
    """A severity's place in SEVERITIES; one the scanner invented ranks above Critical, as in Harbor."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def cosign_signature_tag(digest: str) -> str:
    """cosign's tag for the signatures of `digest`: sha256:<hex> -> sha256-<hex>.sig."""
    return digest.replace(":", "-", 1) + ".sig"


class PullChecks:
    """The list of checks, and the step the pull path runs over it."""

    def __init__(self, settings_of: Callable[[str], ScanningSettings], catalog: Catalog,
                 scans: ScanResults | None = None,
                 allowlist_of: Callable[[str], CveAllowlist] = lambda project: CveAllowlist(),
                 clock: Callable[[], float] = time.time) -> None:
        """The read models' lookups come from the composition root (config/bootstrap.py)."""
        self.settings_of = settings_of
        # The checks a pull must pass, in this order.
        self.in_order: tuple[PullCheck, ...] = (
            SignedOnly(catalog),
            VulnerabilityPolicy(scans or NeverScanned(), allowlist_of, clock),
        )

    def check(self, pull: Pull) -> None:
        pull.settings = self.settings_of(pull.project)
        if not pull.settings.restricts_pulls or exempt(pull):
            return
        for check in self.in_order:
            check.check(pull)


def exempt(pull: Pull) -> bool:
    """Harbor's exemptions from every pull policy: scanners, signing tools, signatures."""
    return pull.scanner or pull.is_signature() or pull.signing_tool()
