"""SeaweedFS for the tests: one S3 server per session, a fresh bucket per test, stores on it,
and a loopback proxy that can cut the way to it (an S3 outage on demand)."""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from minio import Minio

from adapters.storage.s3 import S3BlobStore
from infra.services.seaweedfs import HOST, SeaweedFS, start


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory) -> Iterator[SeaweedFS]:
    """One per pytest-xdist worker (each on ports of its own), started when a test first needs it."""
    server = start(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    # Its data goes with the session: a clean shutdown would keep the worker's last test seconds longer.
    server.stop(kill=True)


@pytest.fixture
def s3_bucket() -> str:
    """A bucket name no other test uses; the store creates the bucket."""
    return f"test-{uuid.uuid4().hex[:16]}"


def s3_store(server: SeaweedFS, bucket: str, spool_dir: Path, endpoint: str | None = None,
             **options) -> S3BlobStore:
    return S3BlobStore(endpoint or server.endpoint, bucket, server.access_key, server.secret_key,
                       region=server.region, spool_dir=spool_dir, **options)


def s3_client(server: SeaweedFS) -> Minio:
    """A plain SDK client, to look at the bucket behind the store's back."""
    return Minio(server.endpoint, access_key=server.access_key, secret_key=server.secret_key,
                 secure=False, region=server.region)


class CuttableProxy:
    """Forwards loopback TCP connections to a port until cut(): then every open connection
    is closed and new ones are refused, as when the server behind it dies."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.port}"

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for s in self._sockets:
                _close(s)
            self._sockets.clear()

    def _accept(self) -> None:
        while not self._cut.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection((HOST, self._target_port))
            with self._lock:
                if self._cut.is_set():
                    _close(client)
                    _close(upstream)
                    break
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()
        self._listener.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(target)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
