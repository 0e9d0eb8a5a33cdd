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


@dataclass(frozen=True)
class _Plan:
    sql: str
    compiled: SQLCompiler
    processors: dict[str, Callable[[Any], Any]]
    order: tuple[str, ...] | None  # positional drivers (sqlite3): the parameters' order
    names: dict[str, str]  # named drivers (psycopg): escaped bind names

    def parameters(self, given: dict) -> tuple | dict:
        values = self.compiled.construct_params(given, escape_names=False)
        processors = self.processors
        for key, process in processors.items():
            if key in values:
                values[key] = process(values[key])
        if self.order is not None:
            return tuple(values[key] for key in self.order)
        return {self.names.get(key, key): value for key, value in values.items()}


class Plans:
    """Compiled statements of one dialect. Keyed weakly by the statement: one a projection builds
    per event (with its values inside) is never planned (seen once), and its entry goes with it."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def plan(self, statement: Any, parameters: dict) -> _Plan | None:
        keys = tuple(sorted(parameters))
        try:
            by_keys = self._plans.get(statement)
        except TypeError:  # not weakly referenceable: not ours to plan
            return None
        if by_keys is None:
            self._plans[statement] = {}  # first sighting: SQLAlchemy runs it
            return None
        if keys not in by_keys:
            by_keys[keys] = self._compile(statement, keys)
        return by_keys[keys]

    def _compile(self, statement: Any, keys: tuple[str, ...]) -> _Plan | None:
        compiled = statement.compile(dialect=self.dialect, column_keys=list(keys))
        if (compiled.insert_prefetch or compiled.update_prefetch or compiled.literal_execute_params
                or compiled.post_compile_params or compiled.returning or compiled.schema_translate_map
                or statement._returning):
            return None  # SQLAlchemy's execution does more than convert parameters: let it
        return _Plan(compiled.string, compiled, dict(compiled._bind_processors),
                     tuple(compiled.positiontup) if compiled.positional else None,
                     dict(compiled.escaped_bind_names or {}))


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
