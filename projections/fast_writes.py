"""The connection the runner hands to projections: their INSERT, UPDATE and DELETE statements
with parameters go to the driver's cursor directly, compiled once.

A projection runs the same few statements for every event (built once, at import, with
bind parameters). Through SQLAlchemy each execution costs about 22 µs of Python (execution
context, parameter processing, result set-up) around 3 µs of SQLite work, and a rebuild runs
about ten per event (measured: infra/bench/rebuild.py, docs/performance.md "Replay speed").
Here a statement seen a second time is compiled for the dialect with SQLAlchemy's own compiler,
and each execution only converts its parameters (SQLAlchemy's bind processors: a datetime
becomes SQLite's text the same way) and calls `cursor.execute`, on the same DB-API connection
and so in the same transaction. Everything else (queries, statements built per event, expanding
IN lists, Python-side column defaults, RETURNING) goes through SQLAlchemy as before.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

_FIXED = object()  # a step whose value is in the statement, not in the parameters
_UNPLANNED = object()


@dataclass(frozen=True)
class _Plan:
    sql: str
    steps: tuple[tuple[str, Any, Callable[[Any], Any] | None, Any], ...]  # (name, key or _FIXED, processor, value)
    positional: bool  # sqlite3 takes a sequence in `steps` order; psycopg a dict by name

    def parameters(self, given: dict) -> tuple | dict:
        values = [value if key is _FIXED else process(given[key]) if process else given[key]
                  for _, key, process, value in self.steps]
        if self.positional:
            return tuple(values)
        return {step[0]: value for step, value in zip(self.steps, values)}


def _steps(compiled: SQLCompiler, keys: tuple[str, ...]):
    """Where each bind parameter's value comes from, in the driver's order, as SQLAlchemy's
    `construct_params` would take it; None when some value is computed at execution."""
    collected = (getattr(compiled, "_collect_params", False) and compiled._collected_params) or {}
    sources = {}
    for bind, name in compiled.bind_names.items():
        if bind.key in keys:
            sources[name] = bind.key
        elif name in keys:
            sources[name] = name
        elif bind.key in collected or name in collected:
            sources[name] = _FIXED, collected.get(bind.key, collected.get(name))
        elif bind.callable is not None or bind.required:
            return None
        else:
            sources[name] = _FIXED, bind.effective_value
    names = compiled.positiontup if compiled.positional else list(sources)
    processors = compiled._bind_processors
    escaped = compiled.escaped_bind_names or {}
    steps = []
    for name in names:
        source, process = sources[name], processors.get(name)
        if isinstance(source, tuple):  # fixed: converted once
            value = process(source[1]) if process else source[1]
            steps.append((escaped.get(name, name), _FIXED, None, value))
        else:
            steps.append((escaped.get(name, name), source, process, None))
    return tuple(steps)


class Plans:
    """Compiled statements of one dialect, for the statements seen at least twice: one a
    projection builds per event (with its values inside) is seen once, remembered weakly, and
    never compiled here."""

    MAX_PLANNED = 1000  # far more than the projections' statements: a bound, should one be built per event

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._seen: weakref.WeakSet = weakref.WeakSet()
        self._planned: dict[Any, dict[tuple[str, ...], _Plan | None]] = {}

    def plan(self, statement: Any, parameters: dict) -> _Plan | None:
        keys = tuple(parameters)  # a call site passes its keys in one order
        by_keys = self._planned.get(statement)
        if by_keys is None:
            if statement not in self._seen:
                self._seen.add(statement)  # first sighting: SQLAlchemy runs it
                return None
            if len(self._planned) >= self.MAX_PLANNED:
                self._planned.clear()
            by_keys = self._planned[statement] = {}
        plan = by_keys.get(keys, _UNPLANNED)
        if plan is _UNPLANNED:
            plan = by_keys[keys] = self._compile(statement, tuple(sorted(keys)))
        return plan

    def _compile(self, statement: Any, keys: tuple[str, ...]) -> _Plan | None:
        compiled = statement.compile(dialect=self.dialect, column_keys=list(keys))
        if (compiled.insert_prefetch or compiled.update_prefetch or compiled.literal_execute_params
                or compiled.post_compile_params or compiled.returning or compiled.schema_translate_map
                or statement._returning):
            return None  # SQLAlchemy's execution does more than convert parameters: let it
        steps = _steps(compiled, keys)
        return None if steps is None else _Plan(compiled.string, steps, bool(compiled.positional))


@dataclass(frozen=True)
class _Written:
    rowcount: int


class FastWrites:
    """Wraps a Connection for the projections of one batch (see the module's doc)."""

    def __init__(self, conn: Connection, plans: Plans) -> None:
        self._conn = conn
        self._plans = plans
        self._cursor = None

    def execute(self, statement: Any, parameters: Any = None, *args, **kwargs) -> Any:
        if type(parameters) is dict and not args and not kwargs and getattr(statement, "is_dml", False):
            plan = self._plans.plan(statement, parameters)
            if plan is not None:
                cursor = self._driver_cursor()
                cursor.execute(plan.sql, plan.parameters(parameters))
                return _Written(cursor.rowcount)
        return self._conn.execute(statement, parameters, *args, **kwargs)

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None

    def _driver_cursor(self):
        if self._cursor is None:
            self._cursor = self._conn.connection.dbapi_connection.cursor()
        return self._cursor

    def __getattr__(self, name: str) -> Any:  # everything else is the Connection's
        return getattr(self._conn, name)
