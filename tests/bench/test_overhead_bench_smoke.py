"""The observability overhead benchmark still runs: `python -m infra.bench --quick --overhead`
starts Portlog with metrics and tracing off, with metrics on, and with both on (its spans to a
local OTLP receiver; every request traced, and a tenth), and prints manifest GET and blob pull
figures for the four side by side, in two rounds whose order alternates: each cost is the median
of the rounds' costs with their range. The CPU per manifest GET of metrics off and on, in one
process, comes with them. Nothing about the numbers themselves (this machine is not
a lab), except that spans arrived, fewer when sampled."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.test_bench_smoke import is_number

pytestmark = pytest.mark.e2e  # wrk comes from scripts/install-system-packages

REPO_ROOT = Path(__file__).resolve().parents[2]


PERCENT = r"[+-]\d+\.\d%"
COST = rf"{PERCENT} \({PERCENT} … {PERCENT}\)"  # the median of two rounds, (lowest … highest)


def overhead_rows(output: str) -> list[list[str]]:
    section = output.split("## Observability overhead", 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| ")][1:]


def test_quick_overhead_benchmark_compares_metrics_and_tracing_on_and_off():
    result = subprocess.run([sys.executable, "-m", "infra.bench", "--quick", "--overhead", "--no-limits",
                             "--rounds", "2"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    rows = overhead_rows(result.stdout)
    for figure in ("manifest GET by tag, c=4, req/s", "blob pull, 64 KiB, c=4, MiB/s"):
        [row] = [row for row in rows if row[0].startswith(figure) and row[1].startswith("python")]
        _, _, off, metrics, metrics_cost, traced, traced_cost, sampled, sampled_cost = row
        assert all(is_number(cell) for cell in (off, metrics, traced, sampled)), row
        assert all(re.fullmatch(COST, cell) for cell in (metrics_cost, traced_cost, sampled_cost)), row
    [in_process] = [row for row in rows if row[0].startswith("manifest GET by tag, in one process")]
    assert is_number(in_process[2]) and is_number(in_process[3]) and re.fullmatch(COST, in_process[4]), in_process
    runs = re.findall(r"^- (Portlog[^:]*?) +manifest GET by tag, c=4 \(round (\d)/2\): [\d,.]+ req/s \[python",
                      result.stdout, re.M)
    assert [round_ for _, round_ in runs] == ["1"] * 4 + ["2"] * 4, runs
    order = [server for server, _ in runs]
    assert order[4:] == order[:4][::-1], order  # the second round in the reverse order
    spans = re.search(r"Portlog traced: ([\d,]+) spans received", result.stdout)
    sampled_spans = re.search(r"Portlog traced 10 %: ([\d,]+) spans received", result.stdout)
    assert spans and sampled_spans, result.stdout[-4000:]
    every, tenth = (int(found[1].replace(",", "")) for found in (spans, sampled_spans))
    assert every > 100 and 0 < tenth < every / 3, (every, tenth)  # the sampler dropped most
