"""The benchmark still runs: `python -m infra.bench --quick` against a live Portlog and a live
Distribution, at tiny sizes. It checks that every figure has a number for both servers, and
nothing about the numbers themselves (no timing assertions: this machine is not a lab). With
its default servers it also compares both without access logs, and Portlog with one worker
against its default, each pair in a table of its own."""

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
    *[(f"peak resident memory over the whole run, {what}", "MiB", "/proc")
      for what in ("whole server (sum of its processes' VmHWM)", "largest worker process (VmHWM)")],
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


def table_rows(output: str, title: str = "Results", level: str = "##") -> list[list[str]]:
    """The rows of the table under the heading `title` (`##`, or `###` for a CPU table), the header first."""
    section = re.split(rf"^{level} {re.escape(title)}\n", output, maxsplit=1, flags=re.M)[1]
    section = re.split(r"^##", section, maxsplit=1, flags=re.M)[0]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| ")]


def results_rows(output: str, title: str = "Results") -> list[list[str]]:
    return table_rows(output, title)[1:]  # without the header


def is_number(cell: str) -> bool:
    return re.fullmatch(r"\d[\d,]*(\.\d+)?", cell) is not None


def test_quick_benchmark_prints_every_figure_for_both_servers():
    result = subprocess.run([sys.executable, "-m", "infra.bench", "--quick", "--servers", "portlog,distribution"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
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
    assert "## Access logs off" not in result.stdout and "## One worker" not in result.stdout  # not run


# (section, first server, second server) of the default servers' tables.
DEFAULT_TABLES = [("Results", "Portlog", "Distribution"),
                  ("Access logs off", "Portlog no access log", "Distribution no access log"),
                  ("One worker against the default", "Portlog", "Portlog 1 worker")]
MANIFEST_LINE = {"portlog": "portlog.access: GET /v2/bench/manifest/manifests/latest 200",
                 "distribution": '"GET /v2/bench/manifest/manifests/latest HTTP/1.1" 200'}


def test_quick_benchmark_with_its_default_servers_compares_logging_and_workers(tmp_path):
    result = subprocess.run([sys.executable, "-m", "infra.bench", "--quick", "--no-limits", "--only", "manifest-get",
                             "--work-dir", str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    titles = re.findall(r"^## (.+)$", result.stdout.split("## Runs", 1)[1], re.M)
    assert titles[:3] == [title for title, _, _ in DEFAULT_TABLES], titles
    for title, first, second in DEFAULT_TABLES:
        header, *rows = table_rows(result.stdout, title)
        assert header[2:] == [first, second, f"{first}/{second}"], header
        figures = [(row[0].split(", c=")[0], row[1].split()[0]) for row in rows]
        assert figures.count(("manifest GET by tag", "python")) == 3, rows  # req/s, p50, p99
        assert figures.count(("manifest GET by tag", "wrk")) == 3, rows
        for row in rows:
            assert is_number(row[2]) and is_number(row[3]) and row[4].endswith("×"), row
        memory = {row[0].split(", ")[1]: row for row in rows if row[0].startswith("peak resident memory")}
        whole, worker = memory["whole server (sum of its processes' VmHWM)"], memory["largest worker process (VmHWM)"]
        for column in (2, 3):  # a worker is part of its server
            assert float(whole[column].replace(",", "")) >= float(worker[column].replace(",", "")), (whole, worker)
        header, *cpu_rows = table_rows(result.stdout, title, "###")  # its CPU table
        assert header[2:] == [f"{server} {part}" for server in (first, second)
                              for part in ("server", "clients", "kernel", "others")], header
        assert [row[1].split()[0] for row in cpu_rows] == ["python", "wrk"], cpu_rows
        assert all(is_number(cell) for row in cpu_rows for cell in row[2:]), cpu_rows
    assert re.search(r"^- Portlog 1 worker: 1 process, 1 serving requests$", result.stdout, re.M), result.stdout

    logs = {key: (tmp_path / key / "server.log").read_text() for key in
            ("portlog", "distribution", "portlog-1-worker", "portlog-no-access-log", "distribution-no-access-log")}
    for key, log in logs.items():
        line = MANIFEST_LINE[key.split("-")[0]]
        assert (line in log) == ("no-access-log" not in key), key  # access lines by default, none when off
