"""The garbage-collection benchmark still runs: `python -m infra.bench.gc` at tiny sizes, in a
subprocess as it is used. It checks the benchmark's own correctness checks and that something
was collected, nothing about the timings (this machine is not a lab)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_tiny_gc_benchmark_collects_and_storage_equals_references(tmp_path):
    data_dir = tmp_path / "store"
    result = subprocess.run(
        [sys.executable, "-m", "infra.bench.gc", "--manifests", "40", "--blobs", "200",
         "--data-dir", str(data_dir), "--json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    report = json.loads(result.stdout)
    assert report["ok"] and all(report["checks"].values()), report["checks"]
    assert report["storage_equals_references"]
    assert report["store"]["repositories"] == 4 and report["store"]["repositories_deleted"] == 2
    real, dry = report["real_run"], report["dry_run"]
    assert real["status"] == dry["status"] == "succeeded"
    assert real["blobs"] > 0 and real["bytes"] > 0
    assert (real["blobs"], real["bytes"]) == (report["expected_freed"]["blobs"], report["expected_freed"]["bytes"])
    # A collected digest is Created, Condemned and Collected; the dry run records only its run.
    assert real["events_by_type"]["Blob.Collected"] == real["blobs"]
    assert set(dry["events_by_type"]) == {"GcRun.Started", "GcRun.Swept", "GcRun.Completed"}
    assert report["stored_after"] == report["kept"] == report["setup"]["stored_digests"] - real["blobs"]
    for figure in (real["seconds"], real["peak_rss_mib"], report["setup"]["seconds"]):
        assert figure > 0
