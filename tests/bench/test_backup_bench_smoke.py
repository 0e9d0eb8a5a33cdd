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
    result = subprocess.run([sys.executable, "-m", "infra.bench", "--quick", "--only", "backup", "--no-limits"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    rows = {(row[0], row[1]): row for row in results_rows(result.stdout)}
    for unit in ("MiB/s", "blobs/s"):
        figure = f"backup, 8 × 64 KiB blobs (and earlier workloads'), {unit} (higher is better)"
        backup, copy = rows[(figure, "portlog backup create")], rows[(figure, "cp -r (blob directory)")]
        assert is_number(backup[2]) and float(backup[2].replace(",", "")) > 0, backup
        assert backup[3] == "— (no online backup)", backup
        assert is_number(copy[2]) and is_number(copy[3]), copy
    assert "8 blobs" in result.stdout  # the backup's own count: exactly what was pushed
