"""Readings and the tables printed at the end of a run (Markdown, ready for
docs/performance.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra.bench.cpu import Usage


@dataclass
class Reading:
    """One figure, measured on one server by one tool."""
    figure: str  # what, with its size and concurrency: "blob pull, 1 MiB, c=16"
    unit: str  # "MiB/s", "req/s", "ms", "MiB", "images/s"
    tool: str  # which load generator produced it
    value: float
    lower_is_better: bool = False
    usage: Usage | None = None  # where the CPU went during the run
    errors: int = 0
    note: str = ""
    absent: str = ""  # why this server has no such figure (Distribution has no scanner): shown as "— (why)"

    @property
    def key(self) -> tuple[str, str, str]:
        return self.figure, self.unit, self.tool.split()[0]


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


SCALE_OUT = "Portlog scale-out"


def _ratio(portlog: Reading | None, distribution: Reading | None) -> str:
    if not portlog or not distribution or not distribution.value or portlog.absent or distribution.absent:
        return "–"
    return f"{portlog.value / distribution.value:.2f}×"


def _paired(readings: dict[str, list[Reading]], first: str = "Portlog",
            second: str = "Distribution") -> list[tuple[Reading | None, Reading | None]]:
    """Rows in first-seen order, the two servers' readings of each side by side."""
    rows: dict[tuple, list] = {}
    for slot, server in enumerate((first, second)):
        for reading in readings.get(server, []):
            rows.setdefault(reading.key, [None, None])[slot] = reading
    return [tuple(pair) for pair in rows.values() if any(pair)]


def results_table(readings: dict[str, list[Reading]], first: str = "Portlog", second: str = "Distribution") -> str:
    lines = [f"| figure | tool | {first} | {second} | {first}/{second} |",
             "|---|---|--:|--:|--:|"]
    for portlog, distribution in _paired(readings, first, second):
        any_reading = portlog or distribution
        better = "lower is better" if any_reading.lower_is_better else "higher is better"
        tools = sorted({r.tool for r in (portlog, distribution) if r and not r.absent})
        cells = []
        for reading in (portlog, distribution):
            cell = f"— ({reading.absent})" if reading and reading.absent else _number(reading.value) if reading else "–"
            if reading and reading.errors:
                cell += f" ({reading.errors} errors)"
            cells.append(cell)
        lines.append(f"| {any_reading.figure}, {any_reading.unit} ({better}) | {' / '.join(tools)} "
                     f"| {cells[0]} | {cells[1]} | {_ratio(portlog, distribution)} |")
    return "\n".join(lines)


def cpu_table(readings: dict[str, list[Reading]], first: str = "Portlog", second: str = "Distribution") -> str:
    """Cores used during each run, by the server, the clients, the kernel and other processes
    (see cpu.py; for a scale-out node, PostgreSQL and SeaweedFS are among the others). A server
    near 1.0 is bound by one thread (Portlog's event loop); 2.0 is the whole machine, shared
    with the load generator."""
    parts = ("server", "clients", "kernel", "others")
    lines = ["| run | tool | " + " | ".join(f"{server} {part}" for server in (first, second)
                                             for part in parts) + " |",
             "|---|---|" + "--:|" * 2 * len(parts)]
    seen = set()
    for portlog, distribution in _paired(readings, first, second):
        any_reading = portlog or distribution
        run = (any_reading.figure, any_reading.tool.split()[0])
        if any_reading.usage is None or run in seen:
            continue
        seen.add(run)
        cells = [_number(getattr(r.usage, part)) if r and r.usage else "–"
                 for r in (portlog, distribution) for part in parts]
        lines.append(f"| {any_reading.figure} | {any_reading.tool} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overhead_table(readings: dict[str, list[Reading]], baseline: str, *others: str) -> str:
    """Each figure of the servers side by side, and what each costs against `baseline` (a
    positive percentage: that much slower or lower)."""
    present = [name for name in others if name in readings]
    lines = [f"| figure | tool | {baseline} | " + " | ".join(f"{name} | cost" for name in present) + " |",
             "|---|---|--:|" + "--:|--:|" * len(present)]
    by_key = {name: {r.key: r for r in readings[name]} for name in present}
    for base in readings.get(baseline, []):
        if base.unit not in ("req/s", "MiB/s", "p50 ms", "p99 ms") or base.absent:
            continue
        cells = []
        for name in present:
            other = by_key[name].get(base.key)
            cells += [_number(other.value) if other else "–", _cost(base, other)]
        better = "lower is better" if base.lower_is_better else "higher is better"
        lines.append(f"| {base.figure}, {base.unit} ({better}) | {base.tool} | {_number(base.value)} | "
                     + " | ".join(cells) + " |")
        if base.unit in _CPU_PER_UNIT and base.usage:
            cells = []
            for name in present:
                other = by_key[name].get(base.key)
                cost = _cpu_per_unit(other)
                cells += [_number(cost), _cost(Reading("", "", "", _cpu_per_unit(base), True),
                                               Reading("", "", "", cost, True) if cost else None)]
            figure, unit = _CPU_PER_UNIT[base.unit]
            lines.append(f"| {base.figure}, {figure}, {unit} (lower is better) | {base.tool} | "
                         f"{_number(_cpu_per_unit(base))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# The server's CPU time per unit of work: less sensitive than throughput to other processes.
_CPU_PER_UNIT = {"req/s": ("server CPU per request", "µs"), "MiB/s": ("server CPU per MiB", "ms")}


def _cpu_per_unit(reading: Reading | None) -> float | None:
    if reading is None or reading.usage is None or not reading.value:
        return None
    scale = 1e6 if reading.unit == "req/s" else 1e3
    return reading.usage.server / reading.value * scale


def _cost(base: Reading, other: Reading | None) -> str:
    if other is None or not base.value or other.absent:
        return "–"
    change = (other.value - base.value) / base.value
    return f"{(change if base.lower_is_better else -change):+.1%}"


DISTURBED_CORES = 0.2


def notes(readings: dict[str, list[Reading]]) -> list[str]:
    """Failed operations, and runs during which other processes used the CPU."""
    found, seen = [], set()
    for server, server_readings in readings.items():
        for reading in server_readings:
            run = (server, reading.figure, reading.tool)
            if reading.note:
                found.append(f"{server}, {reading.figure} ({reading.tool}): {reading.note}")
            others = reading.usage.others if reading.usage else 0.0
            if others > DISTURBED_CORES and run not in seen:
                found.append(f"{server}, {reading.figure} ({reading.tool}): other processes used "
                             f"{others:.2f} cores meanwhile; the figure is disturbed")
            seen.add(run)
    return found


def limits_table(rows: list[tuple[str, float, str]]) -> str:
    lines = ["| machine limit | MiB/s | how |", "|---|--:|---|"]
    lines += [f"| {name} | {_number(value)} | {how} |" for name, value, how in rows]
    return "\n".join(lines)
