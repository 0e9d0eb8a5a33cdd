"""CNCF Distribution as a private peer registry for tests: Debian's `docker-registry` (2.8) on a
free loopback port, its storage in a directory of its own, optionally behind `htpasswd` (Basic)
authentication. Ready in well under a second. `restart()` (or `stop(kill=True)` then `start()`)
comes back on the same port with the same storage and upload secret, so blobs, manifests and
even upload sessions in progress survive an outage.

    with distribution.running(tmp_dir, auth=("alice", "secret")) as peer:
        RegistryClient(peer.url, *peer.credentials)
        peer.restart(kill=True)   # a crash, then the same registry again
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from Crypto.Protocol.KDF import bcrypt  # pycryptodome, which minio requires

from infra.services import processes
from infra.services.processes import HOST

DEBIAN_BINARY = Path("/usr/bin/docker-registry")
# Below the kernel's ephemeral range (32768 and up), so that an outgoing connection cannot take
# the port while the registry is down for a restart; apart from the other servers' ranges
# (infra/services/processes.py).
PORT_RANGE = range(16_000, 17_000)
START_ATTEMPTS = 3
REALM = "portlog-test-peer"
BCRYPT_COST = 5  # Distribution checks the hash on every request: keep it cheap (Go accepts 4+)

# The upload `_state` in Location headers is signed with http.secret: a fixed one keeps the
# uploads of a restarted registry valid (without it, each start picks a random one).
CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: {delete_enabled}
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {host}:{port}
  secret: {secret}
"""

HTPASSWD_AUTH = """\
auth:
  htpasswd:
    realm: {realm}
    path: {path}
"""


@dataclass
class DistributionServer(processes.ServerProcess):
    program = "docker-registry"
    directory: Path
    port: int
    credentials: tuple[str, str] | None = None  # (username, password) when it asks for them
    process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        """host:port, as image references name a registry."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.directory / "registry.log"

    @property
    def config_path(self) -> Path:
        return self.directory / "config.yml"

    def launch(self) -> subprocess.Popen:
        return _launch(self)

    def wait_until_ready(self, timeout: float) -> None:
        # `/` answers 200 even when /v2/ asks for credentials.
        processes.wait_for_health(self.process, f"{self.url}/", self.log_path, timeout, interval=0.02)

    def kill(self) -> None:
        self.stop(kill=True)


def binary() -> Path:
    found = shutil.which("docker-registry")
    if found:
        return Path(found)
    if DEBIAN_BINARY.exists():
        return DEBIAN_BINARY
    raise FileNotFoundError("docker-registry is missing: apt-get install docker-registry")


def start(directory: Path, *, auth: tuple[str, str] | None = None, delete_enabled: bool = True,
          timeout: float = 20.0) -> DistributionServer:
    """Writes the configuration (and the htpasswd file with `auth`) into `directory` and starts
    the registry on a free port; if it exits first (another process took the port between our
    probe and its bind), other ports are tried."""
    directory = Path(directory)
    (directory / "storage").mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(16)
    for _ in range(START_ATTEMPTS):
        server = DistributionServer(directory, _free_port(), auth)
        _write_config(server, secret, delete_enabled)
        try:
            server.start(timeout)
            return server
        except processes.ExitedEarly:
            continue
    raise RuntimeError(f"docker-registry exited at start {START_ATTEMPTS} times; see {directory / 'registry.log'}")


@contextmanager
def running(directory: Path, **kwargs) -> Iterator[DistributionServer]:
    server = start(directory, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def _write_config(server: DistributionServer, secret: str, delete_enabled: bool) -> None:
    config = CONFIG.format(root=server.directory / "storage", delete_enabled=str(delete_enabled).lower(),
                           host=HOST, port=server.port, secret=secret)
    if server.credentials:
        htpasswd = server.directory / "htpasswd"
        htpasswd.write_bytes(htpasswd_line(*server.credentials))
        config += HTPASSWD_AUTH.format(realm=REALM, path=htpasswd)
    server.config_path.write_text(config)


def htpasswd_line(username: str, password: str) -> bytes:
    """`user:$2a$...`: Distribution's htpasswd accepts bcrypt hashes only."""
    if ":" in username:
        raise ValueError("an htpasswd username cannot hold ':'")
    return username.encode() + b":" + bcrypt(password.encode(), BCRYPT_COST) + b"\n"


def _launch(server: DistributionServer) -> subprocess.Popen:
    with open(server.log_path, "ab") as log:
        return subprocess.Popen([str(binary()), "serve", str(server.config_path)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _free_port() -> int:
    return processes.free_port(PORT_RANGE)


def version() -> str:
    result = subprocess.run([str(binary()), "--version"], capture_output=True, text=True)
    return result.stdout.strip().rsplit(" ", 1)[-1] if result.returncode == 0 else "unknown"
