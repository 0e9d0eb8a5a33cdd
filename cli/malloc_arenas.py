"""Fewer glibc malloc arenas for a serving process.

glibc gives a thread that allocates while another holds an arena an arena of its own, up to
eight per core. The thread pool's threads come and go, and every arena keeps the free memory of
its own peaks: the resident set creeps up for hours (the 30-minute soak, docs/performance.md:
+69 MiB from minute 10 to 30 with the default, +15 MiB with two arenas). One GIL serialises nearly every
allocation anyway, so two arenas cost nothing measurable. An operator's own MALLOC_ARENA_MAX
wins; on a C library other than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import os

ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def limit_malloc_arenas() -> None:
    """For this process (call it before threads start) and the processes it starts."""
    if "MALLOC_ARENA_MAX" in os.environ:  # the operator's choice, already read by glibc
        return
    os.environ["MALLOC_ARENA_MAX"] = str(ARENAS)  # worker processes: glibc reads it as they start
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, ARENAS)
    except (OSError, AttributeError):
        pass  # not glibc
