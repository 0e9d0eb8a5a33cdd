"""The bounds every scan runs within, and the one failure a bound (or bad input) gives.

Images are untrusted input: a layer may be a decompression bomb, hold millions of entries or a
file of many gigabytes, or name paths outside the image. Each bound exceeded ends the scan with
`ScanFailed` and a reason a person can act on; nothing is ever extracted to disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

KIB, MIB, GIB = 1024, 1024 ** 2, 1024 ** 3


class ScanFailed(Exception):
    """The scan cannot go on; the message says why (it ends up in the failed scan's report)."""


@dataclass(frozen=True)
class ScanLimits:
    decompressed_bytes: int = 8 * GIB  # all layers of one image, as tar streams
    compression_ratio: int = 500  # past `ratio_after_bytes`: more looks like a decompression bomb
    ratio_after_bytes: int = 64 * MIB
    entries: int = 500_000  # tar entries in all layers
    layers: int = 512
    file_bytes: int = 64 * MIB  # one file the inventory reads (a package database)
    collected_bytes: int = 512 * MIB  # every file the inventory reads, all layers together
    collected_files: int = 200_000
    header_bytes: int = 1 * MIB  # one tar entry's extended header (PAX, GNU long name)
    manifest_bytes: int = 4 * MIB  # a manifest, an index or an image config
    symlink_depth: int = 16
    seconds: float = 600.0  # the whole scan


def format_bytes(count: int) -> str:
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


class Deadline:
    """The time a scan may take; `check` is called wherever a scan reads, so a stalled or
    endless input ends it, and so does `cancel` (the server shutting down)."""

    def __init__(self, seconds: float, clock=time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds
        self.cancelled = False

    def remaining(self) -> float:
        return max(self._end - self._clock(), 0.0)

    def check(self) -> None:
        if self.cancelled:
            raise ScanFailed("the scan was stopped")
        if self._clock() > self._end:
            raise ScanFailed(f"the scan took longer than its limit of {self.seconds:g} seconds")

    def cancel(self) -> None:
        self.cancelled = True
