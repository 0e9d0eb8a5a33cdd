"""Waiting for something that happens in the background (workers, dispatchers, peers)."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = ""):
    """The first truthy value of `predicate()` within `timeout` seconds; else the test fails
    (saying `what` did not happen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what or 'not reached'} within {timeout} s")
