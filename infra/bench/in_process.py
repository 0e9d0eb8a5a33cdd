"""The CPU cost of metrics per request, measured inside one process, without the network.

On this machine the CPU per request of two identical servers measured one after the other
differs by up to ±15 % from run to run (the page cache, the scheduler, the other processes), more
than the few per cent the metrics middleware might cost. Here both applications — metrics off,
metrics on; access log on, the default, its lines written to a file — live in the same process, share its heap and its
caches, and answer manifest GETs by tag handed straight to the ASGI application, alternating in
rounds; what differs between them is only the code on the request path. `--overhead` runs it
(`python infra/bench/in_process.py SOURCE` prints JSON: the Portlog at SOURCE is measured).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REQUESTS, ROUNDS, WARM_UP = 2000, 7, 300
QUICK = 100, 2, 20
FIGURE = "manifest GET by tag, in one process, ASGI without the network"
UNIT = "CPU µs per request"
TOOL = "asgi in-process"
_PASSWORD = "in-process-Bench-1"
_REPOSITORY = "library/bench"


def measure(source: Path, quick: bool = False) -> dict[str, list[float]]:
    """{"off": [µs per request of each round], "on": [...]}, from a process running SOURCE."""
    completed = subprocess.run([sys.executable, __file__, str(source), *(["--quick"] if quick else [])],
                               capture_output=True, text=True, timeout=900, cwd=source)
    if completed.returncode:
        raise RuntimeError(f"in-process measurement failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.splitlines()[-1])


def _application(metrics_on: bool, directory: Path):
    """An embedded Portlog's application holding one image, and a pull token for it."""
    from starlette.testclient import TestClient

    from adapters.passwords import Argon2SecretHasher
    from api.app import create_app
    from config.bootstrap import bootstrap
    from config.settings import Settings

    settings = Settings(data_dir=directory, admin_password=_PASSWORD)
    settings = dataclasses.replace(settings, metrics=dataclasses.replace(settings.metrics, enabled=metrics_on))
    app = create_app(bootstrap(settings, hasher=Argon2SecretHasher(fast=True)))
    with TestClient(app) as client:
        client.auth = ("admin", _PASSWORD)
        _push(client)
        token = client.get("/service/token", params={"service": "portlog",
                                                     "scope": f"repository:{_REPOSITORY}:pull"}).json()["token"]
    return app, token


def _push(client) -> None:
    from infra.bench.protocol import OCI_MANIFEST, Image, digest_of  # SOURCE's, on the path once main() ran

    image = Image.build(b'{"os": "linux"}', [b"in-process layer"])
    for blob in image.blobs:
        response = client.post(f"/v2/{_REPOSITORY}/blobs/uploads/", params={"digest": digest_of(blob)}, content=blob)
        assert response.status_code == 201, response.text
    response = client.put(f"/v2/{_REPOSITORY}/manifests/latest", content=image.manifest,
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text


async def _cpu_per_request(app, token: str, count: int) -> float:
    path = f"/v2/{_REPOSITORY}/manifests/latest"
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "server": ("127.0.0.1", 5000), "client": ("127.0.0.1", 40000),
             "headers": [(b"host", b"127.0.0.1:5000"), (b"authorization", f"Bearer {token}".encode()),
                         (b"accept", b"application/vnd.oci.image.manifest.v1+json")]}
    statuses = set()

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    started = time.process_time()
    for _ in range(count):
        await app(dict(scope), receive, send)
    cpu = time.process_time() - started
    if statuses != {200}:
        raise RuntimeError(f"manifest GET answered {sorted(statuses)}")
    return cpu / count * 1e6


def _log_to(path: Path) -> None:
    """Log lines as `portlog serve` writes them (info, text), to a file as the benchmark keeps a
    server's output: without a handler at info the access line would cost only its level check."""
    from api import logs

    logs.configure("info")
    handler = next(h for h in logging.getLogger("portlog").handlers if getattr(h, "portlog", False))
    handler.setStream(path.open("w"))


def main(source: str, quick: bool) -> None:
    sys.path.insert(0, source)
    requests, rounds_, warm_up = QUICK if quick else (REQUESTS, ROUNDS, WARM_UP)
    root = Path(tempfile.mkdtemp(prefix="portlog-in-process-"))
    try:
        _log_to(root / "portlog.log")
        apps = {name: _application(on, root / name) for name, on in (("off", False), ("on", True))}
        loop = asyncio.new_event_loop()
        for app, token in apps.values():
            loop.run_until_complete(_cpu_per_request(app, token, warm_up))
        rounds: dict[str, list[float]] = {name: [] for name in apps}
        for round_ in range(rounds_):
            for name in (list(apps) if round_ % 2 == 0 else list(apps)[::-1]):
                app, token = apps[name]
                rounds[name].append(loop.run_until_complete(_cpu_per_request(app, token, requests)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(rounds))


if __name__ == "__main__":
    main(sys.argv[1], "--quick" in sys.argv[2:])
