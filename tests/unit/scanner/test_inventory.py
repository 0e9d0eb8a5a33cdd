"""The inventory, from real package databases: this Debian machine's dpkg status, Python
distributions of the test environment and of Debian, npm's own packages, an Alpine snippet."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
from pathlib import Path

import pytest

from scanner.inventory import Distribution, inventory, parse_os_release, wanted
from scanner.layers import read_image_files
from scanner.limits import Deadline, ScanLimits
from tests.support.layers import Blobs, Symlink, gzip_layer

DATA = Path(__file__).resolve().parents[2] / "data" / "packages"
NPM = Path("/usr/lib/node_modules/npm")
DEBIAN_PYTHON = Path("/usr/lib/python3/dist-packages")


def image(*layers: dict):
    blobs = Blobs()
    added = [blobs.add(gzip_layer(layer)) for layer in layers]
    files = read_image_files(added, blobs.open, wanted, ScanLimits(), Deadline(60))
    return inventory(files), [layer.digest for layer in added]


def machine_os_release() -> dict:
    return {"usr/lib/os-release": Path("/usr/lib/os-release").read_bytes(),
            "etc/os-release": Symlink("../usr/lib/os-release")}


def test_this_machines_dpkg_status_gives_what_dpkg_query_lists():
    found, [layer] = image({**machine_os_release(), "var/lib/dpkg/status": Path("/var/lib/dpkg/status").read_bytes()})
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status}|${Package}|${Version}|${source:Package}|${source:Version}|"
         "${Architecture}\n"], capture_output=True, text=True, check=True).stdout.splitlines()
    expected = sorted(tuple(line.split("|")[1:]) for line in listed if line.startswith("installed|"))
    assert len(expected) > 100
    assert sorted((p.name, p.version, p.source_name, p.source_version, p.purl.split("arch=")[1].split("&")[0])
                  for p in found.packages) == expected
    assert found.distribution == Distribution("debian", "12", "Debian GNU/Linux 12 (bookworm)")
    assert {p.ecosystem for p in found.packages} == {"Debian:12"}
    assert {(p.layer, p.path, p.kind) for p in found.packages} == {(layer, "var/lib/dpkg/status", "os")}
    libc = next(p for p in found.packages if p.name == "libc6")
    assert (libc.advisory_name, libc.purl) == ("glibc", f"pkg:deb/debian/libc6@{libc.version.replace('+', '%2B')}"
                                               "?arch=amd64&distro=debian-12&upstream=glibc")


def test_a_package_is_attributed_to_the_layer_that_installed_its_version():
    status = (DATA / "dpkg-status-bookworm-12.1").read_bytes()
    libc_only = status.split(b"\n\n")[0] + b"\n"
    upgraded = status.replace(b"Version: 3.0.9-1", b"Version: 3.0.11-1~deb12u1")
    found, [base, adds_openssl, upgrades_openssl] = image(
        {**machine_os_release(), "var/lib/dpkg/status": libc_only}, {"var/lib/dpkg/status": status},
        {"var/lib/dpkg/status": upgraded})
    layers = {(p.name, p.version): p.layer for p in found.packages}
    assert layers == {("libc6", "2.36-9+deb12u1"): base, ("libssl3", "3.0.11-1~deb12u1"): upgrades_openssl,
                      ("openssl", "3.0.11-1~deb12u1"): upgrades_openssl, ("zlib1g", "1:1.2.13.dfsg-1"): adds_openssl}


def test_a_package_removed_in_a_layer_is_not_listed_and_config_files_only_are_not_installed():
    status = (DATA / "dpkg-status-bookworm-12.1").read_bytes()
    found, _ = image({**machine_os_release(), "var/lib/dpkg/status": status})
    assert sorted(p.name for p in found.packages) == ["libc6", "libssl3", "openssl", "zlib1g"]  # not libzstd1
    zlib = next(p for p in found.packages if p.name == "zlib1g")
    assert (zlib.source_name, zlib.source_version) == ("zlib", "1:1.2.13.dfsg-1")


def test_distroless_status_d_files_each_hold_a_package():
    status = (DATA / "dpkg-status-bookworm-12.1").read_bytes().split(b"\n\n")
    found, _ = image({**machine_os_release(), "var/lib/dpkg/status.d/libc6": status[0] + b"\n",
                      "var/lib/dpkg/status.d/libc6.md5sums": b"d41d8cd98f00b204e9800998ecf8427e  lib/x\n",
                      "var/lib/dpkg/status.d/zlib1g": status[4] + b"\n"})
    assert sorted((p.name, p.path) for p in found.packages) == [
        ("libc6", "var/lib/dpkg/status.d/libc6"), ("zlib1g", "var/lib/dpkg/status.d/zlib1g")]


def test_alpine_packages_carry_their_origin():
    found, _ = image({"etc/os-release": (DATA / "alpine-3.16-os-release").read_bytes(),
                      "lib/apk/db/installed": (DATA / "alpine-3.16-installed").read_bytes()})
    assert found.distribution.ecosystem == "Alpine:v3.16"
    assert [(p.name, p.version, p.advisory_name, p.purl) for p in found.packages] == [
        ("musl", "1.2.3-r0", "musl", "pkg:apk/alpine/musl@1.2.3-r0?arch=x86_64&distro=3.16.0"),
        ("busybox", "1.35.0-r13", "busybox", "pkg:apk/alpine/busybox@1.35.0-r13?arch=x86_64&distro=3.16.0"),
        ("zlib", "1.2.12-r1", "zlib", "pkg:apk/alpine/zlib@1.2.12-r1?arch=x86_64&distro=3.16.0"),
        ("libcrypto1.1", "1.1.1o-r0", "openssl",
         "pkg:apk/alpine/libcrypto1.1@1.1.1o-r0?arch=x86_64&distro=3.16.0")]


@pytest.mark.parametrize("distribution", ["requests", "urllib3", "cyclonedx-python-lib", "packageurl-python"])
def test_python_distributions_of_the_test_environment(distribution):
    installed = importlib.metadata.distribution(distribution)
    metadata = Path(installed._path) / "METADATA"  # its real METADATA file
    site = "usr/local/lib/python3.11/site-packages"
    found, [layer] = image({f"{site}/{Path(installed._path).name}/METADATA": metadata.read_bytes()})
    [package] = found.packages
    assert (package.ecosystem, package.name, package.version, package.layer) == (
        "PyPI", installed.metadata["Name"], installed.version, layer)
    assert package.purl == f"pkg:pypi/{distribution}@{installed.version}"


def test_debians_egg_info_directories_and_files():
    jwt = DEBIAN_PYTHON / "PyJWT-2.6.0.egg-info" / "PKG-INFO"
    found, _ = image({f"{jwt.relative_to('/')}": jwt.read_bytes(),
                      "usr/lib/python3/dist-packages/Old_Thing-0.3.egg-info": b"Metadata-Version: 1.0\n"
                                                                             b"Name: Old_Thing\nVersion: 0.3\n"})
    assert sorted((p.name, p.version, p.purl) for p in found.packages) == [
        ("Old_Thing", "0.3", "pkg:pypi/old-thing@0.3"), ("PyJWT", "2.6.0", "pkg:pypi/pyjwt@2.6.0")]


def test_a_header_in_the_description_is_not_the_version():
    found, _ = image({"app/lib/requests-2.28.1.dist-info/METADATA": (DATA / "requests-2.28.1-METADATA").read_bytes()})
    assert [(p.name, p.version) for p in found.packages] == [("requests", "2.28.1")]


def test_npm_packages_plain_and_scoped_as_npm_installs_them():
    scoped = next((NPM / "node_modules" / "@npmcli").iterdir()) / "package.json"
    real = {"usr/lib/node_modules/npm/package.json": NPM / "package.json",
            "usr/lib/node_modules/npm/node_modules/semver/package.json": NPM / "node_modules/semver/package.json",
            f"usr/lib/node_modules/npm/node_modules/@npmcli/{scoped.parent.name}/package.json": scoped}
    not_packages = {"usr/lib/node_modules/npm/node_modules/semver/test/package.json": b'{"name": "x", "version": "1"}',
                    "usr/lib/node_modules/npm/node_modules/broken/package.json": b"{not json"}
    found, _ = image({path: file.read_bytes() for path, file in real.items()} | not_packages)
    expected = {(doc["name"], doc["version"]) for doc in (json.loads(file.read_bytes()) for file in real.values())}
    assert {(p.name, p.version) for p in found.packages} == expected
    scoped_package = next(p for p in found.packages if p.name.startswith("@npmcli/"))
    assert scoped_package.purl == f"pkg:npm/%40npmcli/{scoped_package.name.split('/')[1]}@{scoped_package.version}"


@pytest.mark.parametrize(("text", "ecosystem"), [
    (b'ID=debian\nVERSION_ID="12"\n', "Debian:12"),
    (b'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\n', "Ubuntu:22.04"),
    (b"ID=alpine\nVERSION_ID=3.19.1\n", "Alpine:v3.19"),
    (b"ID=alpine\nVERSION_ID=3.20_alpha20240329\n", "Alpine:v3.20"),
    (b'ID="rocky"\nVERSION_ID="9.3"\n', ""),
    (b"ID=debian\n", ""),  # testing or unstable: no release OSV knows
])
def test_os_release_gives_the_ecosystem(text, ecosystem):
    fields = parse_os_release(text)
    assert Distribution(fields["ID"], fields.get("VERSION_ID", ""), "").ecosystem == ecosystem
