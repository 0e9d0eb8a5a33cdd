"""The packages installed in an image, from the package databases its layers left behind.

Debian and Ubuntu (`var/lib/dpkg/status`, and `var/lib/dpkg/status.d/*` in distroless images),
Alpine (`lib/apk/db/installed`), Python distributions (`*.dist-info/METADATA`, `*.egg-info`)
and npm packages (`node_modules/[@scope/]name/package.json`). The distribution (`os-release`)
names the ecosystem in OSV's terms: "Debian:12", "Alpine:v3.19", "Ubuntu:22.04".

Debian advisories are keyed by source package and Alpine's by origin package, so an OS
package carries both its own name and version and those its advisories use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

import orjson
from packageurl import PackageURL

from scanner.layers import FileVersion, ImageFiles

DPKG_STATUS, DPKG_STATUS_DIR, APK_INSTALLED = "var/lib/dpkg/status", "var/lib/dpkg/status.d/", "lib/apk/db/installed"
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")  # the first is often a symlink to the second
_NPM_MANIFEST = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/@][^/]*/package\.json$")
_BINARY_REBUILD = re.compile(r"\+b\d+$")
_FIELD = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]?(.*)$")


@dataclass(frozen=True)
class Distribution:
    id: str  # os-release ID: debian, ubuntu, alpine, …
    version: str  # os-release VERSION_ID
    pretty_name: str

    @property
    def ecosystem(self) -> str:
        """OSV's ecosystem for the distribution's packages; "" when OSV has none."""
        if self.id == "debian" and self.version:
            return f"Debian:{self.version.split('.')[0]}"
        if self.id == "ubuntu" and self.version:
            return f"Ubuntu:{self.version}"
        if self.id == "alpine":
            release = re.match(r"(\d+)\.(\d+)", self.version)
            return f"Alpine:v{release[1]}.{release[2]}" if release else ""
        return ""


@dataclass(frozen=True)
class Package:
    ecosystem: str  # OSV's: "Debian:12", "PyPI", "npm"; "" for an unknown distribution
    name: str  # as installed (a binary package)
    version: str
    purl: str
    layer: str  # digest of the layer that installed this version
    path: str  # the file it was found in
    kind: str  # "os", "python" or "npm"
    source_name: str = ""  # what advisories name it by, when not `name` (a Debian source package)
    source_version: str = ""

    @property
    def advisory_name(self) -> str:
        return self.source_name or self.name

    @property
    def advisory_version(self) -> str:
        return self.source_version or self.version


@dataclass(frozen=True)
class Inventory:
    distribution: Distribution | None
    packages: list[Package]


def wanted(path: str) -> bool:
    """Whether the inventory reads the file at `path` (the layer reader keeps only these)."""
    if path in (DPKG_STATUS, APK_INSTALLED) or path in OS_RELEASE:
        return True
    if path.startswith(DPKG_STATUS_DIR):
        return "/" not in path[len(DPKG_STATUS_DIR):] and not path.endswith(".md5sums")
    return path.endswith((".dist-info/METADATA", ".egg-info/PKG-INFO", ".egg-info")) or \
        bool(_NPM_MANIFEST.search(path))


def inventory(files: ImageFiles) -> Inventory:
    distribution = _distribution(files)
    packages = [*_dpkg_packages(files, distribution), *_apk_packages(files, distribution)]
    for path in files.paths():
        if path.endswith((".dist-info/METADATA", ".egg-info/PKG-INFO", ".egg-info")):
            packages += _python_package(path, files.read(path))
        elif _NPM_MANIFEST.search(path):
            packages += _npm_package(path, files.read(path))
    return Inventory(distribution, packages)


# --- the distribution ---

def _distribution(files: ImageFiles) -> Distribution | None:
    for path in OS_RELEASE:
        found = files.read(path)
        if found is not None:
            fields = parse_os_release(found.data)
            if fields.get("ID"):
                return Distribution(fields["ID"].lower(), fields.get("VERSION_ID", ""), fields.get("PRETTY_NAME", ""))
    return None


def parse_os_release(data: bytes) -> dict[str, str]:
    """KEY=value lines, values optionally quoted (os-release(5))."""
    fields = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            fields[key] = value
    return fields


# --- Debian and Ubuntu ---

def _dpkg_packages(files: ImageFiles, distribution: Distribution | None) -> list[Package]:
    namespace = distribution.id if distribution and distribution.id in ("debian", "ubuntu") else "debian"
    distro = f"{distribution.id}-{distribution.version}" if distribution and distribution.version else ""
    ecosystem = distribution.ecosystem if distribution and distribution.id in ("debian", "ubuntu") else ""
    packages = []
    databases = [DPKG_STATUS] + [p for p in files.paths() if p.startswith(DPKG_STATUS_DIR) and wanted(p)]
    for path in databases:
        history = files.history(path)
        if not history:
            continue
        installed_by = _installing_layers(history, _dpkg_entries)
        for fields in _dpkg_entries(history[-1].data):
            name, version = fields["package"], fields["version"]
            source_name, source_version = _dpkg_source(fields, version)
            qualifiers = {"arch": fields.get("architecture", ""), "distro": distro}
            if source_name != name:
                qualifiers["upstream"] = source_name
            purl = PackageURL("deb", namespace, name, version, {k: v for k, v in qualifiers.items() if v})
            packages.append(Package(ecosystem, name, version, purl.to_string(), installed_by[(name, version)],
                                    path, "os", source_name, source_version))
    return packages


def _dpkg_entries(data: bytes) -> Iterator[dict[str, str]]:
    """The installed packages of a dpkg status file: each paragraph's fields, lower-cased names."""
    for fields in _paragraphs(data):
        status = fields.get("status", "install ok installed").split()
        if fields.get("package") and fields.get("version") and status[-1:] == ["installed"]:
            yield fields


def _dpkg_source(fields: dict[str, str], version: str) -> tuple[str, str]:
    """`Source: glibc` or `Source: glibc (2.36-9+deb12u4)`; without a version, the binary's own
    less a binary-only rebuild's `+bN` (as dpkg-query's ${source:Version} gives it)."""
    name, _, rest = fields.get("source", "").strip().partition(" ")
    source_version = rest.strip().strip("()").strip()
    return name or fields["package"], source_version or _BINARY_REBUILD.sub("", version)


def _paragraphs(data: bytes) -> Iterator[dict[str, str]]:
    """RFC 822-style paragraphs separated by blank lines; continuation lines are dropped (no
    field the inventory reads has any)."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields = {}
        elif line[0] not in " \t":
            match = _FIELD.match(line)
            if match:
                fields[match[1].lower()] = match[2].strip()
    if fields:
        yield fields


# --- Alpine ---

def _apk_packages(files: ImageFiles, distribution: Distribution | None) -> list[Package]:
    history = files.history(APK_INSTALLED)
    if not history:
        return []
    ecosystem = distribution.ecosystem if distribution and distribution.id == "alpine" else ""
    installed_by = _installing_layers(history, _apk_entries)
    packages = []
    for fields in _apk_entries(history[-1].data):
        name, version = fields["P"], fields["V"]
        qualifiers = {"arch": fields.get("A", ""), "distro": distribution.version if distribution else ""}
        purl = PackageURL("apk", "alpine", name, version, {k: v for k, v in qualifiers.items() if v})
        origin = fields.get("o", "")
        packages.append(Package(ecosystem, name, version, purl.to_string(), installed_by[(name, version)],
                                APK_INSTALLED, "os", origin if origin != name else ""))
    return packages


def _apk_entries(data: bytes) -> Iterator[dict[str, str]]:
    """`X:value` lines, packages separated by blank lines; only the first of each letter kept
    (`F:`, `R:` and the like repeat for every file)."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            if fields.get("P") and fields.get("V"):
                yield fields
            fields = {}
        elif len(line) > 1 and line[1] == ":":
            fields.setdefault(line[0], line[2:].strip())
    if fields.get("P") and fields.get("V"):
        yield fields


def _installing_layers(history: list[FileVersion], entries) -> dict[tuple[str, str], str]:
    """For each (name, version) of the database's last version, the layer that installed it:
    the oldest version of the file, in the run of versions up to the last, that lists it."""
    found: dict[tuple[str, str], str] = {}
    present: set[tuple[str, str]] | None = None
    for version in reversed(history):
        listed = {_name_version(fields) for fields in entries(version.data)}
        present = listed if present is None else present & listed
        for key in present:
            found[key] = version.layer
        if not present:
            break
    return found


def _name_version(fields: dict[str, str]) -> tuple[str, str]:
    return (fields["package"], fields["version"]) if "package" in fields else (fields["P"], fields["V"])


# --- Python ---

def _python_package(path: str, found: FileVersion | None) -> list[Package]:
    if found is None:
        return []
    headers = _metadata_headers(found.data)
    name, version = headers.get("name", ""), headers.get("version", "")
    if not name or not version:
        return []
    purl = PackageURL("pypi", None, normalize_pypi_name(name), version)
    return [Package("PyPI", name, version, purl.to_string(), found.layer, path, "python")]


def _metadata_headers(data: bytes) -> dict[str, str]:
    """The core metadata's headers (up to the first blank line: the rest is the description)."""
    headers: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break
        match = _FIELD.match(line)
        if match:
            headers.setdefault(match[1].lower(), match[2].strip())
    return headers


def normalize_pypi_name(name: str) -> str:
    """PEP 503: runs of -, _ and . are one -, lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --- npm ---

def _npm_package(path: str, found: FileVersion | None) -> list[Package]:
    if found is None:
        return []
    try:
        manifest = orjson.loads(found.data)
    except orjson.JSONDecodeError:
        return []
    name = manifest.get("name") if isinstance(manifest, dict) else None
    version = manifest.get("version") if isinstance(manifest, dict) else None
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return []
    namespace, _, short = name.rpartition("/")
    purl = PackageURL("npm", namespace or None, short, version)
    return [Package("npm", name, version, purl.to_string(), found.layer, path, "npm")]
