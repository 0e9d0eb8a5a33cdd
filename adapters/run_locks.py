"""Exclusive locks by name, held for a run (a garbage collection, a backup to one destination)
and shared by every process that uses the same data: the worker processes of one node, a
command line beside them, and every node of a scale-out deployment. Taking one never waits:
either this run gets it or another run, somewhere, holds it.

Both kinds are released by the operating system or the database when their holder dies (a
SIGKILL, a crash): no lock outlives the process that took it.

* Embedded: `flock` on `<data_dir>/locks/<name>.lock`. The lock belongs to the open file, so
  two opens in one process exclude each other as two processes do. The file stays (removing
  it would let a second opener lock another inode).
* PostgreSQL: a session advisory lock on a connection of its own, kept open for the run."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from pathlib import Path
from typing import Protocol

from adapters.private_files import PRIVATE_FILE, private_dir

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")


class HeldLock(Protocol):
    def release(self) -> None: ...


class RunLocks(Protocol):
    def try_acquire(self, name: str) -> HeldLock | None:
        """The lock `name`, now held by the caller; None when another run holds it."""
        ...


def _checked(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"not a lock name: {name!r}")
    return name


class FileRunLocks:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def try_acquire(self, name: str) -> HeldLock | None:
        private_dir(self.directory)
        path = self.directory / f"{_checked(name)}.lock"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        return _FileLock(descriptor)


class _FileLock:
    def __init__(self, descriptor: int) -> None:
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            descriptor, self._descriptor = self._descriptor, None
            os.close(descriptor)  # closing the last descriptor of the open file drops its flock


def advisory_key(name: str) -> int:
    """The signed 64-bit key of `name` (pg_try_advisory_lock takes a bigint)."""
    digest = hashlib.sha256(f"portlog run lock {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresRunLocks:
    def __init__(self, conninfo: str) -> None:
        """`conninfo`: a libpq connection string or postgresql:// URL of the shared database."""
        self.conninfo = conninfo

    def try_acquire(self, name: str) -> HeldLock | None:
        import psycopg

        key = advisory_key(_checked(name))
        connection = psycopg.connect(self.conninfo, autocommit=True)
        try:
            acquired = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
        except BaseException:
            connection.close()
            raise
        if not acquired:
            connection.close()
            return None
        return _SessionLock(connection, key)


class _SessionLock:
    def __init__(self, connection, key: int) -> None:
        self._connection = connection
        self._key = key

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        except Exception:
            pass  # the connection went (the database restarted): the lock went with its session
        finally:
            connection.close()
