"""`python -m infra.bench.replication`: Portlog's push-based replication against `skopeo sync`,
copying the same images from the same Portlog into a fresh CNCF Distribution each
(docs/performance.md "Replication", docs/replication.md).

1. Setup (untimed): builds `--images` images of `--layers` gzipped tar layers of `--layer-size`
   random bytes each, in memory; starts an embedded Portlog (the source) and pushes them as the
   tags of one repository, `bench/replication`; starts two empty `docker-registry` targets.
2. Case A: a `docker-registry` endpoint for the first target and a manual push-based policy,
   through Harbor's API; timed from the POST of the execution until it reads `Succeed`.
3. Case B: `skopeo sync --src docker --dest docker` of the repository into the second target,
   timed from start to exit.
4. Checks: each target lists the repository in its catalog and every tag in its tag list, each
   tag on the digest the source has. Exit status 1 when a check fails.

A benchmark, not a test: it prints a Markdown table and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from config.settings import Settings
from infra.bench import machine
from infra.bench.protocol import Image, digest_of, expect, get_manifest, push_image
from infra.bench.servers import PROJECT, REPO_ROOT, Server, start_distribution, start_portlog

KIB, MIB = 1024, 1024 * 1024
REPOSITORY = f"{PROJECT}/replication"
POLL_SECONDS = 0.05
EXECUTION_TIMEOUT_SECONDS = 900.0
_SIZE = re.compile(r"(\d+)\s*(|k|kib|m|mib)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": KIB, "kib": KIB, "m": MIB, "mib": MIB}


def byte_size(text: str) -> int:
    """`1048576`, `1MiB`, `1M`, `4KiB`, `4k`: binary units."""
    match = _SIZE.fullmatch(text.strip())
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 4096, 4KiB, 1MiB)")
    return int(match[1]) * _SIZE_UNITS[match[2].lower()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.replication", description=(
        "Portlog push-based replication against skopeo sync, from the same Portlog into a fresh "
        "docker-registry each; prints a Markdown table."))
    parser.add_argument("--images", type=int, default=50, help="images (tags of one repository; default 50)")
    parser.add_argument("--layers", type=int, default=3, help="layers per image (default 3)")
    parser.add_argument("--layer-size", type=byte_size, default=MIB,
                        help="random bytes per layer, before tar and gzip (default 1MiB; 4KiB, 4096 …)")
    parser.add_argument("--workers", type=int,
                        help="Portlog's replication workers (PORTLOG_REPLICATION_WORKERS; default: the configured one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and the servers' logs")
    args = parser.parse_args(argv)
    if args.images < 1 or args.layers < 1 or (args.workers is not None and args.workers < 1):
        parser.error("--images, --layers and --workers are at least 1")
    return args


# The images

@dataclass(frozen=True)
class Tagged:
    tag: str
    image: Image

    @property
    def digest(self) -> str:
        return digest_of(self.image.manifest)

    @property
    def blob_bytes(self) -> int:
        return sum(len(blob) for blob in self.image.blobs)


def tar_of_random_file(size: int, name: str) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    return buffer.getvalue()


def build_images(count: int, layers: int, layer_size: int) -> list[Tagged]:
    """Real images: gzipped tar layers and a config naming their diff_ids. skopeo compresses a
    layer it finds uncompressed on its way to a registry, which would change the digests and
    give it extra work, so raw random blobs would not compare like with like."""
    images = []
    for number in range(count):
        tars = [tar_of_random_file(layer_size, f"data/{number}-{index}") for index in range(layers)]
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Labels": {"portlog.bench.image": str(number)}},
                             "rootfs": {"type": "layers", "diff_ids": [digest_of(t) for t in tars]}}).encode()
        gzipped = [gzip.compress(t, compresslevel=1, mtime=0) for t in tars]
        images.append(Tagged(f"v{number:03d}", Image.build(config, gzipped)))
    return images


def push_to_source(source: Server, images: list[Tagged]) -> None:
    conn = source.connect()
    try:
        for item in images:
            push_image(conn, REPOSITORY, item.tag, item.image)
    finally:
        conn.close()


# Case A: Portlog replication, through Harbor's API

def _basic(server: Server) -> str:
    return "Basic " + base64.b64encode(":".join(server.credentials).encode()).decode()


def api_call(server: Server, method: str, path: str, body: dict | None = None):
    """(headers, decoded JSON body or None) of a management API call as the administrator."""
    request = urllib.request.Request(
        f"{server.url}{path}", method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": _basic(server), "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        data = response.read()
        return response.headers, json.loads(data) if data else None


def api_create(server: Server, path: str, body: dict) -> int:
    """POSTs and returns the id at the end of the Location header (Harbor's way)."""
    headers, _ = api_call(server, "POST", path, body)
    return int(headers["Location"].rsplit("/", 1)[1])


def wait_for_execution(source: Server, execution_id: int) -> dict:
    deadline = time.monotonic() + EXECUTION_TIMEOUT_SECONDS
    while True:
        _, execution = api_call(source, "GET", f"/api/v2.0/replication/executions/{execution_id}")
        if execution["status"] != "InProgress" or time.monotonic() > deadline:
            return execution
        time.sleep(POLL_SECONDS)


def failed_tasks(source: Server, execution_id: int) -> list[str]:
    _, tasks = api_call(source, "GET", f"/api/v2.0/replication/executions/{execution_id}/tasks?page_size=100")
    return [f"{t['src_resource']}: {t['status']} {t['error']}" for t in tasks if t["status"] != "Succeed"]


def create_policy(source: Server, target: Server) -> int:
    """A `docker-registry` endpoint for the target and a manual push-based policy to it."""
    registry_id = api_create(source, "/api/v2.0/registries", {
        "name": "bench-target", "url": target.url, "type": "docker-registry"})
    return api_create(source, "/api/v2.0/replication/policies", {
        "name": "bench", "dest_registry": {"id": registry_id}, "trigger": {"type": "manual"},
        "filters": [{"type": "name", "value": REPOSITORY}]})


def replicate_with_portlog(source: Server, policy_id: int) -> float:
    """Seconds from the POST of the execution to its `Succeed`."""
    started = time.perf_counter()
    execution_id = api_create(source, "/api/v2.0/replication/executions", {"policy_id": policy_id})
    execution = wait_for_execution(source, execution_id)
    seconds = time.perf_counter() - started
    if execution["status"] != "Succeed":
        problems = "\n".join(failed_tasks(source, execution_id)[:10])
        raise RuntimeError(f"replication ended {execution['status']}: {execution}\n{problems}")
    return seconds


# Case B: skopeo sync

def skopeo_version() -> str:
    result = subprocess.run(["skopeo", "--version"], capture_output=True, text=True)
    return result.stdout.split()[-1] if result.returncode == 0 else "unknown"


def sync_with_skopeo(source: Server, target: Server, work_dir: Path) -> float:
    """Seconds of `skopeo sync`; the target repository is the destination plus the source's last
    path component: bench/replication, as Portlog names it."""
    command = ["skopeo", "sync", "--src", "docker", "--dest", "docker",
               "--src-tls-verify=false", "--dest-tls-verify=false",
               "--src-creds", ":".join(source.credentials),
               f"{source.host}:{source.port}/{REPOSITORY}", f"{target.host}:{target.port}/{PROJECT}"]
    log = work_dir / "skopeo.log"
    with open(log, "wb") as output:
        started = time.perf_counter()
        exit_code = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT).returncode
        seconds = time.perf_counter() - started
    if exit_code != 0:
        raise RuntimeError(f"skopeo sync exited {exit_code}:\n{log.read_text()[-3000:]}")
    return seconds


# Checks

@dataclass
class Arrived:
    in_catalog: bool
    tags: int  # tags listed that the source has
    matching: int  # of those, on the source's digest

    def complete(self, expected: int) -> bool:
        return self.in_catalog and self.tags == self.matching == expected


def listed_tags(conn) -> set[str]:
    response = conn.request("GET", f"/v2/{REPOSITORY}/tags/list")
    if response.status == 404:  # nothing arrived
        return set()
    return set(json.loads(expect(response, 200, "tags list").body).get("tags") or ())


def check_target(target: Server, images: list[Tagged]) -> Arrived:
    conn = target.connect()
    try:
        catalog = json.loads(expect(conn.request("GET", "/v2/_catalog?n=1000"), 200, "catalog").body)
        tags = listed_tags(conn)
        present = [item for item in images if item.tag in tags]
        matching = [item for item in present
                    if get_manifest(conn, REPOSITORY, item.tag, "HEAD").header("docker-content-digest") == item.digest]
    finally:
        conn.close()
    return Arrived(REPOSITORY in catalog.get("repositories", ()), len(present), len(matching))


# The run

@dataclass
class Case:
    name: str
    seconds: float
    arrived: Arrived
    source_cpu: float
    target_cpu: float
    client_cpu: float | None  # skopeo's; None when the copy ran inside the source


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, copy, source: Server, target: Server, images: list[Tagged], with_client: bool) -> Case:
    before = source.cpu_seconds(), target.cpu_seconds(), children_cpu()
    seconds = copy()
    after = source.cpu_seconds(), target.cpu_seconds(), children_cpu()
    used = [a - b for a, b in zip(after, before)]
    return Case(name, seconds, check_target(target, images), used[0], used[1], used[2] if with_client else None)


def configured_workers() -> int:
    return Settings.from_env().replication_workers


def report(cases: list[Case], images: list[Tagged]) -> str:
    count, mib = len(images), sum(item.blob_bytes for item in images) / MIB
    lines = ["| case | wall time, s | images/s | MiB/s | tags at the target, on the source's digest "
             "| CPU s: source Portlog | CPU s: target | CPU s: skopeo |",
             "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for case in cases:
        client = "–" if case.client_cpu is None else f"{case.client_cpu:.1f}"
        lines.append(f"| {case.name} | {case.seconds:.2f} | {count / case.seconds:.2f} | {mib / case.seconds:.1f} "
                     f"| {case.arrived.matching} / {count}"
                     f"{'' if case.arrived.in_catalog else ' (not in _catalog)'} "
                     f"| {case.source_cpu:.1f} | {case.target_cpu:.1f} | {client} |")
    portlog, skopeo = cases
    lines += ["", f"skopeo / Portlog wall time: {skopeo.seconds / portlog.seconds:.2f}× "
                  "(above 1: Portlog replication is faster)"]
    return "\n".join(lines)


def describe(args: argparse.Namespace, images: list[Tagged], work_dir: Path) -> None:
    print(f"# Replication benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    for name, value in machine.describe(work_dir, REPO_ROOT, None):
        print(f"- {name}: {value}")
    print(f"- skopeo: {skopeo_version()}")
    total_mib = sum(item.blob_bytes for item in images) / MIB
    print(f"- images: {args.images} tags of {REPOSITORY}, each {args.layers} layers of {args.layer_size:,} random "
          f"bytes (tar, gzip) and a config: {total_mib:.2f} MiB of blobs in all\n", flush=True)


def run_cases(args: argparse.Namespace, images: list[Tagged], work_dir: Path) -> list[Case]:
    """Starts the source and both targets, runs case A then case B, stops them all."""
    workers = args.workers or configured_workers()
    started = time.monotonic()
    # The target registry listens on loopback, which the outbound guard refuses by default.
    backends = {"PORTLOG_OUTBOUND_ALLOW": "127.0.0.0/8,::1/128"}
    if args.workers:
        backends["PORTLOG_REPLICATION_WORKERS"] = str(args.workers)
    servers = [start_portlog(work_dir / "source", backends=backends)]
    try:
        source = servers[0]
        push_to_source(source, images)
        servers += [start_distribution(work_dir / f"target-{case}") for case in ("portlog", "skopeo")]
        for_portlog, for_skopeo = servers[1:]
        policy_id = create_policy(source, for_portlog)
        print(f"Setup (start, push, policy) took {time.monotonic() - started:.1f} s.\n", flush=True)
        return [
            measure(f"Portlog replication, {workers} worker{'s' if workers > 1 else ''}",
                    lambda: replicate_with_portlog(source, policy_id), source, for_portlog, images, False),
            measure("skopeo sync", lambda: sync_with_skopeo(source, for_skopeo, work_dir),
                    source, for_skopeo, images, True),
        ]
    finally:
        for server in servers:
            server.stop()


def run(args: argparse.Namespace, work_dir: Path) -> int:
    images = build_images(args.images, args.layers, args.layer_size)
    describe(args, images, work_dir)
    cases = run_cases(args, images, work_dir)
    print(report(cases, images))
    complete = all(case.arrived.complete(len(images)) for case in cases)
    print("\nEvery tag reached both targets." if complete else "\nSOME TAGS ARE MISSING OR WRONG (see the table).")
    return 0 if complete else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("skopeo") is None or shutil.which("docker-registry") is None:
        print("skopeo and docker-registry are needed: scripts/install-system-packages", file=sys.stderr)
        return 2
    work_dir = Path(tempfile.mkdtemp(prefix="portlog-replication-bench-"))
    try:
        return run(args, work_dir)
    finally:
        if args.keep:
            print(f"\nkept {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
