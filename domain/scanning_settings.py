"""A project's scanning settings, Harbor's project metadata keys of the same names, with
Harbor's defaults; recorded as `Project.ScanningSettingsChanged` (domain/project.py).

* `auto_scan`: scan every artifact pushed (the scan jobs read it);
* `prevent_vul` and `severity`: refuse pulls of artifacts with a vulnerability of `severity` or
  graver that the allowlist does not exempt, or not scanned (domain/pull_checks.py);
* `reuse_sys_cve_allowlist`: the system's CVE allowlist instead of the project's own;
* `enable_content_trust_cosign`: refuse pulls of artifacts without a cosign signature;
* `enable_content_trust`: refuse pulls of artifacts without a notation signature (Harbor 2.9 gave
  the old Notary v1 setting this meaning; Notary v1 itself is not supported).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from domain.errors import InvalidInputError
from domain.severity import parse_severity


@dataclass(frozen=True)
class ScanningSettings:
    auto_scan: bool = False
    prevent_vul: bool = False
    severity: str = "Low"
    reuse_sys_cve_allowlist: bool = True
    enable_content_trust_cosign: bool = False
    enable_content_trust: bool = False

    def checked(self) -> ScanningSettings:
        for flag in FLAGS:
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInputError(f"{flag} must be true or false", {flag: getattr(self, flag)})
        return ScanningSettings(**{**asdict(self), "severity": parse_severity(self.severity)})

    @property
    def restricts_pulls(self) -> bool:
        """Whether any pull check has something to check in this project."""
        return self.prevent_vul or self.enable_content_trust_cosign or self.enable_content_trust

    def fields(self) -> dict:
        return asdict(self)

    @classmethod
    def from_fields(cls, values: dict | None) -> ScanningSettings:
        return cls() if values is None else cls(**{name: values[name] for name in NAMES if name in values})


NAMES = tuple(f.name for f in fields(ScanningSettings))
FLAGS = tuple(name for name in NAMES if name != "severity")
DEFAULT = ScanningSettings()
