"""`python -m infra.bench.follower_lag [--seconds N] [--rate PUSHES_PER_SECOND]`: how long a push
to the leader takes to be pullable from a follower (docs/time-travel.md), under a steady push load.
The same measurement is the `follower-lag` workload of the main run (`python -m infra.bench
--only follower-lag`: `FollowerLag`, on the Portlog under test, which already holds the other
workloads' data).

Starts an embedded Portlog leader and an embedded follower of it (`portlog serve --follow`),
PUTs a new manifest (same blobs, a distinct annotation) to the leader at a steady rate over one
connection, and polls the follower's tag list every few milliseconds: each tag is timed from the
moment the leader answered 201 to the moment the follower lists it (the log shipped, the
manifest's bytes fetched, the read models caught up). Prints p50, p99 and max as a Markdown
table; a benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from infra.bench.protocol import Image, digest_of, push_blob, put_manifest
from infra.bench.relay_lag import numbered_manifests, percentile
from infra.bench.report import Reading
from infra.bench.servers import HOST, PROJECT, Server, _start, free_port, start_portlog
from infra.bench.workloads import Workload

REPOSITORY = f"{PROJECT}/follower-lag"
POLL_SECONDS = 0.005
ARRIVAL_TIMEOUT_SECONDS = 30.0
SETTLE_TAG = "settle"
LAG = "PUT answered 201 on the leader → tag listed by the follower"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.follower_lag", description=(
        "Follower lag from a manifest PUT on the leader to the tag listed by the follower, p50 and p99."))
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to push (default 10)")
    parser.add_argument("--rate", type=float, default=20.0, help="manifest PUTs per second (default 20)")
    return parser.parse_args(argv)


def start_follower(directory: Path, leader: Server, catch_up_timeout: float = 30.0) -> Server:
    """`portlog serve --follow` of the leader, on the leader's credentials, once it has shipped the
    leader's log as it stands (the leader's blobs included: long for a leader with much data)."""
    port = free_port()
    username, password = leader.credentials
    command = [sys.executable, "-m", "cli", "serve", "--host", HOST, "--port", str(port),
               "--data-dir", str(directory / "data"), "--no-access-log", "--follow", leader.url]
    env = {**_environ(), "PORTLOG_FOLLOW_USERNAME": username, "PORTLOG_FOLLOW_PASSWORD": password}
    server = _start("Portlog follower", command, port, directory, cwd=leader.source, env=env)
    server.credentials = leader.credentials  # the leader's accounts, once shipped
    try:
        _caught_up(server, catch_up_timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _caught_up(follower: Server, timeout: float) -> None:
    """Until the follower has shipped the leader's log as it stands (its accounts with it)."""
    basic = base64.b64encode(":".join(follower.credentials).encode()).decode()
    request = urllib.request.Request(f"{follower.url}/api/v1/follow", headers={"Authorization": f"Basic {basic}"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if json.loads(response.read())["lag_events"] == 0:
                    return
        except (urllib.error.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError("the follower did not catch up with the leader")


def _environ() -> dict[str, str]:
    """This environment without PORTLOG_* settings meant for another server."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PORTLOG_")}


class Arrivals:
    """When the follower first listed each tag (perf_counter), polled on a thread."""

    def __init__(self, follower: Server) -> None:
        self.follower = follower
        self.times: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="follower-lag-poller", daemon=True)

    def __enter__(self) -> Arrivals:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def wait_for(self, tags: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not tags <= self.times.keys() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _poll(self) -> None:
        conn = self.follower.connect()
        while not self._stop.wait(POLL_SECONDS):
            response = conn.request("GET", f"/v2/{REPOSITORY}/tags/list?n=10000")
            now = time.perf_counter()
            if response.status == 200:
                for tag in json.loads(response.body).get("tags") or ():
                    self.times.setdefault(tag, now)
        conn.close()


def settle(leader: Server, image: Image, arrivals: Arrivals, timeout: float) -> None:
    """Pushes the image's blobs and a first tag, and waits until the follower lists it: its read
    models have then caught up with everything the leader held before (they apply the log in order)."""
    conn = leader.connect()
    for blob in image.blobs:
        push_blob(conn, REPOSITORY, blob, digest_of(blob))
    put_manifest(conn, REPOSITORY, SETTLE_TAG, image.manifest)
    conn.close()
    arrivals.wait_for({SETTLE_TAG}, timeout)
    if SETTLE_TAG not in arrivals.times:
        raise RuntimeError(f"the follower did not list {REPOSITORY}:{SETTLE_TAG} within {timeout:g} s")


def push_steadily(leader: Server, manifests: list[bytes], rate: float) -> dict[str, tuple[float, float]]:
    """PUTs one manifest every 1/rate seconds; returns tag → (sent, answered), perf_counter times."""
    conn = leader.connect()
    times: dict[str, tuple[float, float]] = {}
    start = time.perf_counter()
    for n, manifest in enumerate(manifests):
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
        sent = time.perf_counter()
        put_manifest(conn, REPOSITORY, f"v{n}", manifest)
        times[f"v{n}"] = (sent, time.perf_counter())
    conn.close()
    return times


@dataclass
class Lag:
    """One steady push run: when each tag was sent and answered by the leader, and when the
    follower first listed it (perf_counter times)."""
    pushes: dict[str, tuple[float, float]]
    arrivals: dict[str, float]
    settle_seconds: float  # until the follower listed a first tag, before the timed pushes

    @property
    def arrived(self) -> list[str]:
        return [tag for tag in self.pushes if tag in self.arrivals]

    def intervals(self) -> dict[str, list[float]]:
        """Seconds, per push, of each interval the report shows (the lag itself first)."""
        pushes, arrivals, arrived = self.pushes, self.arrivals, self.arrived
        return {
            LAG: [arrivals[t] - pushes[t][1] for t in arrived],
            "PUT sent → tag listed by the follower": [arrivals[t] - pushes[t][0] for t in arrived],
            "PUT round trip on the leader (for comparison)": [pushes[t][1] - pushes[t][0] for t in pushes],
        }


def measure_lag(leader: Server, follower: Server, seconds: float, rate: float,
                settle_timeout: float = ARRIVAL_TIMEOUT_SECONDS) -> Lag:
    """Once the follower has settled, pushes to the leader at `rate` per second for `seconds` while
    polling the follower, then waits (up to ARRIVAL_TIMEOUT_SECONDS) for every tag to be listed there."""
    image = Image.build(b'{"architecture": "amd64", "os": "linux"}', [b"follower lag layer"])
    manifests = numbered_manifests(image, max(1, int(seconds * rate)))
    with Arrivals(follower) as arrivals:
        started = time.monotonic()
        settle(leader, image, arrivals, settle_timeout)
        settle_seconds = time.monotonic() - started
        pushes = push_steadily(leader, manifests, rate)
        arrivals.wait_for(set(pushes), ARRIVAL_TIMEOUT_SECONDS)
    return Lag(pushes, dict(arrivals.times), settle_seconds)


def report(lag: Lag, args: argparse.Namespace) -> str:
    pushes, arrived = lag.pushes, lag.arrived
    lines = [f"Follower lag: embedded leader and follower, {len(pushes)} manifest PUTs at {args.rate:g}/s for "
             f"{args.seconds:g} s (follower polled every {POLL_SECONDS * 1000:g} ms); {len(arrived)} of "
             f"{len(pushes)} tags arrived.", "",
             "| interval | p50 ms | p99 ms | max ms |", "|---|--:|--:|--:|"]
    for name, values in lag.intervals().items():
        if values:
            lines.append(f"| {name} | {percentile(values, 0.5) * 1000:.1f} | {percentile(values, 0.99) * 1000:.1f} "
                         f"| {max(values) * 1000:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="portlog-follower-lag-") as tmp:
        leader = start_portlog(Path(tmp) / "leader")
        try:
            follower = start_follower(Path(tmp) / "follower", leader)
            try:
                lag = measure_lag(leader, follower, args.seconds, args.rate)
            finally:
                follower.stop()
        finally:
            leader.stop()
    print(report(lag, args))
    return 0 if len(lag.arrived) == len(lag.pushes) else 1


class FollowerLag(Workload):
    """The same run against the Portlog under test (embedded or scale-out) as the leader, with an
    embedded follower of it started for the run and stopped after; untimed, the follower first
    ships everything the earlier workloads left. Distribution ships no log."""
    repeatable = False  # its own rounds, or a setup that is the measurement's
    name = "follower-lag"
    tool = "python 1×1 + embedded follower"
    catch_up_timeout = 900.0

    @property
    def figure(self) -> str:
        seconds, rate = self.sizes.follower_lag
        return (f"follower lag, PUT 201 on leader → tag listed by follower, {max(1, int(seconds * rate))} PUTs "
                f"at {rate:g}/s")

    def measure(self, server: Server) -> list[Reading]:
        if not server.name.startswith("Portlog"):
            return [Reading(self.figure, unit, self.tool, float("nan"), lower_is_better=True, absent="no log shipping")
                    for unit in ("p50 ms", "p99 ms")]
        directory = server.directory / "follower-lag"
        started = time.monotonic()
        follower = start_follower(directory, server, self.catch_up_timeout)
        try:
            catch_up = time.monotonic() - started
            lag = measure_lag(server, follower, *self.sizes.follower_lag, settle_timeout=self.catch_up_timeout)
        finally:
            follower.stop()
            shutil.rmtree(directory, ignore_errors=True)
        return self._readings(lag, catch_up)

    def _readings(self, lag: Lag, catch_up: float) -> list[Reading]:
        values, missing = lag.intervals()[LAG], len(lag.pushes) - len(lag.arrived)
        note = (f"the follower started and shipped the leader's log in {catch_up:.1f} s, its read models caught up "
                f"{lag.settle_seconds:.1f} s later (untimed)")
        if missing:
            note += f"; {missing} of {len(lag.pushes)} tags never reached it within {ARRIVAL_TIMEOUT_SECONDS:g} s"
        return [Reading(self.figure, "p50 ms", self.tool, percentile(values, 0.5) * 1000 if values else float("nan"),
                        lower_is_better=True, errors=missing, note=note),
                Reading(self.figure, "p99 ms", self.tool, percentile(values, 0.99) * 1000 if values else float("nan"),
                        lower_is_better=True, errors=missing)]


if __name__ == "__main__":
    raise SystemExit(main())
