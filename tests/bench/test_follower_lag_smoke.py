"""The follower lag benchmark still runs: `python -m infra.bench.follower_lag` for a moment, in a
subprocess as it is used, against a live leader and follower. It checks that every pushed tag
reached the follower and that each row has its figures, nothing about the timings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_short_follower_lag_run_times_every_push():
    result = subprocess.run([sys.executable, "-m", "infra.bench.follower_lag", "--seconds", "1", "--rate", "10"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "10 of 10 tags arrived" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| PUT")]
    assert len(rows) == 3
    for row in rows:
        assert re.fullmatch(r"\| [^|]+ \| \d+\.\d \| \d+\.\d \| \d+\.\d \|", row), row
