"""The backup benchmark still runs: `python -m infra.bench --quick --only backup` against a live
Portlog and a live Distribution, at tiny sizes. It checks that `portlog backup create` and the
plain copy both have figures (Distribution's backup cell says why it has none), nothing about
the numbers themselves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.test_bench_smoke import is_number, results_rows

pytestmark = pytest.mark.e2e  # docker-registry comes from scripts/install-system-packages

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_quick_backup_benchmark_prints_backup_and_copy_figures():
    result = subprocess.run([sys.executable, "-m", "infra.bench", "--quick", "--only", "backup", "--no-limits",
                             "--servers", "portlog,distribution"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    rows = {(row[0], row[1]): row for row in results_rows(result.stdout)}
    for unit in ("MiB/s", "blobs/s"):
        figure = f"backup, 8 × 64 KiB blobs (and earlier workloads'), whole command, {unit} (higher is better)"
        copying = figure.replace("whole command", "Started to Completed")
        backup, alone = rows[(figure, "portlog backup create")], rows[(copying, "portlog backup create")]
        copy = rows[(figure, "cp -r + sync (blob directory)")]
        for row in (backup, alone):
            assert is_number(row[2]) and float(row[2].replace(",", "")) > 0, row
            assert row[3] == "— (no online backup)", row
        assert is_number(copy[2]) and is_number(copy[3]), copy
    assert "8 blobs" in result.stdout  # the backup's own count: exactly what was pushed
