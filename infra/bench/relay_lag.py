"""`python -m infra.bench.relay_lag [--seconds N] [--rate PUSHES_PER_SECOND]`: how long an event
takes from a manifest PUT to a message delivered by JetStream (docs/events.md).

Starts a private NATS (infra/services/nats.py) and an embedded Portlog with the relay on,
follows the stream `PORTLOG` with an ordered consumer (new messages only), and PUTs a new
manifest at a steady rate over one connection. Each push's artifact.pushed message is timed
against the moment the PUT answered 201 (what the relay adds) and the moment it was sent (what
a subscriber waits after a client starts a push). Prints p50 and p99 as a Markdown table; a
benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path

import nats
import nats.js.errors
import orjson
from nats.js.api import DeliverPolicy

from adapters.nats_relay import STREAM, STREAM_SUBJECTS
from infra.bench.protocol import Image, digest_of, push_blob, put_manifest
from infra.bench.servers import PROJECT, Server, start_portlog
from infra.services import nats as nats_service

REPOSITORY = f"{PROJECT}/relay-lag"
ARRIVAL_TIMEOUT_SECONDS = 10.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.relay_lag", description=(
        "Relay lag from manifest PUT to message on JetStream, p50 and p99, under a steady push load."))
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to push (default 10)")
    parser.add_argument("--rate", type=float, default=20.0, help="manifest PUTs per second (default 20)")
    return parser.parse_args(argv)


class Arrivals:
    """When each artifact.pushed message was delivered (perf_counter), by digest: an ordered
    JetStream consumer on a thread with its own event loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.times: dict[str, float] = {}
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="relay-lag-consumer", daemon=True)

    def __enter__(self) -> Arrivals:
        self._thread.start()
        if not self._ready.wait(15) or self._error:
            raise RuntimeError(f"could not follow the stream {STREAM}: {self._error!r}")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._done.set)
        self._thread.join(timeout=10)

    def wait_for(self, digests: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not digests <= self.times.keys() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self) -> None:
        try:
            asyncio.run(self._follow())
        except BaseException as error:  # reported by __enter__
            self._error = error
            self._ready.set()

    async def _follow(self) -> None:
        self._loop, self._done = asyncio.get_running_loop(), asyncio.Event()
        connection = await nats.connect(self.url)
        js = connection.jetstream()
        await _stream_created(js)
        await js.subscribe(STREAM_SUBJECTS, stream=STREAM, ordered_consumer=True,
                           deliver_policy=DeliverPolicy.NEW, cb=self._arrived)
        await connection.flush()
        self._ready.set()
        await self._done.wait()
        await connection.close()

    async def _arrived(self, message) -> None:
        now = time.perf_counter()
        event = orjson.loads(message.data)
        if event["type"] == "io.portlog.artifact.pushed":
            self.times[event["data"]["digest"]] = now


async def _stream_created(js, timeout: float = 10.0) -> None:
    """The relay creates the stream when it first connects, just after Portlog starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await js.stream_info(STREAM)
            return
        except nats.js.errors.NotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def numbered_manifests(image: Image, count: int) -> list[bytes]:
    """The image's manifest with an annotation per number: distinct digests, the same blobs."""
    document = json.loads(image.manifest)
    return [json.dumps({**document, "annotations": {"n": str(n)}}).encode() for n in range(count)]


def push_steadily(server: Server, manifests: list[bytes], image: Image, rate: float) -> dict[str, tuple[float, float]]:
    """PUTs one manifest every 1/rate seconds (at once when behind); returns digest → (sent,
    answered), perf_counter times."""
    conn = server.connect()
    for blob in image.blobs:
        push_blob(conn, REPOSITORY, blob, digest_of(blob))
    times: dict[str, tuple[float, float]] = {}
    start = time.perf_counter()
    for n, manifest in enumerate(manifests):
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
        sent = time.perf_counter()
        put_manifest(conn, REPOSITORY, f"v{n}", manifest)
        times[digest_of(manifest)] = (sent, time.perf_counter())
    conn.close()
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(pushes: dict[str, tuple[float, float]], arrivals: dict[str, float], args: argparse.Namespace) -> str:
    arrived = [digest for digest in pushes if digest in arrivals]
    rows = {
        "PUT answered 201 → message delivered": [arrivals[d] - pushes[d][1] for d in arrived],
        "PUT sent → message delivered": [arrivals[d] - pushes[d][0] for d in arrived],
        "PUT round trip (for comparison)": [pushes[d][1] - pushes[d][0] for d in pushes],
    }
    lines = [f"Relay lag: embedded Portlog, nats-server {nats_service.version()}, {len(pushes)} manifest PUTs "
             f"at {args.rate:g}/s for {args.seconds:g} s; {len(arrived)} of {len(pushes)} messages arrived.", "",
             "| interval | p50 ms | p99 ms | max ms |", "|---|--:|--:|--:|"]
    for name, values in rows.items():
        if values:
            lines.append(f"| {name} | {percentile(values, 0.5) * 1000:.1f} | {percentile(values, 0.99) * 1000:.1f} "
                         f"| {max(values) * 1000:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    image = Image.build(b'{"architecture": "amd64", "os": "linux"}', [b"relay lag layer"])
    manifests = numbered_manifests(image, max(1, int(args.seconds * args.rate)))
    with tempfile.TemporaryDirectory(prefix="portlog-relay-lag-") as tmp:
        with nats_service.running(Path(tmp) / "nats") as nats_server:
            server = start_portlog(Path(tmp) / "portlog", backends={"PORTLOG_NATS_URL": nats_server.url})
            try:
                with Arrivals(nats_server.url) as arrivals:
                    pushes = push_steadily(server, manifests, image, args.rate)
                    arrivals.wait_for(set(pushes), ARRIVAL_TIMEOUT_SECONDS)
            finally:
                server.stop()
    print(report(pushes, arrivals.times, args))
    return 0 if len(arrivals.times) >= len(pushes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
