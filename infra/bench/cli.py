"""`python -m infra.bench`: the order of a run.

1. describe the machine and measure its limits;
2. start the servers (--servers; by default Portlog and Distribution with their default
   logging, both without access logs, and Portlog with one worker), each on a free loopback
   port with its own directory;
3. for each workload, set up on each server (untimed), then measure it on each server, in
   rounds (--rounds, default 3) whose server order alternates (first to last; last to first;
   ...), so a drift of the machine over the run weighs on all;
4. read each server's peak resident memory, stop them, print a table for each pair of
   COMPARISONS that ran: the median of the rounds, and each ratio's median and range over the
   rounds; then the CPU tables."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from infra.bench import in_process, limits, machine, profile, report, servers, soak, workloads
from infra.bench.report import Reading

STARTERS = {"portlog": servers.start_portlog_default, "distribution": servers.start_distribution_default,
            "portlog-1-worker": servers.start_portlog_one_worker,
            "portlog-no-access-log": servers.start_portlog_without_access_log,
            "distribution-no-access-log": servers.start_distribution_without_access_log,
            "portlog-scale-out": servers.start_portlog_scale_out,
            "portlog-no-metrics": servers.start_portlog_without_metrics, "portlog-traced": servers.start_portlog_traced,
            "portlog-traced-sampled": servers.start_portlog_sampled}
# Both servers with their default logging, both without access logs, and Portlog with one worker.
DEFAULT_SERVERS = "portlog,distribution,portlog-1-worker,portlog-no-access-log,distribution-no-access-log"
# (section title, first server, second server): a table (and its CPU table) for each pair run.
COMPARISONS = [
    ("Results", "Portlog", "Distribution"),
    ("Access logs off", servers.NO_ACCESS_LOG, servers.DISTRIBUTION_NO_ACCESS_LOG),
    ("One worker against the default", "Portlog", servers.ONE_WORKER),
    ("Scale-out node (PostgreSQL + S3) against embedded", report.SCALE_OUT, "Portlog"),
]
# --overhead: metrics and tracing off, metrics on (the default), both on; on what the issue names.
OVERHEAD_SERVERS = "portlog-no-metrics,portlog,portlog-traced,portlog-traced-sampled"
OVERHEAD_WORKLOADS = "manifest-get,pull-small"


OVERHEAD_LEGEND = (f"All four run Portlog's default workers and access log. "
                   f"{servers.NO_METRICS}: PORTLOG_METRICS_ENABLED=false, no OTEL_* variable. Portlog: metrics on "
                   f"(the default), tracing off. {servers.TRACED}: metrics on and every request traced "
                   f"(the default sampler), spans exported over OTLP/HTTP to a receiver in the benchmark's "
                   f"process. {servers.SAMPLED}: the same with OTEL_TRACES_SAMPLER=parentbased_traceidratio, "
                   f"OTEL_TRACES_SAMPLER_ARG=0.1. cost: how much lower (higher, for latencies) than "
                   f"{servers.NO_METRICS}. The in-process row: both applications in one process, requests "
                   f"handed straight to them, {in_process.ROUNDS} rounds alternating (infra/bench/in_process.py): "
                   f"the cost on the request path alone, without the machine's drift between servers.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [w.name for w in workloads.all_workloads(workloads.QUICK)]
    parser = argparse.ArgumentParser(prog="python -m infra.bench", description=(
        "Benchmarks Portlog against CNCF Distribution (docker-registry) on loopback, "
        "next to the machine's limits, and prints Markdown tables."))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds per workload (smoke test)")
    parser.add_argument("--only", default="", help=f"comma-separated workloads among: {', '.join(names)}")
    parser.add_argument("--servers", default=DEFAULT_SERVERS,
                        help=f"comma-separated (default {DEFAULT_SERVERS}): portlog and distribution with "
                             f"their default logging, portlog-1-worker (PORTLOG_WORKERS=1), portlog-no-access-log "
                             f"and distribution-no-access-log (each pair run gets its table), and "
                             f"portlog-scale-out (a node on PostgreSQL and S3, compared with the embedded "
                             f"Portlog in a table of its own), portlog-no-metrics, portlog-traced and "
                             f"portlog-traced-sampled (see --overhead)")
    parser.add_argument("--overhead", action="store_true",
                        help=f"the cost of metrics and tracing: --servers {OVERHEAD_SERVERS} (metrics and "
                             f"tracing off; metrics on; both on, spans to a local OTLP receiver; the same, a "
                             f"tenth of the requests sampled) and, unless "
                             f"--only says otherwise, --only {OVERHEAD_WORKLOADS}")
    parser.add_argument("--rounds", type=int,
                        help="measure each workload this many times on every server, alternating the "
                             "servers' order, and report medians and ranges (default 3; 1 with --quick)")
    parser.add_argument("--no-limits", action="store_true", help="skip the machine limits")
    parser.add_argument("--portlog-ref", help="benchmark this commit (git archive) instead of the working tree")
    parser.add_argument("--portlog-source", type=Path, default=servers.REPO_ROOT,
                        help="directory whose api/, domain/, ... run as Portlog (default: this checkout)")
    parser.add_argument("--work-dir", type=Path, help="where data directories go (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and server logs")
    parser.add_argument("--seconds", type=float, help="duration of each timed Python run")
    parser.add_argument("--wrk-seconds", type=int, help="duration of each wrk run")
    parser.add_argument("--processes", type=int, help="client processes of the Python load generator")
    parser.add_argument("--soak", type=float, metavar="MINUTES",
                        help="instead of the comparison: Portlog alone under mixed load for MINUTES, a table of "
                             "RSS, open fds and manifest p99 per minute, then a consistency check (soak.py)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record Portlog with py-spy during each timed run into DIR, and summarize")
    args = parser.parse_args(argv)
    if args.overhead:
        args.servers, args.only = OVERHEAD_SERVERS, args.only or OVERHEAD_WORKLOADS
    args.only = [n for n in args.only.split(",") if n]
    unknown = set(args.only) - set(names)
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(sorted(unknown))}; choose among {', '.join(names)}")
    if args.profile and not profile.py_spy():
        parser.error("--profile needs py-spy (pip install py-spy into .venv)")
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rounds < 1:
        parser.error("--rounds takes a number of at least 1")
    args.servers = [s for s in args.servers.split(",") if s]
    if not args.servers or set(args.servers) - set(STARTERS):
        parser.error(f"--servers takes {', '.join(STARTERS)}")
    return args


def sizes_for(args: argparse.Namespace) -> workloads.Sizes:
    sizes = workloads.QUICK if args.quick else workloads.FULL
    overrides = {"seconds": args.seconds, "wrk_seconds": args.wrk_seconds, "processes": args.processes}
    return dataclasses.replace(sizes, **{k: v for k, v in overrides.items() if v is not None})


def say(text: str = "") -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.soak is not None:
        return soak.run(args.soak, args.work_dir, args.keep)
    sizes = sizes_for(args)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="portlog-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        source = args.portlog_source
        if args.portlog_ref:
            source = servers.export_commit(args.portlog_ref, work_dir / "portlog-source")
        say(f"# Portlog benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
            f"{' (--quick: tiny sizes, not a measurement)' if args.quick else ''}\n")
        for name, value in machine.describe(work_dir, source, args.portlog_ref):
            say(f"- {name}: {value}")
        found = [] if args.no_limits else measure_limits(work_dir, args.quick)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            workloads.Workload.profile_dir = args.profile
        readings = run_workloads(args, sizes, work_dir, source)
        if servers.NO_METRICS in readings and "Portlog" in readings:
            measure_in_process(readings, source, args.quick)
        pairs = comparisons(readings)
        for title, first, second in pairs:
            say(f"\n## {title}\n")
            if title == pairs[0][0] and args.rounds > 1:
                say(f"Each figure: the median of {args.rounds} rounds, the servers' order alternating; each "
                    f"ratio: the median of the rounds' ratios, with their range in parentheses.\n")
            say(report.results_table(readings, first, second))
        if servers.TRACED in readings or servers.NO_METRICS in readings:
            say("\n## Observability overhead (metrics, tracing)\n")
            say(report.overhead_table(readings, servers.NO_METRICS, "Portlog", servers.TRACED, servers.SAMPLED))
            say("\n" + OVERHEAD_LEGEND)
            for name in (servers.TRACED, servers.SAMPLED):
                for reading in readings.get(name, []):
                    if reading.unit == "spans":
                        say(f"{name}: {reading.value:,.0f} spans received by the local OTLP receiver.")
        say("\n" + SERVERS_LEGEND)
        say("\nThroughput in MiB/s (2^20 bytes per second); latencies per request from the client's side.")
        say("Tools: `python Np×C` = C keep-alive connections spread over N client processes "
            "(infra/bench/load.py); `wrk 2t×C` = wrk with 2 threads and C connections on the same URL.")
        if pairs:
            say("\n## CPU use during each run (cores = CPU seconds / wall seconds; the machine has "
                f"{os.cpu_count()}; a server's: its whole process tree)\n")
        for title, first, second in pairs:
            if len(pairs) > 1:
                say(f"\n### {title}\n")
            say(report.cpu_table(readings, first, second))
        if found:
            say("\n" + ceilings(found))
        problems = report.notes(readings)
        if problems:
            say("\n## Notes\n")
            for line in problems:
                say(f"- {line}")
        if args.profile:
            print_profiles(args.profile)
        say(f"\nTotal time {time.monotonic() - started:.0f} s; load average at the end "
            + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        return 1 if any(r.errors for rs in readings.values() for r in rs) else 0
    finally:
        if args.keep:
            say(f"\nkept {work_dir}")
        elif not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)


SERVERS_LEGEND = (
    "Servers: Portlog = `portlog serve` with its defaults (the embedded store, one worker process per CPU, "
    "an access line per request); Distribution = `docker-registry serve` with its default logging (level info: "
    "a \"response completed\" line and an access line per request); both write their lines to a file. "
    f"{servers.NO_ACCESS_LOG}: PORTLOG_ACCESS_LOG=false. {servers.DISTRIBUTION_NO_ACCESS_LOG}: "
    "`log: {level: error, accesslog: {disabled: true}}`, no line per request. "
    f"{servers.ONE_WORKER}: PORTLOG_WORKERS=1, one process. Peak resident memory: the sum of the server's "
    "processes' VmHWM (a supervisor and its workers), and the largest worker's (for one process, its own).")


def comparisons(readings: dict[str, list[Reading]]) -> list[tuple[str, str, str]]:
    """The tables to print: each pair of COMPARISONS whose two servers ran; when none did and
    this is no overhead run, the first two servers run (or the first alone)."""
    pairs = [pair for pair in COMPARISONS if pair[1] in readings and pair[2] in readings]
    overhead = servers.TRACED in readings or servers.NO_METRICS in readings
    if not pairs and not overhead:
        names = [*readings, "Distribution"]
        pairs = [("Results", names[0], names[1])]
    return pairs


def measure_in_process(readings: dict[str, list[Reading]], source: Path, quick: bool) -> None:
    """The metrics' cost on the request path alone: both applications in one process (in_process.py)."""
    say(f"\n- {in_process.FIGURE}: metrics off and on in one process, alternating ...")
    found = in_process.measure(source, quick)
    for server, key in ((servers.NO_METRICS, "off"), ("Portlog", "on")):
        for round_, micros in enumerate(found[key]):
            readings[server].append(Reading(in_process.FIGURE, in_process.UNIT, in_process.TOOL, micros,
                                            lower_is_better=True, round=round_))
    say("  " + ", ".join(f"{key}: {' '.join(f'{v:.0f}' for v in values)} µs" for key, values in found.items()))


def print_profiles(directory: Path) -> None:
    say(f"\n## Portlog profiles (py-spy, {directory})")
    for path in sorted(directory.glob("*.txt")):
        waits, rows = profile.summarize(path)
        say(f"\n### {path.stem} ({waits:.0%} of the samples were waits; shares of the others)\n")
        say("| function (line sampled) | self | total |\n|---|--:|--:|")
        for name, own, total in rows:
            say(f"| {name} | {own:.1%} | {total:.1%} |")


def measure_limits(work_dir: Path, quick: bool) -> list[limits.Limit]:
    say("\n## Machine limits\n")
    found = limits.measure(work_dir, *((16, 64, 16) if quick else (256, 1024, 512)))
    say(report.limits_table([(x.name, x.mib_per_second, x.how) for x in found]))
    return found


def ceilings(found: list[limits.Limit]) -> str:
    mib = {x.kind: x.mib_per_second for x in found}
    push = min(mib["sha256"], mib["write"], mib["loopback"])
    return (f"Ceilings: a push needs receive + sha256 + write: at most {push:,.0f} MiB/s, the slowest of "
            f"the three (or less, when one thread does them one after the other). A pull needs read + send: "
            f"at most {mib['loopback']:,.0f} MiB/s from the page cache, where the benchmark's blobs are, "
            f"{min(mib['read'], mib['loopback']):,.0f} MiB/s from disk.")


def run_workloads(args, sizes, work_dir: Path, source: Path) -> dict[str, list[Reading]]:
    selected = [w for w in workloads.all_workloads(sizes) if not args.only or w.name in args.only]
    started: list[servers.Server] = []
    readings: dict[str, list[Reading]] = {}
    try:
        for key in args.servers:
            directory = work_dir / key
            server = STARTERS[key](directory, source)
            started.append(server)
            readings[server.name] = []
            say(f"- {server.name}: pid {server.pid}, {server.url}, data in {directory}")
        say("\n## Runs\n")
        for workload in selected:
            for server in started:
                t0 = time.monotonic()
                workload.setup(server)
                setup_seconds = time.monotonic() - t0
                if setup_seconds > 1:
                    say(f"  ({server.name} setup for {workload.name} took {setup_seconds:.1f} s)")
            for round_ in range(args.rounds if workload.repeatable else 1):
                workload.round = round_
                for server in started if round_ % 2 == 0 else started[::-1]:
                    for reading in workload.measure(server):
                        reading.round = round_
                        readings[server.name].append(reading)
                        say(f"- {server.name:12} {reading.figure}{_round_label(args, round_)}: {_shown(reading)} "
                            f"[{reading.tool}]" + (f" ERRORS: {reading.note}" if reading.errors else ""))
        for server in started:
            processes, workers = len(server.processes()), len(server.workers())
            say(f"- {server.name}: {processes} process{'es' if processes > 1 else ''}, "
                f"{workers} serving requests")
            readings[server.name] += [
                Reading(WHOLE_SERVER_MEMORY, "MiB", "/proc", server.peak_rss_bytes() / 2**20, lower_is_better=True),
                Reading(WORKER_MEMORY, "MiB", "/proc", server.largest_worker_peak_rss_bytes() / 2**20,
                        lower_is_better=True)]
    finally:
        for server in started:
            server.stop()  # a traced server sends its last spans as it stops
    for server in started:
        if server.receiver is not None:
            readings[server.name].append(Reading("spans received by the local OTLP receiver over the whole run",
                                                 "spans", "otlp_receiver", len(server.receiver.received())))
    return readings


WHOLE_SERVER_MEMORY = "peak resident memory over the whole run, whole server (sum of its processes' VmHWM)"
WORKER_MEMORY = "peak resident memory over the whole run, largest worker process (VmHWM)"


def _round_label(args, round_: int) -> str:
    return f" (round {round_ + 1}/{args.rounds})" if args.rounds > 1 else ""


def _shown(reading: Reading) -> str:
    return f"— ({reading.absent})" if reading.absent else f"{reading.value:,.2f} {reading.unit}"


if __name__ == "__main__":
    sys.exit(main())
