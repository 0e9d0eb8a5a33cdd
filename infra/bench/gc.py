"""`python -m infra.bench.gc`: online garbage collection on a synthetic store (docs/gc.md,
docs/performance.md "Garbage collection").

A benchmark, not a timed test: it prints figures and checks correctness, it asserts nothing
about speed.

1. Setup (timed on its own, in this process, no HTTP): an embedded Portlog in a new data
   directory; `--manifests` manifests in repositories of 10, each a config and 4 layers:
   one base layer shared across repositories, 3 of its own. The remaining blobs up to `--blobs`
   are abandoned uploads: stored and linked into a repository, referenced by no manifest.
   Bytes go through the blob store, links and manifests through the registry's commands (the
   event log is real). Then every other repository is deleted and the read models catch up.
2. GC (in a fresh child process, so that its memory figures are the collection's alone): a
   dry run, then a real run, both with grace period 0, as `portlog gc run` does them
   (`GcJobs.start(..., background=False)`). For each: wall time, blobs and bytes freed
   (from the GC read model), events written, and the peak resident memory during the run
   (VmHWM, reset just before it through /proc/self/clear_refs).
3. Checks: storage holds exactly `ReferencesView.kept()`; both runs freed exactly what the
   setup made collectable. Exit status 1 when a check fails.

`--profile` runs each GC run under cProfile and prints the 25 functions with the most
cumulative time (the timings are then the profiler's, not the benchmark's).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFESTS_PER_REPOSITORY = 10
OWN_LAYERS = 3  # per manifest, besides the shared base layer
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PROFILE_TOP = 25
MIB = 2**20


# The synthetic store

@dataclass
class Image:
    tag: str
    manifest: bytes
    digest: str


@dataclass
class Repo:
    name: str
    deleted: bool
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> bytes, everything linked
    images: list[Image] = field(default_factory=list)


@dataclass
class Store:
    repositories: list[Repo]
    shared_layers: int
    abandoned: int

    def blobs(self) -> dict[str, bytes]:
        return {d: data for repo in self.repositories for d, data in repo.blobs.items()}

    def expected_kept(self) -> set[str]:
        """Digests a collection with no grace period must leave: the manifests of the
        repositories not deleted and the blobs their manifests reference."""
        kept = set()
        for repo in self.repositories:
            if not repo.deleted:
                for image in repo.images:
                    doc = json.loads(image.manifest)
                    kept.add(image.digest)
                    kept.update(d["digest"] for d in (doc["config"], *doc["layers"]))
        return kept

    def expected_freed(self) -> tuple[int, int]:
        """(digests, bytes) the first collection frees: everything stored and not kept."""
        stored = self.blobs() | {i.digest: i.manifest for r in self.repositories for i in r.images}
        kept = self.expected_kept()
        freed = {d: len(data) for d, data in stored.items() if d not in kept}
        return len(freed), sum(freed.values())


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _content(kind: str, number: int) -> bytes:
    """Tiny and distinct; 60 to about 560 bytes, so that bytes freed is not just a count."""
    head = f"portlog gc bench {kind} {number}\n".encode()
    return head + b"." * (number * 37 % 512)


def _descriptor(media_type: str, data: bytes) -> dict:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}


def plan(manifests: int, blobs: int) -> Store:
    """Repositories of 10 manifests; the odd-numbered ones are to be deleted. Manifest j of
    repository r uses base layer (3r + j) mod S, so every base layer is shared by repositories
    deleted and kept (reference counting decides whether it goes)."""
    count = max(1, -(-manifests // MANIFESTS_PER_REPOSITORY))
    shared = max(2, manifests // 20)
    referenced = manifests * (1 + OWN_LAYERS) + min(shared, manifests)
    if blobs < referenced:
        raise ValueError(f"--blobs must be at least {referenced} for {manifests} manifests "
                         f"(a config and {OWN_LAYERS} own layers each, and {shared} shared base layers)")
    bases = [_content("base layer", b) for b in range(shared)]
    used_bases = set()
    repos = [Repo(f"bench/app-{r:05d}", deleted=r % 2 == 1) for r in range(count)]
    for m in range(manifests):
        r, j = divmod(m, MANIFESTS_PER_REPOSITORY)
        repo = repos[r]
        config = json.dumps({"architecture": "amd64", "os": "linux", "bench": m}).encode()
        used_bases.add((3 * r + j) % shared)
        layers = [bases[(3 * r + j) % shared]] + [_content("layer", m * OWN_LAYERS + k) for k in range(OWN_LAYERS)]
        for data in (config, *layers):
            repo.blobs[digest_of(data)] = data
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _descriptor(OCI_CONFIG, config),
            "layers": [_descriptor(OCI_LAYER, layer) for layer in layers],
        }).encode()
        repo.images.append(Image(f"v{j}", manifest, digest_of(manifest)))
    distinct = len({d for repo in repos for d in repo.blobs})
    abandoned = blobs - distinct
    for a in range(abandoned):
        data = _content("abandoned upload", a)
        repos[a % count].blobs[digest_of(data)] = data
    return Store(repos, len(used_bases), abandoned)


# Phase 1: setup, in this process

def _services(data_dir: Path):
    from adapters.passwords import Argon2SecretHasher
    from config.bootstrap import bootstrap
    from config.settings import Settings

    return bootstrap(Settings(data_dir=data_dir, admin_password="x"), hasher=Argon2SecretHasher(fast=True))


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup(data_dir: Path, store: Store) -> dict:
    from domain.context import RequestContext
    from domain.repository import Repository

    ctx = RequestContext("admin", "gc-bench")
    started = time.perf_counter()
    services = _services(data_dir)
    try:
        stored: set[str] = set()
        for number, repo in enumerate(store.repositories, 1):
            for digest, data in repo.blobs.items():
                if digest not in stored:
                    services.blobs.put(digest, data)
                    stored.add(digest)
            links = [(digest, len(data)) for digest, data in repo.blobs.items()]

            def link_all(aggregate, links=links):  # one command links all of them
                for digest, size in links:
                    aggregate.link_blob(digest, size, ctx)

            services.registry.update(Repository.create_id(repo.name), link_all,
                                     create=lambda name=repo.name: Repository.create(name, ctx))
            for image in repo.images:
                services.artifacts.push_manifest(repo.name, image.tag, image.manifest, OCI_MANIFEST, ctx)
            if number % 100 == 0 or number == len(store.repositories):
                _progress(f"setup: {number}/{len(store.repositories)} repositories pushed "
                          f"({time.perf_counter() - started:.1f} s)")
        pushed = time.perf_counter()
        for repo in store.repositories:
            if repo.deleted:
                services.trash.delete_repository(repo.name, ctx)
        deleted = time.perf_counter()
        _progress(f"setup: {sum(r.deleted for r in store.repositories)} repositories deleted; "
                  "read models catching up")
        services.projections.catch_up()
        caught_up = time.perf_counter()
        digests = {b.digest: b.size for b in services.blobs.stored_blobs()}
        return {
            "seconds": round(caught_up - started, 2),
            "push_seconds": round(pushed - started, 2),
            "delete_seconds": round(deleted - pushed, 2),
            "catch_up_seconds": round(caught_up - deleted, 2),
            "events": services.registry.recorder.max_notification_id(),
            "stored_digests": len(digests),
            "stored_bytes": sum(digests.values()),
        }
    finally:
        services.close()


# Phase 2: the collection, in a child process of its own

def _status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _profile_text(profiler: cProfile.Profile, path: Path) -> str:
    profiler.dump_stats(path)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(PROFILE_TOP)
    return out.getvalue()


def _topics(recorder, start: int, stop: int) -> dict[str, int]:
    """How many events of each topic the log holds in (start, stop]."""
    counts: Counter[str] = Counter()
    position = start + 1
    while position <= stop:
        page = recorder.select_notifications(position, 1000, stop=stop)
        if not page:
            break
        counts.update(n.topic.rsplit(":", 1)[-1] for n in page)
        position = page[-1].id + 1
    return dict(counts.most_common())


def _one_run(services, dry_run: bool, profile_to: Path | None, reset: bool) -> dict:
    from domain.context import RequestContext

    ctx = RequestContext("admin", "gc-bench")
    before = services.registry.recorder.max_notification_id()
    if reset:
        _reset_peak()
    profiler = cProfile.Profile() if profile_to else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    run, _ = services.gc_jobs.start(0, dry_run, "cli", ctx, background=False)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    after = services.registry.recorder.max_notification_id()
    services.projections.catch_up()
    row = services.gc.run_by_uuid(str(run.id))
    result = {
        "seconds": round(seconds, 2),
        "status": row.status if row else "unknown",
        "error": row.error if row else "no run in the GC read model",
        "blobs": row.blobs if row else 0,
        "bytes": row.bytes if row else 0,
        "orphans": row.orphans if row else 0,
        "events_written": after - before,
        "events_by_type": _topics(services.registry.recorder, before, after),
        "peak_rss_mib": round(peak / 1024, 1),
    }
    if profiler:
        result["profile"] = _profile_text(profiler, profile_to)
        result["profile_file"] = str(profile_to)
    return result


def gc_phase(data_dir: Path, profile_dir: Path | None) -> dict:
    services = _services(data_dir)
    try:
        services.projections.catch_up()
        time.sleep(1.1)  # domain.collector.MIN_IDLE_SECONDS: nothing touched in the last second goes
        rss_before, startup_peak = _status_kib("VmRSS"), _status_kib("VmHWM")
        reset = _reset_peak()
        dry = _one_run(services, True, profile_dir / "gc-dry-run.prof" if profile_dir else None, reset)
        real = _one_run(services, False, profile_dir / "gc-real-run.prof" if profile_dir else None, reset)
        after_runs = _status_kib("VmHWM")
        stored = {b.digest for b in services.blobs.stored_blobs()}
        kept = set(services.references.kept())
        return {
            "rss_before_gc_mib": round(rss_before / 1024, 1),
            "startup_peak_rss_mib": round(startup_peak / 1024, 1),
            "peak_after_runs_mib": round(after_runs / 1024, 1),
            "peak_with_checks_mib": round(_status_kib("VmHWM") / 1024, 1),
            "peak_reset": reset,
            "dry_run": dry,
            "real_run": real,
            "stored_after": len(stored),
            "kept": len(kept),
            "missing": sorted(kept - stored)[:10],  # kept but not stored: collected by mistake
            "extra": sorted(stored - kept)[:10],  # stored but not kept: left behind
            "storage_equals_references": stored == kept,
        }
    finally:
        services.close()


def _run_child(data_dir: Path, profile_dir: Path | None) -> dict:
    """The GC phase in a new interpreter. Its memory is read from its own /proc/self/status:
    ru_maxrss would not do, since a child started by fork (vfork) and exec inherits the
    parent's high-water mark (this process holds the whole plan)."""
    result_file = data_dir / "gc-bench-result.json"
    command = [sys.executable, "-m", "infra.bench.gc", "--phase", "gc", "--data-dir", str(data_dir),
               "--result", str(result_file)] + (["--profile-dir", str(profile_dir)] if profile_dir else [])
    completed = subprocess.run(command, cwd=REPO_ROOT)
    if completed.returncode != 0:
        raise RuntimeError(f"the GC phase exited with status {completed.returncode}")
    return json.loads(result_file.read_text())


# Report

def _machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}",
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def checks(report: dict) -> dict[str, bool]:
    dry, real = report["dry_run"], report["real_run"]
    expected = report["expected_freed"]
    return {
        "both runs succeeded": dry["status"] == "succeeded" and real["status"] == "succeeded",
        "storage equals ReferencesView.kept()": report["storage_equals_references"],
        "real run freed what the setup made collectable": (real["blobs"], real["bytes"]) == (
            expected["blobs"], expected["bytes"]),
        "dry run found what the real run freed": (dry["blobs"], dry["bytes"]) == (real["blobs"], real["bytes"]),
        "no orphans": dry["orphans"] == 0 and real["orphans"] == 0,
    }


def table(report: dict) -> str:
    setup_, dry, real = report["setup"], report["dry_run"], report["real_run"]
    s = report["store"]
    lines = [
        f"# Garbage collection: {s['manifests']:,} manifests, {s['blobs']:,} blobs",
        "",
        f"{s['repositories']:,} repositories ({s['repositories_deleted']:,} deleted), "
        f"{s['shared_layers']:,} base layers shared across repositories, {s['abandoned_uploads']:,} "
        f"abandoned uploads; {setup_['stored_digests']:,} digests stored ({setup_['stored_bytes']:,} bytes, "
        f"manifests included), {setup_['events']:,} events in the log. Machine: {report['machine']['cpus']} "
        f"vCPU, {report['machine']['cpu']}, Python {report['machine']['python']}; load average at the "
        f"start {report['machine']['load_average'][0]}.",
        "",
        "| figure | dry run | real run |",
        "|---|--:|--:|",
        f"| wall time, s | {dry['seconds']:,.2f} | {real['seconds']:,.2f} |",
        f"| blobs freed | {dry['blobs']:,} | {real['blobs']:,} |",
        f"| bytes freed | {dry['bytes']:,} | {real['bytes']:,} |",
        f"| blobs per second | {_rate(dry)} | {_rate(real)} |",
        f"| events written | {dry['events_written']:,} | {real['events_written']:,} |",
        f"| peak RSS during the run (VmHWM), MiB | {dry['peak_rss_mib']:,.1f} | {real['peak_rss_mib']:,.1f} |",
        f"| peak RSS above the RSS before GC, MiB | {dry['peak_rss_mib'] - report['rss_before_gc_mib']:,.1f} | "
        f"{real['peak_rss_mib'] - report['rss_before_gc_mib']:,.1f} |",
        "",
        f"Setup {setup_['seconds']:,.1f} s (pushes {setup_['push_seconds']:,.1f} s, deletes "
        f"{setup_['delete_seconds']:,.1f} s, read models catching up {setup_['catch_up_seconds']:,.1f} s). "
        f"GC process: RSS {report['rss_before_gc_mib']:,.1f} MiB before the dry run (peak "
        f"{report['startup_peak_rss_mib']:,.1f} MiB while starting), peak {report['peak_with_checks_mib']:,.1f} "
        "MiB after the real run including the checks"
        + ("" if report["peak_reset"] else " (VmHWM could not be reset: every peak includes startup)") + ".",
        "",
        "Events written by the real run: " + ", ".join(f"{t} {n:,}" for t, n in real["events_by_type"].items()),
        "",
    ]
    for name, passed in report["checks"].items():
        lines.append(f"* {'ok    ' if passed else 'FAILED'} {name}")
    if not report["storage_equals_references"]:
        lines.append(f"  stored {report['stored_after']:,}, kept {report['kept']:,}; kept but not stored "
                     f"(first 10): {report['missing']}; stored but not kept (first 10): {report['extra']}")
    for run in ("dry_run", "real_run"):
        if report[run].get("error"):
            lines.append(f"  {run}: {report[run]['error']}")
        if "profile" in report[run]:
            lines += ["", f"## cProfile of the {run.replace('_', ' ')} (top {PROFILE_TOP} by cumulative time; "
                          f"{report[run]['profile_file']})", "", "```", report[run]["profile"].strip(), "```"]
    return "\n".join(lines)


def _rate(run: dict) -> str:
    return f"{run['blobs'] / run['seconds']:,.0f}" if run["seconds"] > 0 else "-"


# Command line

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.gc", description=(
        "Benchmarks online garbage collection on a synthetic embedded store: setup time, dry "
        "and real run durations, peak memory, blobs and bytes freed, events written; checks "
        "that storage then holds exactly what the references read model keeps."))
    parser.add_argument("--manifests", type=int, default=10_000, help="manifests (default 10,000), 10 per repository")
    parser.add_argument("--blobs", type=int, default=50_000, help="distinct blobs (default 50,000)")
    parser.add_argument("--data-dir", type=Path,
                        help="an empty or new directory for the store, kept afterwards (default: a temporary "
                             "directory, removed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--profile", action="store_true",
                        help=f"run each GC run under cProfile; print the top {PROFILE_TOP} functions by "
                             "cumulative time, and keep the .prof files (in the data directory, or else in a "
                             "new temporary directory)")
    parser.add_argument("--phase", choices=["all", "gc"], default="all", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.manifests < 1:
        parser.error("--manifests must be at least 1")
    if args.phase == "gc" and not (args.data_dir and args.result):
        parser.error("--phase gc needs --data-dir and --result")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phase == "gc":
        args.result.write_text(json.dumps(gc_phase(args.data_dir, args.profile_dir)))
        return 0
    try:
        store = plan(args.manifests, args.blobs)
    except ValueError as error:
        print(f"python -m infra.bench.gc: {error}", file=sys.stderr)
        return 2
    if args.data_dir and args.data_dir.exists() and any(args.data_dir.iterdir()):
        print(f"python -m infra.bench.gc: {args.data_dir} is not empty", file=sys.stderr)
        return 2
    machine = _machine()  # the load average before this run adds to it
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="portlog-gc-bench-"))
    profile_dir = (args.data_dir or Path(tempfile.mkdtemp(prefix="portlog-gc-profile-"))) if args.profile else None
    try:
        setup_figures = setup(data_dir, store)
        _progress(f"setup: {setup_figures['seconds']:.1f} s; collecting in a new process")
        gc_figures = _run_child(data_dir, profile_dir)
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    freed_blobs, freed_bytes = store.expected_freed()
    report = {
        "store": {"manifests": args.manifests, "blobs": args.blobs, "repositories": len(store.repositories),
                  "repositories_deleted": sum(r.deleted for r in store.repositories),
                  "shared_layers": store.shared_layers, "abandoned_uploads": store.abandoned},
        "machine": machine,
        "setup": setup_figures,
        "expected_freed": {"blobs": freed_blobs, "bytes": freed_bytes},
        **gc_figures,
    }
    report["checks"] = checks(report)
    report["ok"] = all(report["checks"].values())
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
