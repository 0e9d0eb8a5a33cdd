"""The replication benchmark still runs: `python -m infra.bench.replication` at tiny sizes, in a
subprocess as it is used, against a live Portlog and two live Distributions. It checks that both
targets got every tag on the source's digest and that each case has its figures, nothing about
the timings (this machine is not a lab)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # skopeo and docker-registry come from scripts/install-system-packages

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES = 3


def table_rows(output: str) -> dict[str, list[str]]:
    """Case name → the other cells of its row."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in output.splitlines() if line.startswith("| ")]
    return {row[0]: row[1:] for row in rows[1:]}


def test_tiny_replication_benchmark_reaches_every_tag_on_both_targets():
    result = subprocess.run(
        [sys.executable, "-m", "infra.bench.replication", "--images", str(IMAGES), "--layers", "2",
         "--layer-size", "4KiB", "--workers", "2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    rows = table_rows(result.stdout)
    assert set(rows) == {"Portlog replication, 2 workers", "skopeo sync"}, result.stdout
    for seconds, images_per_second, mib_per_second, arrived, *_ in rows.values():
        assert arrived == f"{IMAGES} / {IMAGES}"
        for figure in (seconds, images_per_second, mib_per_second):
            assert re.fullmatch(r"\d+\.\d+", figure), figure
        assert float(seconds) > 0
    assert re.search(r"skopeo / Portlog wall time: \d+\.\d+×", result.stdout)
    assert "Every tag reached both targets." in result.stdout
