"""The benchmark still runs: `python -m infra.bench --quick` against a live Portlog and a live
Distribution, at tiny sizes. It checks that every figure has a number for both servers, and
nothing about the numbers themselves (no timing assertions: this machine is not a lab)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # docker-registry and wrk come from scripts/install-system-packages

REPO_ROOT = Path(__file__).resolve().parents[2]

# (start of the figure, unit, tool) of every row the results table must have.
EXPECTED_ROWS = [
    ("blob push, 8 × 64 KiB (POST + PUT)", "MiB/s", "python"),
    ("blob push, 2 × 1 MiB, chunked", "MiB/s", "python"),
    ("blob pull, 64 KiB", "MiB/s", "python"),
    ("blob pull, 64 KiB", "MiB/s", "wrk"),
    ("blob pull, 1 MiB", "MiB/s", "python"),
    ("blob pull, 1 MiB", "MiB/s", "wrk"),
    *[("manifest GET by tag", unit, tool) for tool in ("python", "wrk") for unit in ("req/s", "p50 ms", "p99 ms")],
    *[("manifest HEAD by tag", unit, "python") for unit in ("req/s", "p50 ms", "p99 ms")],
    ("tags list, 20 tags", "req/s", "python"),
    ("tags list, 20 tags", "req/s", "wrk"),
    ("_catalog, 20 repositories", "req/s", "python"),
    ("_catalog, 20 repositories", "req/s", "wrk"),
    ("end to end push, 2 images", "images/s", "python"),
    ("end to end pull, 2 images", "images/s", "python"),
    *[("backup, 8 × 64 KiB blobs (and earlier workloads'), whole command", unit, "cp -r")
      for unit in ("MiB/s", "blobs/s")],
    ("peak resident memory", "MiB", "/proc"),
]
# Portlog's alone: Distribution has no scanner, and its cell says so.
PORTLOG_ONLY_ROWS = [
    ("scan of an image of 150 packages", "s", "python"),
    ("end to end push, auto_scan off", "images/s", "python"),
    ("end to end push, auto_scan on,", "images/s", "python"),
    ("end to end push, auto_scan on / off", "×", "python"),
    ("auto_scan: every image of an auto_scan push scanned", "s", "python"),
]
# Portlog's alone: Distribution has no online backup.
NO_BACKUP_ROWS = [(f"backup, 8 × 64 KiB blobs (and earlier workloads'), {what}", unit, "portlog backup create")
                  for what in ("whole command", "Started to Completed") for unit in ("MiB/s", "blobs/s")]
# Portlog's alone, from an embedded follower started for the run: Distribution ships no log.
NO_LOG_SHIPPING_ROWS = [("follower lag, PUT 201 on leader → tag listed by follower, 20 PUTs at 10/s", unit, "python")
                        for unit in ("p50 ms", "p99 ms")]


def results_rows(output: str) -> list[list[str]]:
    section = output.split("## Results", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| ")]
    return rows[1:]  # without the header


def is_number(cell: str) -> bool:
    return re.fullmatch(r"\d[\d,]*(\.\d+)?", cell) is not None


def test_quick_benchmark_prints_every_figure_for_both_servers():
    result = subprocess.run([sys.executable, "-m", "infra.bench", "--quick"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    rows = results_rows(result.stdout)
    for expected, absent in ([(row, None) for row in EXPECTED_ROWS] + [(row, "no scanner") for row in PORTLOG_ONLY_ROWS]
                             + [(row, "no online backup") for row in NO_BACKUP_ROWS]
                             + [(row, "no log shipping") for row in NO_LOG_SHIPPING_ROWS]):
        figure, unit, tool = expected
        matching = [row for row in rows if row[0].startswith(figure) and f", {unit} (" in row[0]
                    and row[1].startswith(tool)]
        assert len(matching) == 1, f"no single row for {figure} {unit} {tool}:\n{result.stdout}"
        _, _, portlog, distribution, ratio = matching[0]
        assert is_number(portlog), matching[0]
        if absent:
            assert (distribution, ratio) == (f"— ({absent})", "–"), matching[0]
        else:
            assert is_number(distribution) and ratio.endswith("×"), matching[0]
    assert len(rows) == len(EXPECTED_ROWS) + len(PORTLOG_ONLY_ROWS) + len(NO_BACKUP_ROWS) + len(NO_LOG_SHIPPING_ROWS)
    assert "(lower is better)" in next(row[0] for row in rows if row[0].startswith("follower lag"))
    assert "## Machine limits" in result.stdout
    for limit in ("sha256, one core", "loopback TCP", "disk sequential write + fsync", "disk sequential read"):
        assert re.search(rf"\| {re.escape(limit)} \| \d", result.stdout), limit
