"""How scripts/test spreads the suite over pytest-xdist workers (`--dist loadgroup`): the tests of
a module that shares a class-, module- or package-scoped fixture (a live `portlog serve`, a
browser, a peer registry) stay together on one worker, which starts it once; every other test
is a unit of its own, sent to whichever worker is free, so that no long module decides when the
run ends.

Units go out longest first, so that a long one does not start last: by each test's duration in
the last run (kept in pytest's cache), else by a guess (end-to-end, benchmark and browser tests
take seconds, the others a fraction of one).

The workers know which modules share such fixtures (they collect the tests); the controller,
which schedules, only sees test ids. Each worker writes the list into a file the controller
named (PORTLOG_TEST_SHARED_MODULES) before it reports its collection, and the scheduler reads it
once every worker has reported.

(xdist's own loadgroup marks the groups in test ids, which pytest 9's node ids no longer take.)
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

SHARED_SCOPES = ("class", "module", "package")
MODULES_FILE = "PORTLOG_TEST_SHARED_MODULES"
DURATIONS_KEY = "portlog/durations"
SLOW_DIRECTORIES = ("tests/e2e/", "tests/bench/", "tests/ui/")
GUESSED_SECONDS = {True: 10.0, False: 0.5}  # in a slow directory or not
_durations: dict[str, float] = {}


def name_the_file(config: pytest.Config) -> None:
    """In the controller, before the workers start (they inherit the environment)."""
    if not hasattr(config, "workerinput") and MODULES_FILE not in os.environ:
        handle, path = tempfile.mkstemp(prefix="portlog-shared-modules-", suffix=".json")
        os.close(handle)
        os.environ[MODULES_FILE] = path
        config.add_cleanup(lambda: Path(path).unlink(missing_ok=True))


def write_shared_modules(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a worker, after collection."""
    path = os.environ.get(MODULES_FILE)
    if not hasattr(config, "workerinput") or not path:
        return
    shared = sorted({item.nodeid.split("::", 1)[0] for item in items if _shares_a_fixture(item)})
    partial = Path(f"{path}.{config.workerinput['workerid']}")
    partial.write_text(json.dumps(shared))
    partial.replace(path)  # every worker collects the same tests: the last one to write wins


def _shares_a_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    return info is not None and any(d.scope in SHARED_SCOPES for defs in info.name2fixturedefs.values() for d in defs)


def record_duration(report: pytest.TestReport) -> None:
    """In the controller: setup, call and teardown of each test, as the workers report them."""
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def save_durations(config: pytest.Config) -> None:
    cache = getattr(config, "cache", None)
    if cache is not None and _durations and not hasattr(config, "workerinput"):
        cache.set(DURATIONS_KEY, {**cache.get(DURATIONS_KEY, {}), **_durations})


class SharedModuleScheduling(LoadScopeScheduling):
    """LoadScopeScheduling whose units are the modules with shared fixtures and single tests."""

    def __init__(self, config: pytest.Config, log=None) -> None:
        super().__init__(config, log)
        self._shared: set[str] | None = None  # unknown: every module is a unit (as --dist loadfile)

    def schedule(self) -> None:
        if self.collection is None:
            path = os.environ.get(MODULES_FILE)
            text = Path(path).read_text() if path and Path(path).exists() else ""
            self._shared = set(json.loads(text)) if text else None
            super().schedule()
            self._longest_first()
        else:
            super().schedule()

    def _longest_first(self) -> None:
        cache = getattr(self.config, "cache", None)
        known = cache.get(DURATIONS_KEY, {}) if cache is not None else {}

        def seconds(unit: tuple[str, dict[str, bool]]) -> float:
            return sum(known.get(nodeid, GUESSED_SECONDS[nodeid.startswith(SLOW_DIRECTORIES)]) for nodeid in unit[1])

        units = sorted(self.workqueue.items(), key=seconds, reverse=True)
        self.workqueue.clear()
        self.workqueue.update(units)

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return module if self._shared is None or module in self._shared else nodeid
