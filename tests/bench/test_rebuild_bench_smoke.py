"""The replay benchmark still runs: `python -m infra.bench.rebuild` on a tiny generated store, in a
subprocess as it is used. Nothing about the timings (this machine is not a lab): the store was
written, and the rebuild brought every read model to the log's head (the benchmark exits 1 when
one is short of it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_tiny_rebuild_benchmark_replays_the_generated_store(tmp_path):
    data_dir = tmp_path / "store"
    result = subprocess.run(
        [sys.executable, "-m", "infra.bench.rebuild", "--events", "400", "--data-dir", str(data_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    generated = re.search(r"generated ([\d,]+) events", result.stdout)
    rebuilt = re.search(r"rebuild \(sqlite\): ([\d,]+) events in [\d.]+ s: [\d,]+ events/s", result.stdout)
    assert generated and rebuilt, result.stdout
    assert int(rebuilt.group(1).replace(",", "")) == int(generated.group(1).replace(",", "")) >= 400
