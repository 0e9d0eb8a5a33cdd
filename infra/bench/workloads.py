"""What is measured, at which sizes and concurrency.

Each workload prepares its payloads once per round, so both registries receive the same
bytes; `setup` puts in place what it reads (untimed, once per server), then each round
`measure` runs it on every server and returns readings. Every timed run records the server's
and the clients' CPU use. A workload that writes gets new payloads each round (`self.round`),
so a later round pushes what no server holds yet, as the first did.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from infra.bench import load, profile, wrk
from infra.bench.client import Connection
from infra.bench.protocol import (
    Image,
    digest_of,
    expect,
    get_blob,
    get_manifest,
    list_all,
    mount_blob,
    pull_image,
    push_blob,
    push_blob_chunked,
    push_image,
    put_manifest,
)
from infra.bench.report import Reading
from infra.bench.servers import Server

KIB, MIB = 1024, 1024 * 1024
SETUP_LANES = 8


@dataclass(frozen=True)
class Sizes:
    seconds: float  # each timed run of the Python clients that has no fixed amount of work
    wrk_seconds: int
    processes: int  # client processes of the Python load generator
    push_small: tuple[int, int, int]  # blobs, bytes each, concurrency
    push_large: tuple[int, int, int, int]  # blobs, bytes each, PATCH bytes, concurrency
    pull_small: tuple[int, int]  # blob bytes, concurrency
    pull_large: tuple[int, int]
    manifest_concurrency: int
    tags: int
    repositories: int
    list_concurrency: int
    images: tuple[int, int, int, int]  # images, layers each, layer bytes, concurrency
    backup: tuple[int, int] = (256, MIB)  # blobs pushed for the backup workload, bytes each
    follower_lag: tuple[float, float] = (10.0, 20.0)  # seconds of steady manifest PUTs, PUTs per second


FULL = Sizes(seconds=5.0, wrk_seconds=5, processes=4,
             push_small=(64, MIB, 8), push_large=(4, 64 * MIB, 8 * MIB, 2),
             pull_small=(MIB, 16), pull_large=(64 * MIB, 4),
             manifest_concurrency=32, tags=1000, repositories=1000, list_concurrency=8,
             images=(20, 3, 256 * KIB, 4))

QUICK = Sizes(seconds=0.5, wrk_seconds=1, processes=2,
              push_small=(8, 64 * KIB, 4), push_large=(2, 1 * MIB, 256 * KIB, 2),
              pull_small=(64 * KIB, 4), pull_large=(1 * MIB, 2),
              manifest_concurrency=4, tags=20, repositories=20, list_concurrency=2,
              images=(2, 3, 16 * KIB, 2), backup=(8, 64 * KIB), follower_lag=(2.0, 10.0))


def size_label(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB and size % MIB == 0 else f"{size // KIB} KiB"


def unique_blob(size: int, stamp: str) -> bytes:
    """Random bytes; the stamp keeps blobs distinct even if two draws were equal."""
    return stamp.encode().ljust(64, b"\0") + os.urandom(size - 64)


# Jobs: run by the load generator's lanes (see load.py).

class Items:
    """A job over a fixed list of items, dealt round-robin to the lanes."""

    def __init__(self, items: list) -> None:
        self.items = items

    def prepare(self, lane: int, lanes: int):
        return iter(self.items[lane::lanes])

    def step(self, conn: Connection, items) -> int | None:
        item = next(items, None)
        return None if item is None else self.do(conn, item)

    def do(self, conn: Connection, item) -> int:
        raise NotImplementedError


class PushBlobs(Items):
    def __init__(self, repo: str, blobs: list[bytes], chunk: int | None) -> None:
        super().__init__([(blob, digest_of(blob)) for blob in blobs])
        self.repo, self.chunk = repo, chunk

    def do(self, conn: Connection, item) -> int:
        blob, digest = item
        if self.chunk:
            view = memoryview(blob)
            chunks = [view[i:i + self.chunk] for i in range(0, len(blob), self.chunk)]
            push_blob_chunked(conn, self.repo, chunks, digest)
        else:
            push_blob(conn, self.repo, blob, digest)
        return len(blob)


class PutTags(Items):
    def __init__(self, repo: str, manifest: bytes, tags: list[str]) -> None:
        super().__init__(tags)
        self.repo, self.manifest = repo, manifest

    def do(self, conn: Connection, tag: str) -> int:
        put_manifest(conn, self.repo, tag, self.manifest)
        return 0


class CreateRepositories(Items):
    """Each repository by cross-repository mounts of the image's blobs, then its manifest."""

    def __init__(self, names: list[str], source: str, image: Image) -> None:
        super().__init__(names)
        self.source, self.image = source, image

    def do(self, conn: Connection, name: str) -> int:
        for blob in self.image.blobs:
            mount_blob(conn, name, digest_of(blob), self.source)
        put_manifest(conn, name, "latest", self.image.manifest)
        return 0


class PushImages(Items):
    def do(self, conn: Connection, item) -> int:
        repo, image = item
        push_image(conn, repo, "v1", image)
        return sum(len(blob) for blob in image.blobs)


class PullImages(Items):
    def do(self, conn: Connection, item) -> int:
        repo, _ = item
        return pull_image(conn, repo, "v1")


class Repeat:
    """The same request over and over, until the deadline."""

    def __init__(self, request) -> None:
        self.request = request

    def prepare(self, lane: int, lanes: int) -> None:
        return None

    def step(self, conn: Connection, state) -> int:
        return self.request(conn)


# Workloads.

class Workload:
    name = ""
    profile_dir: Path | None = None  # --profile: py-spy on Portlog during each timed run
    repeatable = True  # False: measured in the first round only (its setup is the measurement's)

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.round = 0  # set by the run before each round's measurements

    def setup(self, server: Server) -> None:
        pass

    def measure(self, server: Server) -> list[Reading]:
        raise NotImplementedError

    def _profiled(self, server: Server, label: str):
        if self.profile_dir is None or not server.name.startswith("Portlog"):
            return nullcontext()
        server_part = "" if server.name == "Portlog" else "-" + server.name.lower().replace(" ", "-")
        return profile.recording(server.pid, self.profile_dir / f"{self.name}-{label}{server_part}.txt")

    def _run(self, server: Server, job, lanes: int, seconds: float | None = None,
             label: str = "python") -> load.Outcome:
        with self._profiled(server, label):
            return load.run(job, server, lanes, seconds, self.sizes.processes)

    def _setup_batch(self, server: Server, job) -> None:
        outcome = load.run(job, server, SETUP_LANES, None, self.sizes.processes)
        if outcome.errors:
            raise RuntimeError(f"{self.name} setup on {server.name}: {outcome.first_error}")

    def _wrk(self, server: Server, target: str, connections: int,
             headers: dict[str, str] | None = None) -> wrk.WrkResult:
        headers = {**(headers or {}), **server.authorization(target)}
        with self._profiled(server, "wrk"):
            return wrk.run(server.url + target, connections, self.sizes.wrk_seconds, headers, server.pid)


def _per_round(workload: Workload, build):
    """The workload's payloads for its current round, built once; the previous round's are
    dropped (a round of 64 MiB blobs is enough to hold)."""
    held = workload.__dict__.get("_payloads")
    if held is None or held[0] != workload.round:
        held = workload.__dict__["_payloads"] = (workload.round, build())
    return held[1]


def _reading(figure: str, unit: str, value: float, run, lower: bool = False) -> Reading:
    """A reading from a Python (load.Outcome) or a wrk (wrk.WrkResult) run."""
    return Reading(figure, unit, run.tool, value, lower, run.usage, run.errors, run.note)


class BlobPush(Workload):
    def __init__(self, sizes: Sizes, large: bool) -> None:
        super().__init__(sizes)
        if large:
            self.count, self.size, self.chunk, self.lanes = sizes.push_large
            self.name = "push-large"
        else:
            (self.count, self.size, self.lanes), self.chunk = sizes.push_small, None
            self.name = "push-small"

    @property
    def blobs(self) -> list[bytes]:
        return _per_round(self, lambda: [unique_blob(self.size, f"{self.name}-{self.round}-{i}")
                                         for i in range(self.count)])

    def measure(self, server: Server) -> list[Reading]:
        job = PushBlobs(f"bench/{self.name}", self.blobs, self.chunk)
        outcome = self._run(server, job, self.lanes)
        how = f", chunked in {size_label(self.chunk)} PATCHes" if self.chunk else " (POST + PUT)"
        figure = f"blob push, {self.count} × {size_label(self.size)}{how}, c={self.lanes}"
        return [_reading(figure, "MiB/s", outcome.mib_per_second, outcome)]


class BlobPull(Workload):
    def __init__(self, sizes: Sizes, large: bool) -> None:
        super().__init__(sizes)
        self.size, self.lanes = sizes.pull_large if large else sizes.pull_small
        self.name = "pull-large" if large else "pull-small"
        self.repo = f"bench/{self.name}"

    @cached_property
    def blob(self) -> bytes:
        return unique_blob(self.size, self.name)

    def setup(self, server: Server) -> None:
        conn = server.connect()
        push_blob(conn, self.repo, self.blob, digest_of(self.blob))
        conn.close()

    def measure(self, server: Server) -> list[Reading]:
        digest, size = digest_of(self.blob), self.size
        figure = f"blob pull, {size_label(size)}, c={self.lanes}"
        outcome = self._run(server, Repeat(lambda conn: get_blob(conn, self.repo, digest, size).length),
                            self.lanes, self.sizes.seconds)
        readings = [_reading(figure, "MiB/s", outcome.mib_per_second, outcome)]
        if wrk.available():
            result = self._wrk(server, f"/v2/{self.repo}/blobs/{digest}", self.lanes)
            readings.append(_reading(figure, "MiB/s", result.per_second * size / MIB, result))
        return readings


class ManifestRead(Workload):
    repo, tag = "bench/manifest", "latest"

    def __init__(self, sizes: Sizes, method: str) -> None:
        super().__init__(sizes)
        self.method, self.name = method, f"manifest-{method.lower()}"

    def setup(self, server: Server) -> None:
        conn = server.connect()
        push_image(conn, self.repo, self.tag, Image.build(b'{"os": "linux"}', [b"layer"]))
        conn.close()

    def measure(self, server: Server) -> list[Reading]:
        lanes = self.sizes.manifest_concurrency
        figure = f"manifest {self.method} by tag, c={lanes}"
        outcome = self._run(server, Repeat(
            lambda conn: get_manifest(conn, self.repo, self.tag, self.method).length),
            lanes, self.sizes.seconds)
        runs = [(outcome, outcome.per_second, outcome.percentile(0.5), outcome.percentile(0.99))]
        if self.method == "GET" and wrk.available():
            target = f"/v2/{self.repo}/manifests/{self.tag}"
            result = self._wrk(server, target, lanes, {"Accept": "application/vnd.oci.image.manifest.v1+json"})
            runs.append((result, result.per_second, result.p50, result.p99))
        readings = []
        for run, rate, p50, p99 in runs:
            readings += [_reading(figure, "req/s", rate, run),
                         _reading(figure, "p50 ms", p50 * 1000, run, lower=True),
                         _reading(figure, "p99 ms", p99 * 1000, run, lower=True)]
        return readings


class ListRead(Workload):
    """tags/list of one repository with many tags, or _catalog with many repositories."""

    def __init__(self, sizes: Sizes, catalog: bool) -> None:
        super().__init__(sizes)
        self.catalog = catalog
        self.name = "catalog" if catalog else "tags"
        self.count = sizes.repositories if catalog else sizes.tags
        self.image = Image.build(b'{"os": "linux", "list": true}', [b"list layer"])

    @property
    def target(self) -> str:
        return f"/v2/_catalog?n={self.count}" if self.catalog else "/v2/bench/tags/tags/list"

    def setup(self, server: Server) -> None:
        conn = server.connect()
        if self.catalog:
            push_image(conn, "bench/catalog/source", "latest", self.image)
            _, existing = list_all(conn, "/v2/_catalog")
            names = [f"bench/catalog/r{i:04d}" for i in range(self.count - existing)]
            self._setup_batch(server, CreateRepositories(names, "bench/catalog/source", self.image))
        else:
            push_image(conn, "bench/tags", "t0000", self.image)
            tags = [f"t{i:04d}" for i in range(1, self.count)]
            self._setup_batch(server, PutTags("bench/tags", self.image.manifest, tags))
        _, entries = list_all(conn, self.target)
        conn.close()
        if entries != self.count:
            raise RuntimeError(f"{server.name}: {self.target} lists {entries}, expected {self.count}")

    def measure(self, server: Server) -> list[Reading]:
        lanes = self.sizes.list_concurrency
        what = (f"_catalog, {self.count:,} repositories" if self.catalog
                else f"tags list, {self.count:,} tags")
        figure = f"{what}, c={lanes}"
        target = self.target
        outcome = self._run(server, Repeat(lambda conn: expect(conn.request("GET", target), 200, target).length),
                            lanes, self.sizes.seconds)
        readings = [_reading(figure, "req/s", outcome.per_second, outcome)]
        if wrk.available():
            result = self._wrk(server, target, lanes)
            readings.append(_reading(figure, "req/s", result.per_second, result))
        return readings


class EndToEnd(Workload):
    """Push, then pull, whole images as a client does: HEAD each blob, upload it, put the
    manifest; then get the manifest and every blob, each checked against its digest."""
    name = "e2e"

    @property
    def images(self) -> list[tuple[str, Image]]:
        count, layers, size, _ = self.sizes.images
        return _per_round(self, lambda: [
            (f"bench/e2e/image{i:02d}",
             Image.build(f'{{"os": "linux", "image": {i}, "round": {self.round}}}'.encode(),
                         [unique_blob(size, f"e2e-{self.round}-{i}-{j}") for j in range(layers)]))
            for i in range(count)])

    def measure(self, server: Server) -> list[Reading]:
        count, layers, size, lanes = self.sizes.images
        what = f"{count} images of {layers} × {size_label(size)} layers + config, c={lanes}"
        readings = []
        for phase, job in (("push", PushImages(self.images)), ("pull", PullImages(self.images))):
            outcome = self._run(server, job, lanes, label=phase)
            readings.append(_reading(f"end to end {phase}, {what}", "images/s", outcome.per_second, outcome))
        return readings


def all_workloads(sizes: Sizes) -> list[Workload]:
    from infra.bench.backup import BackupCopy  # they build on this module
    from infra.bench.follower_lag import FollowerLag
    from infra.bench.scanning import PushAutoScan, ScanImage

    return [BlobPush(sizes, large=False), BlobPush(sizes, large=True),
            BlobPull(sizes, large=False), BlobPull(sizes, large=True),
            ManifestRead(sizes, "GET"), ManifestRead(sizes, "HEAD"),
            ListRead(sizes, catalog=False), ListRead(sizes, catalog=True),
            EndToEnd(sizes), ScanImage(sizes), PushAutoScan(sizes), BackupCopy(sizes), FollowerLag(sizes)]
