"""Data at rest is private to the account that runs Portlog: the event log holds password
hashes, the data directory signing and secret keys, the blobs every private image. Other users
of the machine get nothing: directories 0700, files 0600."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
PRIVATE_UMASK = 0o077

log = logging.getLogger("portlog")


def keep_private(data_dir: Path) -> None:
    """From now on this process creates files 0600 and directories 0700 (a umask: it covers
    every file, SQLite's -wal and -shm included); creates `data_dir` so, and warns when an
    existing one lets other users in (an operator's choice, or a data directory from before)."""
    os.umask(PRIVATE_UMASK)
    if data_dir.is_dir():
        mode = stat.S_IMODE(data_dir.stat().st_mode)
        if mode & ~PRIVATE_DIR:
            log.warning("the data directory %s is mode %04o: other users of this machine can read it "
                        "(password hashes, keys, images). Make it private: chmod 700 %s",
                        data_dir, mode, data_dir)
    private_dir(data_dir)


def private_dir(path: Path) -> None:
    """Creates `path` and any missing parent 0700."""
    if not path.is_dir():
        private_dir(path.parent)
        path.mkdir(mode=PRIVATE_DIR, exist_ok=True)


def private_file(path: Path) -> None:
    """Creates the file 0600 when missing, so that it is private whatever the umask (SQLite
    gives a database's -wal and -shm files the database file's mode)."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))


def write_private(path: Path, data: bytes) -> None:
    """A new file, 0600, with `data` in it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as f:
        f.write(data)
