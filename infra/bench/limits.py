"""The machine's ceilings, measured in the same run as the registries.

A push needs a sha256 over every byte and a write to disk; a pull needs a read and a send.
Neither registry can beat these, whatever its code does:
  * sha256 of an in-memory buffer on one core (one thread, 1 MiB updates, like an upload);
  * loopback TCP between two processes, 1 MiB sends;
  * sequential write of a file in the data directory's filesystem, fsync at the end;
  * sequential read of it after POSIX_FADV_DONTNEED, with a check whether the kernel really
    dropped it from the page cache (on a VM the host may still cache the virtual disk).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
PROBES = 16


@dataclass
class Limit:
    kind: str  # sha256, loopback, write, read
    name: str
    mib_per_second: float
    how: str


def sha256(total_mib: int) -> Limit:
    data = os.urandom(MIB) * total_mib
    view, hasher = memoryview(data), hashlib.sha256()
    started = time.perf_counter()
    for offset in range(0, len(data), MIB):
        hasher.update(view[offset:offset + MIB])
    hasher.hexdigest()
    elapsed = time.perf_counter() - started
    return Limit("sha256", "sha256, one core", total_mib / elapsed, f"{total_mib} MiB in memory, 1 MiB updates")


def loopback(total_mib: int) -> Limit:
    listener = socket.create_server(("127.0.0.1", 0))
    sender = multiprocessing.get_context("fork").Process(
        target=_send, args=(listener.getsockname(), total_mib), daemon=True)
    sender.start()
    connection, _ = listener.accept()
    buffer, received = bytearray(MIB), 0
    started = time.perf_counter()
    with connection:
        while count := connection.recv_into(buffer):
            received += count
    elapsed = time.perf_counter() - started
    sender.join()
    listener.close()
    if received != total_mib * MIB:
        raise RuntimeError(f"loopback test received {received} bytes of {total_mib * MIB}")
    return Limit("loopback", "loopback TCP", total_mib / elapsed,
                 f"{total_mib} MiB between two processes over 127.0.0.1, 1 MiB sends")


def _send(address, total_mib: int) -> None:
    block = os.urandom(MIB)
    with socket.create_connection(address) as connection:
        for _ in range(total_mib):
            connection.sendall(block)


def disk(directory: Path, total_mib: int) -> list[Limit]:
    path = directory / "disk-limit.tmp"
    block = os.urandom(MIB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        started = time.perf_counter()
        for _ in range(total_mib):
            os.write(fd, block)
        os.fsync(fd)
        write_seconds = time.perf_counter() - started
    finally:
        os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        cached = _cached_probes(fd, total_mib * MIB)
        buffer, started = bytearray(MIB), time.perf_counter()
        while os.readv(fd, [buffer]):
            pass
        read_seconds = time.perf_counter() - started
    finally:
        os.close(fd)
        path.unlink()
    where = {None: "page cache state unknown", 0: "from disk: none of the probed pages was cached"}
    source = where.get(cached, f"{cached}/{PROBES} probed pages still cached: partly page cache")
    return [
        Limit("write", "disk sequential write + fsync", total_mib / write_seconds,
              f"{total_mib} MiB in 1 MiB writes to {directory}, fsync at the end"),
        Limit("read", "disk sequential read", total_mib / read_seconds,
              f"the same file after POSIX_FADV_DONTNEED; {source}"),
    ]


def _cached_probes(fd: int, size: int) -> int | None:
    """How many of PROBES pages spread over the file are in the page cache (RWF_NOWAIT reads
    fail with EAGAIN on a miss); None when the kernel cannot tell us."""
    if not hasattr(os, "RWF_NOWAIT"):
        return None
    cached, page = 0, bytearray(4096)
    for index in range(PROBES):
        try:
            os.preadv(fd, [page], index * (size // PROBES), os.RWF_NOWAIT)
            cached += 1
        except BlockingIOError:
            pass
        except OSError:
            return None
    return cached


def measure(directory: Path, sha_mib: int, loopback_mib: int, disk_mib: int) -> list[Limit]:
    return [sha256(sha_mib), loopback(loopback_mib), *disk(directory, disk_mib)]
