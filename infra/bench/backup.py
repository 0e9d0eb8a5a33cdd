"""`portlog backup create` against a plain recursive copy of the blob directory, in the same run
(docs/performance.md, Backups; docs/operations.md, Backups).

Setup pushes `Sizes.backup` blobs (untimed), on top of what the other workloads left. Then, on
the same data: `portlog backup create` into a new directory, as an operator runs it (a process
of its own, start-up included: it reads the log up to P, the referenced set from one snapshot,
streams every blob in use, hashing it, and syncs it to disk; the second row is the backup alone,
from its Started event to its Completed), and `cp -r` of the blob directory into another, then
`sync -f` of it (no consistency, no hashing, the kernel copying: the ceiling of copying those
bytes on this disk). Distribution has no
online backup: its row of `portlog backup create` says so; its `cp -r` copies its storage.
A scale-out node's blobs are in S3: no `cp -r` there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from functools import cached_property
from pathlib import Path

from infra.bench.report import Reading
from infra.bench.servers import Server
from infra.bench.workloads import MIB, PushBlobs, Workload, size_label, unique_blob

PORTLOG_TOOL, COPY_TOOL = "portlog backup create", "cp -r + sync (blob directory)"


class BackupCopy(Workload):
    repeatable = False  # its own rounds, or a setup that is the measurement's
    name = "backup"

    @cached_property
    def blobs(self) -> list[bytes]:
        count, size = self.sizes.backup
        return [unique_blob(size, f"backup-{i}") for i in range(count)]

    @property
    def figure(self) -> str:
        count, size = self.sizes.backup
        return f"backup, {count} × {size_label(size)} blobs (and earlier workloads'), whole command"

    @property
    def alone_figure(self) -> str:
        return self.figure.replace("whole command", "Started to Completed")

    def setup(self, server: Server) -> None:
        self._setup_batch(server, PushBlobs("bench/backup", self.blobs, None))

    def measure(self, server: Server) -> list[Reading]:
        work = server.directory / "backup-bench"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            return self._backup(server, work) + self._copy(server, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _backup(self, server: Server, work: Path) -> list[Reading]:
        if not server.name.startswith("Portlog"):
            return [Reading(figure, unit, PORTLOG_TOOL, float("nan"), absent="no online backup")
                    for figure in (self.figure, self.alone_figure)
                    for unit in ("MiB/s", "blobs/s")]
        env = {**os.environ, **server.environment, "PORTLOG_DATA_DIR": str(server.directory / "data")}
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "cli", "backup", "create", str(work / "portlog")],
                                cwd=server.source, env=env, capture_output=True, text=True, timeout=3600)
        seconds = time.monotonic() - started
        if result.returncode != 0:
            raise RuntimeError(f"portlog backup create on {server.name}: {result.stderr[-2000:]}")
        backup = json.loads(result.stdout)
        copying = backup["seconds"]  # from its Started event to its Completed: without the command's start-up
        note = (f"{backup['blob_count']} blobs, {backup['bytes'] / MIB:,.0f} MiB in {seconds:.1f} s, of which "
                f"{copying:.1f} s from Started to Completed")
        readings = []
        for figure, elapsed in ((self.figure, seconds), (self.alone_figure, copying)):
            readings += [Reading(figure, "MiB/s", PORTLOG_TOOL, backup["bytes"] / MIB / elapsed,
                                 note=note if elapsed == seconds else ""),
                         Reading(figure, "blobs/s", PORTLOG_TOOL, backup["blob_count"] / elapsed)]
        return readings

    def _copy(self, server: Server, work: Path) -> list[Reading]:
        source = _blob_directory(server)
        if source is None:
            return [self._absent(unit, COPY_TOOL, "blobs in S3") for unit in ("MiB/s", "blobs/s")]
        files = [path for path in source.rglob("*") if path.is_file()]
        size = sum(path.stat().st_size for path in files)
        started = time.monotonic()
        subprocess.run(["cp", "-r", str(source), str(work / "copy")], check=True)
        subprocess.run(["sync", "-f", str(work / "copy")], check=True)
        seconds = time.monotonic() - started
        note = f"{len(files)} files, {size / MIB:,.0f} MiB in {seconds:.1f} s"
        return [Reading(self.figure, "MiB/s", COPY_TOOL, size / MIB / seconds, note=note),
                Reading(self.figure, "blobs/s", COPY_TOOL, len(files) / seconds)]

    def _absent(self, unit: str, tool: str, why: str) -> Reading:
        return Reading(self.figure, unit, tool, float("nan"), absent=why)


def _blob_directory(server: Server) -> Path | None:
    """Where the server keeps blob bytes on this disk (None: elsewhere)."""
    if server.name.startswith("Portlog"):
        return None if "PORTLOG_STORAGE_URL" in server.environment else server.directory / "data/storage/blobs"
    return server.directory / "data/docker/registry/v2/blobs"
