"""Readings and the tables printed at the end of a run (Markdown, ready for
docs/performance.md)."""

from __future__ import annotations

import math
import statistics
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
    round: int = 0  # which alternation of the run (cli.py --rounds)

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


def _median(readings: list[Reading]) -> Reading | None:
    """The reading ranked in the middle by value: a real run's, with its CPU use (of an even
    number, the lower of the middle two)."""
    ranked = sorted((r for r in readings if not r.absent), key=lambda r: r.value)
    if not ranked:
        return readings[0] if readings else None
    return ranked[(len(ranked) - 1) // 2]


def _by_round(first: list[Reading], second: list[Reading]) -> list[tuple[Reading, Reading]]:
    """The two servers' readings of the same round (measured one right after the other)."""
    seconds = {r.round: r for r in second if not r.absent}
    return [(r, seconds[r.round]) for r in first if not r.absent and r.round in seconds]


def _spread_cell(values: list[float], form: str) -> str:
    """The median of the rounds' values, and their range when there were several."""
    if not values:
        return "–"
    middle = form.format(statistics.median(values))
    return middle if len(values) == 1 else f"{middle} ({form.format(min(values))} … {form.format(max(values))})"


def _ratio(portlog: list[Reading], distribution: list[Reading]) -> str:
    ratios = [a.value / b.value for a, b in _by_round(portlog, distribution) if b.value]
    return _spread_cell(ratios, "{:.2f}×")


def _paired(readings: dict[str, list[Reading]], first: str = "Portlog",
            second: str = "Distribution") -> list[tuple[list[Reading], list[Reading]]]:
    """Rows in first-seen order: each figure's readings of the two servers (one per round)."""
    rows: dict[tuple, tuple[list, list]] = {}
    for slot, server in enumerate((first, second)):
        for reading in readings.get(server, []):
            rows.setdefault(reading.key, ([], []))[slot].append(reading)
    return list(rows.values())


def _value_cell(readings: list[Reading]) -> str:
    reading = _median(readings)
    if reading is None:
        return "–"
    if reading.absent:
        return f"— ({reading.absent})"
    cell = _number(reading.value)
    errors = sum(r.errors for r in readings)
    return cell + (f" ({errors} errors)" if errors else "")


def results_table(readings: dict[str, list[Reading]], first: str = "Portlog", second: str = "Distribution") -> str:
    """Each figure of the two servers: the median over the rounds, and the ratio's median and
    range over the rounds (each round's two readings taken one right after the other)."""
    lines = [f"| figure | tool | {first} | {second} | {first}/{second} |",
             "|---|---|--:|--:|--:|"]
    for portlog, distribution in _paired(readings, first, second):
        any_reading = (portlog or distribution)[0]
        better = "lower is better" if any_reading.lower_is_better else "higher is better"
        tools = sorted({r.tool for r in portlog + distribution if not r.absent})
        lines.append(f"| {any_reading.figure}, {any_reading.unit} ({better}) | {' / '.join(tools)} "
                     f"| {_value_cell(portlog)} | {_value_cell(distribution)} | {_ratio(portlog, distribution)} |")
    return "\n".join(lines)


def cpu_table(readings: dict[str, list[Reading]], first: str = "Portlog", second: str = "Distribution") -> str:
    """Cores used during each run, by the server, the clients, the kernel and other processes
    (see cpu.py; for a scale-out node, the machine's PostgreSQL is among the others, the
    services the benchmark started count in kernel). A server
    near 1.0 is bound by one thread (a one-process Portlog's event loop); 2.0 is the whole
    machine, shared with the load generator. A server's figure is its whole process tree."""
    parts = ("server", "clients", "kernel", "others")
    lines = ["| run | tool | " + " | ".join(f"{server} {part}" for server in (first, second)
                                             for part in parts) + " |",
             "|---|---|" + "--:|" * 2 * len(parts)]
    seen = set()
    for pair in _paired(readings, first, second):
        portlog, distribution = (_median(rs) for rs in pair)
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
    """Each figure of the servers side by side (medians over the rounds), and what each costs
    against `baseline`: a positive percentage is that much slower or lower, the median of the
    rounds' costs with their range (each round's readings taken one right after the other)."""
    present = [name for name in others if name in readings]
    lines = [f"| figure | tool | {baseline} | " + " | ".join(f"{name} | cost" for name in present) + " |",
             "|---|---|--:|" + "--:|--:|" * len(present)]
    for base_runs, *other_runs in _grouped(readings, baseline, present):
        base = _median(base_runs)
        if base.unit not in ("req/s", "MiB/s", "p50 ms", "p99 ms", "CPU µs per request") or base.absent:
            continue
        cells = []
        for runs in other_runs:
            cells += [_value_cell(runs), _cost(base_runs, runs, lambda r: r.value)]
        better = "lower is better" if base.lower_is_better else "higher is better"
        lines.append(f"| {base.figure}, {base.unit} ({better}) | {base.tool} | {_number(base.value)} | "
                     + " | ".join(cells) + " |")
        if base.unit in _CPU_PER_UNIT and base.usage:
            cells = []
            for runs in other_runs:
                costs = [c for c in map(_cpu_per_unit, runs) if c is not None]
                cells += [_number(statistics.median(costs)) if costs else "–",
                          _cost(base_runs, runs, _cpu_per_unit, lower_is_better=True)]
            figure, unit = _CPU_PER_UNIT[base.unit]
            base_costs = [c for c in map(_cpu_per_unit, base_runs) if c is not None]
            lines.append(f"| {base.figure}, {figure}, {unit} (lower is better) | {base.tool} | "
                         f"{_number(statistics.median(base_costs))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _grouped(readings: dict[str, list[Reading]], first: str, others: list[str]) -> list[list[list[Reading]]]:
    """For each figure of `first` (in first-seen order), its readings and each other server's."""
    rows: dict[tuple, list[list[Reading]]] = {}
    for reading in readings.get(first, []):
        rows.setdefault(reading.key, [[] for _ in range(1 + len(others))])[0].append(reading)
    for slot, name in enumerate(others, start=1):
        for reading in readings[name]:
            if reading.key in rows:
                rows[reading.key][slot].append(reading)
    return list(rows.values())


# The server's CPU time per unit of work: less sensitive than throughput to other processes.
_CPU_PER_UNIT = {"req/s": ("server CPU per request", "µs"), "MiB/s": ("server CPU per MiB", "ms")}


def _cpu_per_unit(reading: Reading | None) -> float | None:
    if reading is None or reading.usage is None or not reading.value:
        return None
    scale = 1e6 if reading.unit == "req/s" else 1e3
    return reading.usage.server / reading.value * scale


def _cost(base: list[Reading], other: list[Reading], measure, lower_is_better: bool | None = None) -> str:
    """How much worse `other` is than `base`, round by round, as a median and range."""
    costs = []
    for before, after in _by_round(base, other):
        base_value, value = measure(before), measure(after)
        if base_value and value is not None:
            change = (value - base_value) / base_value
            lower = before.lower_is_better if lower_is_better is None else lower_is_better
            costs.append(change if lower else -change)
    return _spread_cell(costs, "{:+.1%}")


DISTURBED_CORES = 0.2


def notes(readings: dict[str, list[Reading]]) -> list[str]:
    """Failed operations, and runs during which other processes used the CPU."""
    found, seen = [], set()
    for server, server_readings in readings.items():
        for reading in server_readings:
            run = (server, reading.figure, reading.tool, reading.round)
            if reading.note:
                found.append(f"{server}, {reading.figure} ({reading.tool}, round {reading.round + 1}): "
                             f"{reading.note}")
            others = reading.usage.others if reading.usage else 0.0
            if others > DISTURBED_CORES and run not in seen:
                found.append(f"{server}, {reading.figure} ({reading.tool}, round {reading.round + 1}): other "
                             f"processes used {others:.2f} cores meanwhile; the figure is disturbed")
            seen.add(run)
    return found


def limits_table(rows: list[tuple[str, float, str]]) -> str:
    lines = ["| machine limit | MiB/s | how |", "|---|--:|---|"]
    lines += [f"| {name} | {_number(value)} | {how} |" for name, value, how in rows]
    return "\n".join(lines)
