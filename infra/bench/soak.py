"""`scripts/bench --soak MINUTES`: Portlog under mixed load for a while, then a consistency check.

Lanes (threads, each with one keep-alive connection) each own a few repositories and do, at a
steady pace, one operation after another: push an image (HEAD each blob, upload what is
missing, sometimes in chunks, then the manifest under a tag), pull one (manifest by tag, then
every blob checked against its digest and against the ledger), move a tag to another manifest,
delete a manifest, or abandon an upload half-way. Meanwhile online GC runs start now and then.
Every acknowledged write goes into the ledger (the lane's repositories; a lane is the only
writer of its own, so the ledger is exact without locks). A repository holds at most
MAX_LIVE_PER_REPOSITORY manifests (then a delete replaces the push): after the first minutes
the live data is steady, and memory that still grows is a leak.

Every interval (a minute, shorter for short runs) a row: operations, errors, the server's RSS,
its open file descriptors and the manifest GET p99. After the load: a row after an idle pause
longer than the thread pool's idle timeout, then the checks: every acknowledged manifest intact
with its blobs, every tag where the ledger says, nothing deleted came back, and a final GC
(grace period 0) leaves storage holding exactly the blobs the live manifests reference.
Exit status 1 when a check fails or an operation failed.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from infra.bench import servers
from infra.bench.client import Connection
from infra.bench.protocol import (
    Image,
    ProtocolError,
    blob_exists,
    digest_of,
    expect,
    get_blob,
    get_manifest,
    push_blob,
    push_blob_chunked,
    put_manifest,
    start_upload,
)

KIB = 1024
LANES = 8
REPOSITORIES_PER_LANE = 4
TAGS_PER_REPOSITORY = 6  # pushes reuse tag names, so a push often moves a tag too
# Past this, a lane deletes instead of pushing: the live data stops growing after a few
# minutes, so memory that keeps growing is a leak, not data (the event log still grows).
MAX_LIVE_PER_REPOSITORY = 40
BASE_LAYERS = 8  # shared by every repository (cross-repository references for GC)
OPERATIONS_PER_SECOND = 30.0  # all lanes together
ONLINE_GC_GRACE_SECONDS = 10  # longer than a push takes between its first blob and its manifest
IDLE_SECONDS = 15  # longer than anyio's worker threads idle before they end (10 s)
# (operation, weight): what a lane does next, drawn at random.
MIX = (("push", 35), ("pull", 40), ("move", 10), ("delete", 10), ("abandon", 5))


@dataclass
class Pushed:
    manifest: bytes
    blobs: tuple[tuple[str, int], ...]  # (digest, size) of the config and the layers


@dataclass
class Repository:
    """The ledger of one repository: what the server acknowledged."""
    name: str
    tags: dict[str, str] = field(default_factory=dict)  # tag -> manifest digest
    manifests: dict[str, Pushed] = field(default_factory=dict)  # live manifests by digest
    deleted: set[str] = field(default_factory=set)
    pushes: int = 0


@dataclass
class Row:
    label: str
    operations: int
    errors: int
    rss_mib: float
    fds: int
    manifest_p99_ms: float


class Meter:
    """Operations, errors and manifest GET latencies since the last sample (shared by the lanes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operations = self._errors = 0
        self._latencies: list[float] = []
        self.total_operations = self.total_errors = 0
        self.first_errors: list[str] = []
        self.counts = {name: 0 for name, _ in MIX}

    def done(self, operation: str) -> None:
        with self._lock:
            self._operations += 1
            self.counts[operation] += 1

    def failed(self, operation: str, error: Exception) -> None:
        with self._lock:
            self._errors += 1
            if len(self.first_errors) < 5:
                self.first_errors.append(f"{operation}: {type(error).__name__}: {error}")

    def manifest_latency(self, seconds: float) -> None:
        with self._lock:
            self._latencies.append(seconds)

    def sample(self, label: str, pid: int) -> Row:
        with self._lock:
            operations, errors, latencies = self._operations, self._errors, sorted(self._latencies)
            self._operations = self._errors = 0
            self._latencies = []
            self.total_operations += operations
            self.total_errors += errors
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000 if latencies else float("nan")
        return Row(label, operations, errors, rss_bytes(pid) / 2**20, open_fds(pid), p99)


def process_tree(pid: int) -> list[int]:
    """The process and its children (uvicorn's worker processes when there are several)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *map(int, children)]


def rss_bytes(pid: int) -> int:
    total = 0
    for member in process_tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def open_fds(pid: int) -> int:
    return sum(len(os.listdir(f"/proc/{member}/fd")) for member in process_tree(pid))


# The lanes

class Lane:
    def __init__(self, number: int, server: servers.Server, meter: Meter, base_layers: list[bytes]) -> None:
        self.number, self.server, self.meter, self.base_layers = number, server, meter, base_layers
        self.random = random.Random(number)
        self.repositories = [Repository(f"{servers.PROJECT}/soak-{number}-{r}") for r in range(REPOSITORIES_PER_LANE)]
        self.conn = server.connect()

    def run(self, until: float, period: float) -> None:
        names, weights = zip(*MIX)
        due = time.monotonic() + self.random.random() * period
        while due < until:
            time.sleep(max(0.0, due - time.monotonic()))
            due += period
            operation = self.random.choices(names, weights)[0]
            repository = self.random.choice(self.repositories)
            if operation == "push" and len(repository.manifests) >= MAX_LIVE_PER_REPOSITORY:
                operation = "delete"
            try:
                getattr(self, operation)(repository)
            except Exception as error:  # counted and shown; the run goes on
                self.meter.failed(operation, error)
                self.conn.close()
            else:
                self.meter.done(operation)
        self.conn.close()

    def push(self, repository: Repository) -> None:
        repository.pushes += 1
        config = json.dumps({"soak": repository.name, "push": repository.pushes,
                             "nonce": os.urandom(8).hex()}).encode()
        layer = os.urandom(self.random.randint(1, 32) * KIB)
        image = Image.build(config, [self.random.choice(self.base_layers), layer])
        for blob in image.blobs:
            digest = digest_of(blob)
            if blob_exists(self.conn, repository.name, digest):
                continue
            if len(blob) > 8 * KIB and self.random.random() < 0.3:
                half = len(blob) // 2
                push_blob_chunked(self.conn, repository.name, [blob[:half], blob[half:]], digest)
            else:
                push_blob(self.conn, repository.name, blob, digest)
        tag = f"t{self.random.randrange(TAGS_PER_REPOSITORY)}"
        put_manifest(self.conn, repository.name, tag, image.manifest)
        digest = digest_of(image.manifest)
        repository.manifests[digest] = Pushed(image.manifest, tuple((digest_of(b), len(b)) for b in image.blobs))
        repository.tags[tag] = digest

    def pull(self, repository: Repository) -> None:
        if not repository.tags:
            return self.push(repository)
        tag = self.random.choice(sorted(repository.tags))
        began = time.perf_counter()
        body = get_manifest(self.conn, repository.name, tag).body
        self.meter.manifest_latency(time.perf_counter() - began)
        expected = repository.tags[tag]
        if digest_of(body) != expected:
            raise ProtocolError(f"{repository.name}:{tag} is {digest_of(body)}, acknowledged {expected}")
        pull_blobs(self.conn, repository.name, repository.manifests[expected])

    def move(self, repository: Repository) -> None:
        if not repository.tags or len(repository.manifests) < 2:
            return self.push(repository)
        tag = self.random.choice(sorted(repository.tags))
        target = self.random.choice([d for d in repository.manifests if d != repository.tags[tag]])
        put_manifest(self.conn, repository.name, tag, repository.manifests[target].manifest)
        repository.tags[tag] = target

    def delete(self, repository: Repository) -> None:
        if len(repository.manifests) < 3:
            return self.push(repository)
        digest = self.random.choice(sorted(repository.manifests))
        response = self.conn.request("DELETE", f"/v2/{repository.name}/manifests/{digest}")
        expect(response, 202, "delete manifest")
        del repository.manifests[digest]
        repository.deleted.add(digest)
        for tag in [t for t, d in repository.tags.items() if d == digest]:
            del repository.tags[tag]

    def abandon(self, repository: Repository) -> None:
        """An upload started, one chunk sent, never finished (its state must not live forever)."""
        location = start_upload(self.conn, repository.name)
        chunk = os.urandom(4 * KIB)
        headers = {"Content-Type": "application/octet-stream", "Content-Range": f"0-{len(chunk) - 1}"}
        expect(self.conn.request("PATCH", location, headers, chunk), 202, "patch chunk")


def pull_blobs(conn: Connection, name: str, pushed: Pushed) -> None:
    for digest, size in pushed.blobs:
        body = get_blob(conn, name, digest, size, keep=True).body
        if digest_of(body) != digest:
            raise ProtocolError(f"{name}: blob {digest} came back with other bytes")


# Garbage collection through the management API

class Admin:
    def __init__(self, server: servers.Server) -> None:
        user, password = server.credentials
        self.headers = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
                        "Content-Type": "application/json"}
        self.conn = Connection(server.host, server.port)

    def start_gc(self, grace_seconds: int) -> str:
        body = json.dumps({"dry_run": False, "grace_period_seconds": grace_seconds}).encode()
        response = expect(self.conn.request("POST", "/api/v1/gc/runs", self.headers, body), 202, "start GC")
        return response.header("location")

    def wait_gc(self, location: str, timeout: float = 600.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = json.loads(expect(self.conn.request("GET", location, self.headers), 200, "GC run").body)
            if run["finished_at"]:
                return run
            time.sleep(0.2)
        raise ProtocolError(f"GC run {location} still going after {timeout:.0f} s")

    def gc_now(self, grace_seconds: int) -> dict:
        return self.wait_gc(self.start_gc(grace_seconds))


def gc_loop(admin: Admin, until: float, every: float, meter: Meter, runs: list[dict]) -> None:
    while (pause := min(every, until - time.monotonic())) > 0:
        time.sleep(pause)
        if time.monotonic() >= until:
            break
        try:
            runs.append(admin.gc_now(ONLINE_GC_GRACE_SECONDS))
        except Exception as error:
            meter.failed("gc", error)
            admin.conn.close()


# The checks after the load

def check_repository(server: servers.Server, repository: Repository) -> list[str]:
    """What differs between the server and the ledger of one repository."""
    conn, problems = server.connect(), []
    try:
        for tag, digest in repository.tags.items():
            body = get_manifest(conn, repository.name, tag).body
            if digest_of(body) != digest:
                problems.append(f"{repository.name}:{tag} is {digest_of(body)}, acknowledged {digest}")
        for digest, pushed in repository.manifests.items():
            body = get_manifest(conn, repository.name, digest).body
            if body != pushed.manifest:
                problems.append(f"{repository.name}@{digest}: other bytes")
            pull_blobs(conn, repository.name, pushed)
        for digest in repository.deleted:
            status = conn.request("GET", f"/v2/{repository.name}/manifests/{digest}").status
            if status != 404:
                problems.append(f"{repository.name}@{digest} was deleted and answers {status}")
        listed = json.loads(expect(conn.request("GET", f"/v2/{repository.name}/tags/list"), 200, "tags").body)
        if sorted(listed.get("tags") or []) != sorted(repository.tags):
            problems.append(f"{repository.name}: tags {listed.get('tags')}, acknowledged {sorted(repository.tags)}")
    except ProtocolError as error:
        problems.append(f"{repository.name}: {error}")
    finally:
        conn.close()
    return problems


def stored_digests(server: servers.Server) -> set[str]:
    root = server.directory / "data" / "storage" / "blobs"
    return {f"{algorithm.name}:{path.name}" for algorithm in root.iterdir() for path in algorithm.glob("*/*")}


def expected_digests(repositories: list[Repository]) -> set[str]:
    kept = set()
    for repository in repositories:
        for digest, pushed in repository.manifests.items():
            kept.add(digest)
            kept.update(d for d, _ in pushed.blobs)
    return kept


# The run

def say(text: str = "") -> None:
    print(text, flush=True)


TABLE_HEADER = ("| minute | operations | errors | RSS MiB | open fds | manifest GET p99 ms |\n"
                "|--:|--:|--:|--:|--:|--:|")


def table_row(r: Row) -> str:
    return f"| {r.label} | {r.operations:,} | {r.errors} | {r.rss_mib:,.1f} | {r.fds} | {r.manifest_p99_ms:,.1f} |"


def run(minutes: float, work_dir: Path | None = None, keep: bool = False,
        rate: float = OPERATIONS_PER_SECOND, lanes: int = LANES) -> int:
    directory = work_dir or Path(tempfile.mkdtemp(prefix="portlog-soak-"))
    server = servers.start_portlog(directory / "portlog")
    try:
        return soak(server, minutes * 60, rate, lanes)
    finally:
        server.stop()
        if keep:
            say(f"\nkept {directory}")
        elif not work_dir:
            shutil.rmtree(directory, ignore_errors=True)


def soak(server: servers.Server, seconds: float, rate: float, lane_count: int) -> int:
    interval = 60.0 if seconds >= 120 else max(2.0, seconds / 6)
    say(f"# Portlog soak: {seconds / 60:g} minutes, {lane_count} lanes, {rate:g} operations/s, "
        f"rows every {interval:g} s (server pid {server.pid}, {os.cpu_count()} cores)\n")
    meter, gc_runs = Meter(), []
    base_layers = [os.urandom(16 * KIB) for _ in range(BASE_LAYERS)]
    lanes = [Lane(n, server, meter, base_layers) for n in range(lane_count)]
    admin = Admin(server)
    say(TABLE_HEADER)
    say(table_row(meter.sample("start", server.pid)))
    started = time.monotonic()
    until = started + seconds
    threads = [threading.Thread(target=lane.run, args=(until, lane_count / rate), daemon=True) for lane in lanes]
    threads.append(threading.Thread(target=gc_loop, args=(admin, until, max(interval, 10.0), meter, gc_runs),
                                    daemon=True))
    for thread in threads:
        thread.start()
    for n in range(1, int(seconds // interval) + 1):
        time.sleep(max(0.0, started + n * interval - time.monotonic()))
        say(table_row(meter.sample(f"{n * interval / 60:.2f}" if interval < 60 else str(n), server.pid)))
    for thread in threads:
        thread.join()
    say(table_row(meter.sample("end of load", server.pid)))
    time.sleep(IDLE_SECONDS)
    say(table_row(meter.sample(f"idle {IDLE_SECONDS} s", server.pid)))
    counts = ", ".join(f"{count:,} {name}" for name, count in meter.counts.items())
    say(f"\nOperations: {meter.total_operations:,} ({counts}); {len(gc_runs)} online GC runs; "
        f"errors: {meter.total_errors}")
    for line in meter.first_errors:
        say(f"  error: {line}")
    problems = consistency(server, [r for lane in lanes for r in lane.repositories], admin)
    return 1 if problems or meter.total_errors else 0


def consistency(server: servers.Server, repositories: list[Repository], admin: Admin) -> list[str]:
    say("\n## Consistency\n")
    with ThreadPoolExecutor(LANES) as pool:
        problems = [p for found in pool.map(lambda r: check_repository(server, r), repositories) for p in found]
    live = sum(len(r.manifests) for r in repositories)
    say(f"- {sum(r.pushes for r in repositories):,} pushes acknowledged; {live:,} manifests live, each read "
        f"back with its blobs; {sum(len(r.tags) for r in repositories)} tags where the ledger says")
    say(f"- {sum(len(r.deleted) for r in repositories):,} manifests deleted, each answering 404")
    time.sleep(1.5)  # a grace period is at least a second
    run = admin.gc_now(0)
    stored, expected = stored_digests(server), expected_digests(repositories)
    missing, extra = expected - stored, stored - expected
    say(f"- final GC (grace 0) freed {run['blobs']} blobs; storage holds {len(stored):,} blobs, "
        f"the live manifests reference {len(expected):,}: {len(missing)} missing, {len(extra)} extra")
    problems += [f"referenced but not stored: {d}" for d in sorted(missing)]
    problems += [f"stored but not referenced: {d}" for d in sorted(extra)]
    for line in problems[:20]:
        say(f"  PROBLEM: {line}")
    say("\nConsistent." if not problems else f"\n{len(problems)} problems.")
    return problems
