"""`python -m infra.bench.follower_lag [--seconds N] [--rate PUSHES_PER_SECOND]`: how long a push
to the leader takes to be pullable from a follower (docs/time-travel.md), under a steady push load.

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
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from infra.bench.protocol import Image, digest_of, push_blob, put_manifest
from infra.bench.relay_lag import numbered_manifests, percentile
from infra.bench.servers import HOST, PROJECT, REPO_ROOT, Server, _start, free_port, start_portlog

REPOSITORY = f"{PROJECT}/follower-lag"
POLL_SECONDS = 0.005
ARRIVAL_TIMEOUT_SECONDS = 30.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.follower_lag", description=(
        "Follower lag from a manifest PUT on the leader to the tag listed by the follower, p50 and p99."))
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to push (default 10)")
    parser.add_argument("--rate", type=float, default=20.0, help="manifest PUTs per second (default 20)")
    return parser.parse_args(argv)


def start_follower(directory: Path, leader: Server) -> Server:
    port = free_port()
    username, password = leader.credentials
    command = [sys.executable, "-m", "cli", "serve", "--host", HOST, "--port", str(port),
               "--data-dir", str(directory / "data"), "--no-access-log", "--follow", leader.url]
    env = {**_environ(), "PORTLOG_FOLLOW_USERNAME": username, "PORTLOG_FOLLOW_PASSWORD": password}
    server = _start("Portlog follower", command, port, directory, cwd=REPO_ROOT, env=env)
    server.credentials = leader.credentials  # the leader's accounts, once shipped
    _caught_up(server)
    return server


def _caught_up(follower: Server, timeout: float = 30.0) -> None:
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


def push_steadily(leader: Server, manifests: list[bytes], image: Image, rate: float) -> dict[str, tuple[float, float]]:
    """PUTs one manifest every 1/rate seconds; returns tag → (sent, answered), perf_counter times."""
    conn = leader.connect()
    for blob in image.blobs:
        push_blob(conn, REPOSITORY, blob, digest_of(blob))
    times: dict[str, tuple[float, float]] = {}
    start = time.perf_counter()
    for n, manifest in enumerate(manifests):
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
        sent = time.perf_counter()
        put_manifest(conn, REPOSITORY, f"v{n}", manifest)
        times[f"v{n}"] = (sent, time.perf_counter())
    conn.close()
    return times


def report(pushes: dict[str, tuple[float, float]], arrivals: dict[str, float], args: argparse.Namespace) -> str:
    arrived = [tag for tag in pushes if tag in arrivals]
    rows = {
        "PUT answered 201 on the leader → tag listed by the follower": [arrivals[t] - pushes[t][1] for t in arrived],
        "PUT sent → tag listed by the follower": [arrivals[t] - pushes[t][0] for t in arrived],
        "PUT round trip on the leader (for comparison)": [pushes[t][1] - pushes[t][0] for t in pushes],
    }
    lines = [f"Follower lag: embedded leader and follower, {len(pushes)} manifest PUTs at {args.rate:g}/s for "
             f"{args.seconds:g} s (follower polled every {POLL_SECONDS * 1000:g} ms); {len(arrived)} of "
             f"{len(pushes)} tags arrived.", "",
             "| interval | p50 ms | p99 ms | max ms |", "|---|--:|--:|--:|"]
    for name, values in rows.items():
        if values:
            lines.append(f"| {name} | {percentile(values, 0.5) * 1000:.1f} | {percentile(values, 0.99) * 1000:.1f} "
                         f"| {max(values) * 1000:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    image = Image.build(b'{"architecture": "amd64", "os": "linux"}', [b"follower lag layer"])
    manifests = numbered_manifests(image, max(1, int(args.seconds * args.rate)))
    with tempfile.TemporaryDirectory(prefix="portlog-follower-lag-") as tmp:
        leader = start_portlog(Path(tmp) / "leader")
        try:
            follower = start_follower(Path(tmp) / "follower", leader)
            try:
                with Arrivals(follower) as arrivals:
                    pushes = push_steadily(leader, manifests, image, args.rate)
                    arrivals.wait_for(set(pushes), ARRIVAL_TIMEOUT_SECONDS)
            finally:
                follower.stop()
        finally:
            leader.stop()
    print(report(pushes, arrivals.times, args))
    return 0 if len(arrivals.times) >= len(pushes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
