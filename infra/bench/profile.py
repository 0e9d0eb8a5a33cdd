"""Optional: py-spy on Portlog during each timed run (`--profile DIR`), and a summary of where
the samples fell.

py-spy samples every thread without pausing the server (`--nonblocking`), and every process
of a multi-worker Portlog (the supervisor and its workers, gathered in one profile); on 2
cores its own CPU still makes a profiled run up to a quarter slower. It writes collapsed stacks
(`-f raw`: `frame;frame;... count` per line), which any flame-graph tool reads. Samples whose
innermost frame is a wait (a thread-pool worker waiting for work; the event loop inside
uvloop's C code with no Python frame above it, which also hides uvloop's own work) are set
aside: the summary's shares are of the remaining, busy samples. For each function (at the
line sampled) it gives the share where it was innermost (self) and anywhere in the stack
(total, all lines of that function).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from infra.bench import cpu

_FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^()]*?):(?P<line>\d+)\)$")
WAITS = {("Condition.wait", "threading.py"), ("Event.wait", "threading.py"), ("Runner.run", "asyncio/runners.py")}


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextmanager
def recording(pid: int, output: Path, rate: int = 100):
    """py-spy records `pid` and its descendants (a supervisor's workers) into `output` while the
    block runs: one py-spy per process (`--subprocesses` samples only the processes started
    after it, not the workers already running), their stacks then gathered in `output`, each
    under a first frame `process <pid>`."""
    members = cpu.process_tree(pid)
    if len(members) == 1:
        with _recorded(pid, output, rate):
            yield
        return
    parts = {member: output.with_name(f"{output.stem}.{member}{output.suffix}") for member in members}
    with contextlib.ExitStack() as stack:
        for member, part in parts.items():
            stack.enter_context(_recorded(member, part, rate))
        yield
    _gather(parts, output)


@contextmanager
def _recorded(pid: int, output: Path, rate: int):
    command = [py_spy(), "record", "--nonblocking", "-r", str(rate), "-f", "raw", "-p", str(pid),
               "-o", str(output)]
    with open(output.with_suffix(".log"), "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _gather(parts: dict[int, Path], output: Path) -> None:
    with open(output, "w") as gathered:
        for member, part in parts.items():
            if part.exists():
                for line in part.read_text(errors="replace").splitlines():
                    gathered.write(f"process {member};{line}\n")
                part.unlink()
            log = part.with_suffix(".log")
            if log.exists():
                with open(output.with_suffix(".log"), "a") as merged:
                    merged.write(f"process {member}:\n{log.read_text(errors='replace')}")
                log.unlink()


def _frames(stack: str) -> list[tuple[str, str]]:
    """(function, file:line) of each frame, outermost first."""
    frames = []
    for text in stack.split(";"):
        match = _FRAME.match(text.strip())
        if match:
            frames.append((match["function"], f"{match['file']}:{match['line']}"))
    return frames


def _is_wait(frame: tuple[str, str]) -> bool:
    function, where = frame
    return (function, where.rsplit(":", 1)[0]) in WAITS


def _samples(path: Path):
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = _frames(stack)
        if count.isdigit() and frames:
            yield frames, int(count)


def summarize(path: Path, top: int = 15) -> tuple[float, list[tuple[str, float, float]]]:
    """(share of samples that were waits, [(function (file:line), self share, total share)]),
    shares of the busy samples, biggest self share first."""
    own, anywhere, busy, waits = Counter(), Counter(), 0, 0
    for frames, samples in _samples(path):
        if _is_wait(frames[-1]):
            waits += samples
            continue
        busy += samples
        function, where = frames[-1]
        own[(function, where)] += samples
        for name in {(f, w.rsplit(":", 1)[0]) for f, w in frames}:
            anywhere[name] += samples
    if not busy:
        return 1.0 if waits else 0.0, []
    rows = [(f"{function} ({where})", samples / busy, anywhere[(function, where.rsplit(":", 1)[0])] / busy)
            for (function, where), samples in own.most_common(top)]
    return waits / (waits + busy), rows
