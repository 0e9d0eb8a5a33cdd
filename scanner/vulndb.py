"""Vulnerability data in the OSV format (https://ossf.github.io/osv-schema/), and matching
packages against it.

Records come as a JSON file (one record or a list), a directory of JSON files, or a zip of
them (osv.dev's per-ecosystem exports); every size is bounded. Versions are compared by
`univers`, per ecosystem (Debian and Ubuntu: dpkg's rules; Alpine: apk's; PyPI: PEP 440; npm:
semver). An OSV range's events become univers constraints: `introduced` (other than "0") is
">=", `fixed` is "<", `last_affected` is "<="; a finding's fixed version is the `fixed` event
of the interval the installed version falls in.

A finding's severity: the CVSS v3 base score (else v4, then v2) as Harbor's severity; else the
record's own word for it (GitHub's `database_specific.severity`, Debian's urgency, Ubuntu's
priority); else Unknown.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Protocol

import orjson
from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from scanner.inventory import Package, normalize_pypi_name
from scanner.limits import GIB, MIB, format_bytes

# Harbor's severities, lowest first (the order reports and policies compare them in).
SEVERITIES = ("Unknown", "None", "Low", "Medium", "High", "Critical")
SUPPORTED_ECOSYSTEMS = ("Debian", "Ubuntu", "Alpine", "PyPI", "npm")
_VERSION_SCHEMES = {"Debian": "deb", "Ubuntu": "deb", "Alpine": "apk", "PyPI": "pypi", "npm": "npm"}
_SEVERITY_WORDS = {"critical": "Critical", "high": "High", "important": "High", "moderate": "Medium",
                   "medium": "Medium", "low": "Low", "negligible": "Low", "unimportant": "Low"}
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")

RECORD_BYTES = 16 * MIB  # one JSON file of a directory or zip
LIST_FILE_BYTES = 512 * MIB  # a single JSON file (it is parsed whole)
ZIP_FILE_BYTES = 8 * GIB
MAX_RECORDS = 2_000_000


class InvalidVulnerabilityData(Exception):
    """The data cannot be imported; the message says where and why."""


# --- reading OSV records ---

def read_records(path: Path) -> Iterator[tuple[str, dict]]:
    """(where, record) for every record of a JSON file, a directory of them or a zip of them."""
    if path.is_dir():
        yield from _directory_records(path)
    elif path.is_file():
        with open(path, "rb") as file:
            yield from read_file_records(file, path.name)
    else:
        raise InvalidVulnerabilityData(f"{path} is neither a file nor a directory")


def read_file_records(stream: BinaryIO, name: str) -> Iterator[tuple[str, dict]]:
    """The records of one file, a JSON document or a zip, from a stream (spooled to a private
    temporary file first when it cannot seek, as a zip is read from its end)."""
    if not stream.seekable():
        with tempfile.TemporaryFile() as spooled:
            _copy_bounded(stream, spooled, ZIP_FILE_BYTES, name)
            spooled.seek(0)
            yield from read_file_records(spooled, name)
        return
    if zipfile.is_zipfile(stream):
        stream.seek(0)
        yield from _zip_records(stream)
        return
    stream.seek(0)
    data = stream.read(LIST_FILE_BYTES + 1)
    if len(data) > LIST_FILE_BYTES:
        raise InvalidVulnerabilityData(f"{name} is larger than {format_bytes(LIST_FILE_BYTES)}")
    yield from _records_of(name, data)


def _copy_bounded(source: BinaryIO, target: BinaryIO, limit: int, name: str) -> None:
    copied = 0
    while chunk := source.read(MIB):
        copied += len(chunk)
        if copied > limit:
            raise InvalidVulnerabilityData(f"{name} is larger than {format_bytes(limit)}")
        target.write(chunk)


def _directory_records(root: Path) -> Iterator[tuple[str, dict]]:
    count = 0
    for directory, subdirectories, names in os.walk(root):  # symlinked directories are not followed
        subdirectories.sort()
        for name in sorted(names):
            file = Path(directory, name)
            if not name.endswith(".json") or not file.is_file():
                continue
            count += 1
            _check_count(count)
            if file.stat().st_size > RECORD_BYTES:
                raise InvalidVulnerabilityData(f"{file.relative_to(root)} is larger than {format_bytes(RECORD_BYTES)}")
            yield from _records_of(str(file.relative_to(root)), file.read_bytes())


def _zip_records(stream: BinaryIO) -> Iterator[tuple[str, dict]]:
    """Members are read in memory, each bounded whatever its header claims; never extracted."""
    with zipfile.ZipFile(stream) as archive:
        members = [m for m in archive.infolist() if m.filename.endswith(".json") and not m.is_dir()]
        _check_count(len(members))
        for member in members:
            with archive.open(member) as stream:
                data = stream.read(RECORD_BYTES + 1)
            if len(data) > RECORD_BYTES:
                raise InvalidVulnerabilityData(f"{member.filename} is larger than {format_bytes(RECORD_BYTES)}")
            yield from _records_of(member.filename, data)


def _check_count(count: int) -> None:
    if count > MAX_RECORDS:
        raise InvalidVulnerabilityData(f"more than {MAX_RECORDS} files of records")


def _records_of(where: str, data: bytes) -> Iterator[tuple[str, dict]]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InvalidVulnerabilityData(f"{where}: not valid JSON ({error})") from None
    for record in document if isinstance(document, list) else [document]:
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
            raise InvalidVulnerabilityData(f"{where}: not an OSV record (an object with an id)")
        if not isinstance(record.get("affected", []), list):
            raise InvalidVulnerabilityData(f"{where}: {record['id']} has a malformed 'affected' list")
        yield where, record


def affected_packages(record: dict) -> set[tuple[str, str]]:
    """(ecosystem, package) keys the record is about, in the ecosystems matched here."""
    keys = set()
    for affected in _affected_entries(record):
        package = affected.get("package")
        if isinstance(package, dict):
            ecosystem = ecosystem_key(package.get("ecosystem"))
            if ecosystem and isinstance(package.get("name"), str):
                keys.add((ecosystem, package_key(ecosystem, package["name"])))
    return keys


def record_ecosystems(record: dict) -> set[str]:
    """Every ecosystem the record names, as written (for counts), matched here or not."""
    return {a["package"]["ecosystem"] for a in _affected_entries(record)
            if isinstance(a.get("package"), dict) and isinstance(a["package"].get("ecosystem"), str)}


def _affected_entries(record: dict) -> list[dict]:
    return [a for a in record.get("affected") or [] if isinstance(a, dict)]


def ecosystem_key(ecosystem) -> str | None:
    """The ecosystem as packages name it, or None for one not matched here: "Debian:12",
    "Ubuntu:22.04" (":LTS" dropped; Ubuntu Pro's are for Pro subscribers only), "Alpine:v3.19",
    "PyPI", "npm"."""
    if not isinstance(ecosystem, str):
        return None
    family, _, release = ecosystem.partition(":")
    if family not in SUPPORTED_ECOSYSTEMS:
        return None
    if family == "Ubuntu":
        if release.startswith("Pro:"):
            return None
        release = release.removesuffix(":LTS")
    return f"{family}:{release}" if release else family


def package_key(ecosystem: str, name: str) -> str:
    """The name as advisories and packages are matched by (PyPI's PEP 503 normalisation)."""
    return normalize_pypi_name(name) if ecosystem == "PyPI" else name


# --- where records come from when scanning ---

class VulnerabilitySource(Protocol):
    def records_for(self, ecosystem: str, names: Iterable[str]) -> Iterable[dict]:
        """The records about any of the packages `names` (package keys) of `ecosystem`."""
        ...


class OsvIndex:
    """Records in memory, indexed by (ecosystem, package): for tests and small data sets."""

    def __init__(self, records: Iterable[dict] = ()) -> None:
        self._by_package: dict[tuple[str, str], dict[str, dict]] = {}
        for record in records:
            self.add(record)

    def add(self, record: dict) -> None:
        for key in affected_packages(record):
            self._by_package.setdefault(key, {})[record["id"]] = record

    @classmethod
    def from_path(cls, path: Path) -> OsvIndex:
        return cls(record for _, record in read_records(path))

    def records_for(self, ecosystem: str, names: Iterable[str]) -> list[dict]:
        found: dict[str, dict] = {}
        for name in names:
            found.update(self._by_package.get((ecosystem, name), {}))
        return list(found.values())


# --- matching ---

@dataclass(frozen=True)
class Cvss:
    version: str  # "3.1", "4.0", "2.0"
    vector: str
    score: float


@dataclass(frozen=True)
class Finding:
    id: str  # the CVE when the record names one, else the record's id
    package: Package
    fix_version: str  # "" when no fixed version is known
    severity: str
    description: str
    links: tuple[str, ...]
    cwe_ids: tuple[str, ...] = ()
    cvss: Cvss | None = None
    osv_ids: tuple[str, ...] = field(default=())  # the OSV records that reported it


def advisory_keys(packages: Iterable[Package]) -> dict[str, list[str]]:
    """ecosystem → the package keys advisories would name (what `match` looks up), sorted: the
    inventory as the vulnerability data sees it (a new import rescans the images it names)."""
    keys: dict[str, set[str]] = {}
    for package in packages:
        if package.ecosystem and ecosystem_key(package.ecosystem):
            keys.setdefault(package.ecosystem, set()).add(package_key(package.ecosystem, package.advisory_name))
    return {ecosystem: sorted(names) for ecosystem, names in sorted(keys.items())}


def match(packages: Iterable[Package], source: VulnerabilitySource) -> list[Finding]:
    """Every vulnerability of the packages the source knows, one finding per (id, package),
    in a stable order."""
    by_ecosystem: dict[str, list[Package]] = {}
    for package in packages:
        if ecosystem_key(package.ecosystem) and package.ecosystem:
            by_ecosystem.setdefault(package.ecosystem, []).append(package)
    findings: dict[tuple, Finding] = {}
    for ecosystem, group in by_ecosystem.items():
        records = source.records_for(ecosystem, {package_key(ecosystem, p.advisory_name) for p in group})
        for record in records:
            if record.get("withdrawn"):
                continue
            for package in group:
                for finding in _findings(record, package):
                    key = (finding.id, package.name, package.version, package.path)
                    findings[key] = _merged(findings.get(key), finding)
    return sorted(findings.values(), key=lambda f: (f.package.path, f.package.name, f.package.version, f.id))


def _findings(record: dict, package: Package) -> list[Finding]:
    affected, fix_version = _affected(record, package)
    if not affected:
        return []
    severity, cvss = record_severity(record, affected)
    ids = _vulnerability_ids(record)
    description = _text(record.get("details")) or _text(record.get("summary"))
    return [Finding(vulnerability_id, package, fix_version, severity, description, _links(record, vulnerability_id),
                    _cwe_ids(record), cvss, (record["id"],)) for vulnerability_id in ids]


def _affected(record: dict, package: Package) -> tuple[dict | None, str]:
    """The record's `affected` entry the package's version falls in, with the fixed version."""
    ecosystem, name = package.ecosystem, package_key(package.ecosystem, package.advisory_name)
    for affected in _affected_entries(record):
        about = affected.get("package")
        if not isinstance(about, dict) or ecosystem_key(about.get("ecosystem")) != ecosystem or \
                not isinstance(about.get("name"), str) or package_key(ecosystem, about["name"]) != name:
            continue
        hit, fix_version = _in_ranges(ecosystem, package.advisory_version, affected.get("ranges"))
        versions = affected.get("versions")
        if hit or (isinstance(versions, list) and package.advisory_version in versions):
            return affected, fix_version
    return None, ""


def _in_ranges(ecosystem: str, version: str, ranges) -> tuple[bool, str]:
    scheme = _VERSION_SCHEMES[ecosystem.partition(":")[0]]
    installed = _version(scheme, version)
    if installed is None or not isinstance(ranges, list):
        return False, ""
    for osv_range in ranges:
        if not isinstance(osv_range, dict) or osv_range.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        for introduced, end, end_kind in _intervals(scheme, osv_range.get("events")):
            if _contains(scheme, introduced, end, end_kind, installed):
                return True, end if end_kind == "fixed" else ""
    return False, ""


def _intervals(scheme: str, events) -> list[tuple[str, str, str]]:
    """(introduced, end, "fixed" | "last_affected" | "") intervals of a range's events,
    ordered by version as the OSV schema says to evaluate them."""
    if not isinstance(events, list):
        return []
    parsed = []
    for event in events:
        if not isinstance(event, dict) or len(event) != 1:
            continue
        (kind, value), = event.items()
        if kind not in ("introduced", "fixed", "last_affected") or not isinstance(value, str):
            continue
        order = None if value == "0" and kind == "introduced" else _version(scheme, value)
        if value != "0" and order is None:
            return []  # a version this ecosystem cannot read: the range cannot be judged
        parsed.append((order, kind, value))
    parsed.sort(key=functools.cmp_to_key(_event_order))
    intervals, start = [], None
    for _, kind, value in parsed:
        if kind == "introduced":
            if start is None:
                start = value
        elif start is not None:
            intervals.append((start, value, kind))
            start = None
    if start is not None:
        intervals.append((start, "", ""))
    return intervals


def _event_order(left: tuple, right: tuple) -> int:
    """"0" (introduced at the beginning) first; then by version."""
    if left[0] is None or right[0] is None:
        return (left[0] is not None) - (right[0] is not None)
    return (left[0] > right[0]) - (left[0] < right[0])


def _contains(scheme: str, introduced: str, end: str, end_kind: str, installed) -> bool:
    # univers takes ~0.1 s to import: imported by the first match, not by every process.
    from univers.version_constraint import VersionConstraint
    from univers.version_range import RANGE_CLASS_BY_SCHEMES

    constraints = []
    if introduced != "0":
        constraints.append(VersionConstraint(">=", _version(scheme, introduced)))
    if end_kind:
        constraints.append(VersionConstraint("<" if end_kind == "fixed" else "<=", _version(scheme, end)))
    if not constraints:
        return True  # affected from the beginning, no fix
    try:
        return installed in RANGE_CLASS_BY_SCHEMES[scheme](constraints=constraints)
    except (ValueError, TypeError):
        return False


@functools.lru_cache(maxsize=65536)
def _version(scheme: str, text: str):
    from univers.version_range import RANGE_CLASS_BY_SCHEMES

    try:
        return RANGE_CLASS_BY_SCHEMES[scheme].version_class(text)
    except Exception:  # univers raises whatever its parsers raise on a malformed version
        return None


def _vulnerability_ids(record: dict) -> list[str]:
    """The CVEs the record is about (itself, its aliases, its upstream), else its own id."""
    if _CVE.match(record["id"]):
        return [record["id"]]
    cves = [alias for field_name in ("aliases", "upstream") for alias in record.get(field_name) or []
            if isinstance(alias, str) and _CVE.match(alias)]
    return list(dict.fromkeys(cves)) or [record["id"]]


def _merged(existing: Finding | None, new: Finding) -> Finding:
    """One finding from two records about the same vulnerability (GitHub's and PyPA's)."""
    if existing is None:
        return new
    best = new if _severity_rank(new.severity) > _severity_rank(existing.severity) else existing
    return replace(best, fix_version=best.fix_version or existing.fix_version or new.fix_version,
                   links=tuple(dict.fromkeys(existing.links + new.links)),
                   cwe_ids=tuple(dict.fromkeys(existing.cwe_ids + new.cwe_ids)),
                   cvss=best.cvss or existing.cvss or new.cvss,
                   description=best.description or existing.description or new.description,
                   osv_ids=tuple(dict.fromkeys(existing.osv_ids + new.osv_ids)))


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def _links(record: dict, vulnerability_id: str) -> tuple[str, ...]:
    links = [ref["url"] for ref in record.get("references") or []
             if isinstance(ref, dict) and isinstance(ref.get("url"), str) and ref["url"].startswith(("https://",
                                                                                                     "http://"))]
    return tuple(dict.fromkeys([f"https://osv.dev/vulnerability/{record['id']}", *links]))


def _cwe_ids(record: dict) -> tuple[str, ...]:
    specific = record.get("database_specific")
    found = specific.get("cwe_ids") if isinstance(specific, dict) else None
    return tuple(c for c in found if isinstance(c, str)) if isinstance(found, list) else ()


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


# --- severity ---

def severity_of_score(score: float) -> str:
    """CVSS base score → Harbor severity (the CVSS v3 rating scale)."""
    if score <= 0:
        return "None"
    if score < 4:
        return "Low"
    if score < 7:
        return "Medium"
    if score < 9:
        return "High"
    return "Critical"


def record_severity(record: dict, affected: dict) -> tuple[str, Cvss | None]:
    entries = [s for s in (record.get("severity") or []) + (affected.get("severity") or []) if isinstance(s, dict)]
    for kind in ("CVSS_V3", "CVSS_V4", "CVSS_V2"):
        for entry in entries:
            if entry.get("type") == kind and isinstance(entry.get("score"), str):
                cvss = _cvss(kind, entry["score"])
                if cvss is not None:
                    return severity_of_score(cvss.score), cvss
    words = [entry.get("score") for entry in entries if entry.get("type") == "Ubuntu"]
    for specific in (record.get("database_specific"), affected.get("database_specific"),
                     affected.get("ecosystem_specific")):
        if isinstance(specific, dict):
            words += [specific.get("severity"), specific.get("urgency")]
    for word in words:
        if isinstance(word, str) and word.strip().lower() in _SEVERITY_WORDS:
            return _SEVERITY_WORDS[word.strip().lower()], None
    return "Unknown", None


def _cvss(kind: str, vector: str) -> Cvss | None:
    try:
        if kind == "CVSS_V3":
            return Cvss(vector.split("/")[0].removeprefix("CVSS:"), vector, float(CVSS3(vector).base_score))
        if kind == "CVSS_V4":
            return Cvss("4.0", vector, float(CVSS4(vector).base_score))
        return Cvss("2.0", vector, float(CVSS2(vector).base_score))
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
