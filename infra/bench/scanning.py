"""Vulnerability scanning: how long the built-in scanner takes over an image of ~150 packages,
and what `auto_scan` costs pushes. Portlog only: Distribution has no scanner, and its cells say so.

The image is built here, offline: one layer with an `etc/os-release` of Debian 12, a
`var/lib/dpkg/status` of real entries from this machine's, and Python dist-info (real METADATA
files of this virtual environment's distributions, plus `requests` 2.30.0, which the test OSV
data knows a vulnerability of). The test OSV data (tests/data/osv) is imported first, with
`portlog vulndb import`, into the running server's data directory.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.error
import urllib.request
from functools import cached_property
from pathlib import Path

from infra.bench.protocol import Image, digest_of, push_image
from infra.bench.report import Reading
from infra.bench.servers import REPO_ROOT, Server
from infra.bench.workloads import Items, Workload, size_label

OSV_DATA = REPO_ROOT / "tests" / "data" / "osv"
DPKG_STATUS = Path("/var/lib/dpkg/status")
PYTHON_DISTRIBUTIONS = 8  # real dist-info directories; with requests and the dpkg entries: PACKAGES
PACKAGES = 150
VULNERABILITY_REPORT = "application/vnd.security.vulnerability.report; version=1.1"
FINAL = ("Success", "Error", "Stopped")
NO_SCANNER = "no scanner"
SCAN_TIMEOUT = 300.0


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A gzip-compressed tar of regular files, as an image layer holds them."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def dpkg_entries(count: int) -> bytes:
    """The first `count` installed packages of this machine's dpkg database, verbatim."""
    stanzas = [s for s in DPKG_STATUS.read_text().split("\n\n") if "\nStatus: install ok installed" in s]
    if len(stanzas) < count:
        raise RuntimeError(f"{DPKG_STATUS} lists {len(stanzas)} installed packages; the scan image needs {count}")
    return ("\n\n".join(stanzas[:count]) + "\n").encode()


def python_metadata(count: int) -> dict[str, bytes]:
    """`count` real dist-info METADATA files of this environment, and an old `requests`."""
    site = Path(sysconfig.get_paths()["purelib"])
    found = sorted(p for p in site.glob("*.dist-info/METADATA"))[:count]
    if len(found) < count:
        raise RuntimeError(f"{site} has {len(found)} distributions; the scan image needs {count}")
    prefix = "usr/lib/python3/dist-packages"
    files = {f"{prefix}/{p.parent.name}/METADATA": p.read_bytes() for p in found}
    files[f"{prefix}/requests-2.30.0.dist-info/METADATA"] = (
        b"Metadata-Version: 2.1\nName: requests\nVersion: 2.30.0\nSummary: Python HTTP for Humans.\n")
    return files


def inventory_layer() -> bytes:
    dpkg = PACKAGES - PYTHON_DISTRIBUTIONS - 1
    return tar_gz({"etc/os-release": b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
                                     b'VERSION_ID="12"\nVERSION="12 (bookworm)"\nID=debian\n',
                   "var/lib/dpkg/status": dpkg_entries(dpkg), **python_metadata(PYTHON_DISTRIBUTIONS)})


def image_config(stamp: str) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                       "config": {"Labels": {"bench": stamp}}}).encode()


class Harbor:
    """The Harbor API of a Portlog server, as its administrator."""

    def __init__(self, server: Server) -> None:
        self.url = server.url + "/api/v2.0"
        self.basic = "Basic " + base64.b64encode(":".join(server.credentials).encode()).decode()

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        request = urllib.request.Request(self.url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": self.basic, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                data = response.read()
                return response.status, json.loads(data) if data else None
        except urllib.error.HTTPError as error:
            return error.code, error.read()[:300]

    def expect(self, status: int, method: str, path: str, body: dict | None = None):
        got, answer = self.call(method, path, body)
        if got != status:
            raise RuntimeError(f"{method} {path}: HTTP {got}, expected {status}: {answer!r}")
        return answer

    def create_project(self, name: str, auto_scan: bool) -> None:
        if self.call("GET", f"/projects/{name}")[0] == 200:
            return
        self.expect(201, "POST", "/projects", {"project_name": name, "metadata": {
            "public": "false", "auto_scan": "true" if auto_scan else "false"}})

    def scan(self, project: str, repository: str, digest: str) -> None:
        self.expect(202, "POST", f"/projects/{project}/repositories/{repository}/artifacts/{digest}/scan",
                    {"scan_type": "vulnerability"})

    def scan_overview(self, project: str, repository: str, digest: str) -> dict | None:
        artifact = self.expect(200, "GET", f"/projects/{project}/repositories/{repository}/artifacts/{digest}"
                                           "?with_scan_overview=true")
        overview = artifact.get("scan_overview") or {}
        return overview.get(VULNERABILITY_REPORT) or next(iter(overview.values()), None)

    def wait_scanned(self, project: str, repository: str, digest: str, deadline: float,
                     pause: float = 0.02) -> dict:
        while True:
            overview = self.scan_overview(project, repository, digest)
            if overview and overview["scan_status"] in FINAL:
                return overview
            if time.monotonic() > deadline:
                raise RuntimeError(f"{project}/{repository}@{digest}: not scanned in time ({overview})")
            time.sleep(pause)


def import_vulnerability_data(server: Server) -> None:
    """`portlog vulndb import` into the running server's data directory (its log), with the code
    the server runs and its address: every Portlog process that starts records the built-in
    scanner's URL from its own settings."""
    result = subprocess.run([sys.executable, "-m", "cli", "vulndb", "import", str(OSV_DATA), "--source", "bench-osv",
                             "--data-dir", str(server.directory / "data")], cwd=server.source, capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, "PORTLOG_HOST": server.host, "PORTLOG_PORT": str(server.port)})
    if result.returncode != 0:
        raise RuntimeError(f"portlog vulndb import: {result.stderr[-2000:]}")


def _absent(figure: str, unit: str, lower: bool = False) -> Reading:
    return Reading(figure, unit, "python", float("nan"), lower, absent=NO_SCANNER)


class ScanImage(Workload):
    """From the scan request (`POST …/artifacts/{digest}/scan`) to the report being Success, as a
    client polling the artifact's scan overview sees it; each repetition a new image (its own
    config) with the same inventory layer, so every scan does the whole work."""
    repeatable = False  # its own rounds, or a setup that is the measurement's
    name = "scan"
    project, repository = "bench-scan", "image"

    @property
    def repetitions(self) -> int:
        return 2 if self.sizes.seconds < 1 else 5

    @property
    def figure(self) -> str:
        return f"scan of an image of {PACKAGES} packages (built-in scanner, request to Success), median of " \
               f"{self.repetitions}"

    @cached_property
    def images(self) -> list[Image]:
        layer = inventory_layer()
        return [Image.build(image_config(f"scan-{i}"), [layer]) for i in range(self.repetitions)]

    def setup(self, server: Server) -> None:
        if not server.credentials:
            return
        import_vulnerability_data(server)
        Harbor(server).create_project(self.project, auto_scan=False)
        conn = server.connect()
        for i, image in enumerate(self.images):
            push_image(conn, f"{self.project}/{self.repository}", f"v{i}", image)
        conn.close()

    def measure(self, server: Server) -> list[Reading]:
        if not server.credentials:
            return [_absent(self.figure, "s", lower=True)]
        harbor, seconds, found = Harbor(server), [], set()
        for image in self.images:
            digest = digest_of(image.manifest)
            started = time.monotonic()
            harbor.scan(self.project, self.repository, digest)
            overview = harbor.wait_scanned(self.project, self.repository, digest, started + SCAN_TIMEOUT)
            seconds.append(time.monotonic() - started)
            if overview["scan_status"] != "Success":
                raise RuntimeError(f"scan of {digest} ended {overview['scan_status']}")
            found.add(overview["summary"]["total"])
        note = "" if found and min(found) > 0 else "the scans found no vulnerability (is the OSV data imported?)"
        return [Reading(self.figure, "s", "python", statistics.median(seconds), True, errors=int(bool(note)),
                        note=note)]


class PushImagesTo(Items):
    """The end-to-end push, into the repositories of one project."""

    def do(self, conn, item) -> int:
        repo, image = item
        push_image(conn, repo, "v1", image)
        return sum(len(blob) for blob in image.blobs)


class PushAutoScan(Workload):
    """The end-to-end push (same image count, layers, size and concurrency) into a project with
    `auto_scan` off and into one with it on, in the same run, alternating (off, on, off, on, …:
    the machine's state drifts; each round pushes new images), the rate pooled over the rounds.
    The layers are tar.gz (of random bytes), so the scans the pushes start are real ones that
    succeed; they run in the background while the pushes go on. Afterwards, how long until every
    pushed image was scanned."""
    repeatable = False  # its own rounds, or a setup that is the measurement's
    name = "push-autoscan"
    projects = {False: "bench-noscan", True: "bench-autoscan"}

    @property
    def rounds(self) -> int:
        return 1 if self.sizes.seconds < 1 else 3

    def images_for(self, auto_scan: bool, round_: int) -> list[tuple[str, Image]]:
        count, layers, size, _ = self.sizes.images
        project = self.projects[auto_scan]
        return [(f"{project}/r{round_}-image{i:02d}",
                 Image.build(image_config(f"{project}-{round_}-{i}"),
                             [tar_gz({f"data/{j}": os.urandom(size)}) for j in range(layers)]))
                for i in range(count)]

    @cached_property
    def pushes(self) -> dict[tuple[bool, int], list[tuple[str, Image]]]:
        return {(auto_scan, round_): self.images_for(auto_scan, round_)
                for round_ in range(self.rounds) for auto_scan in (False, True)}

    def figure(self, auto_scan: bool) -> str:
        count, layers, size, lanes = self.sizes.images
        rounds = f"{self.rounds} rounds" if self.rounds > 1 else "1 round"
        return (f"end to end push, auto_scan {'on' if auto_scan else 'off'}, {count} images of {layers} × "
                f"{size_label(size)} tar.gz layers + config, c={lanes}, {rounds} of off then on")

    @property
    def ratio_figure(self) -> str:
        return "end to end push, auto_scan on / off"

    @property
    def drained_figure(self) -> str:
        return "auto_scan: every image of an auto_scan push scanned, seconds after the push (median of the rounds)"

    def setup(self, server: Server) -> None:
        if server.credentials:
            harbor = Harbor(server)
            for auto_scan, project in self.projects.items():
                harbor.create_project(project, auto_scan)

    def measure(self, server: Server) -> list[Reading]:
        if not server.credentials:
            return [_absent(self.figure(False), "images/s"), _absent(self.figure(True), "images/s"),
                    _absent(self.ratio_figure, "×"), _absent(self.drained_figure, "s", lower=True)]
        lanes = self.sizes.images[3]
        outcomes: dict[bool, list] = {False: [], True: []}
        drained, failed = [], 0
        for (auto_scan, _), images in self.pushes.items():
            outcomes[auto_scan].append(self._run(server, PushImagesTo(images), lanes,
                                                 label=f"autoscan-{'on' if auto_scan else 'off'}"))
            if auto_scan:  # the next round's "off" pushes do not share the machine with these scans
                seconds, failures = self._drained(server, images)
                drained.append(seconds)
                failed += failures
        readings, rates = [], {}
        for auto_scan, runs in outcomes.items():
            rates[auto_scan] = sum(o.operations for o in runs) / sum(o.wall for o in runs)
            last = runs[-1]
            readings.append(Reading(self.figure(auto_scan), "images/s", last.tool, rates[auto_scan], False, last.usage,
                                    sum(o.errors for o in runs), "; ".join(o.note for o in runs if o.note)))
        readings.append(Reading(self.ratio_figure, "×", "python",
                                rates[True] / rates[False] if rates[False] else float("nan")))
        note = f"{failed} auto-scans did not succeed" if failed else ""
        readings.append(Reading(self.drained_figure, "s", "python", statistics.median(drained), True,
                                errors=failed, note=note))
        return readings

    def _drained(self, server: Server, images: list[tuple[str, Image]]) -> tuple[float, int]:
        """Seconds from the end of a push until all its images were scanned; scans not Success."""
        harbor, failed, pushed = Harbor(server), 0, time.monotonic()
        for repo, image in images:
            project, repository = repo.split("/", 1)
            overview = harbor.wait_scanned(project, repository, digest_of(image.manifest), pushed + SCAN_TIMEOUT,
                                           pause=0.1)
            failed += overview["scan_status"] != "Success"
        return time.monotonic() - pushed, failed
