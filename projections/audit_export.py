"""Audit trail export as JSON lines or CSV, streamed page by page (API and CLI share it)."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import datetime, timezone
from typing import Iterator

import orjson

from projections.audit import AUDIT_COLUMNS, AuditFilter, AuditView

PAGE = 1000
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


def export(view: AuditView, where: AuditFilter, fmt: str) -> Iterator[bytes]:
    if fmt == "csv":
        yield _csv_line(AUDIT_COLUMNS)
    while entries := view.entries(where, PAGE):
        for entry in entries:
            yield json_line(entry) if fmt == "jsonl" else _csv_line(_csv_values(entry))
        cursor = "before" if where.newest_first else "after"
        where = dataclasses.replace(where, **{cursor: entries[-1]["position"]})


def json_line(entry: dict) -> bytes:
    return orjson.dumps(entry, default=str, option=orjson.OPT_NAIVE_UTC) + b"\n"


def _csv_values(entry: dict) -> list:
    return [orjson.dumps(entry[c]).decode() if c == "details" else _text(entry[c]) for c in AUDIT_COLUMNS]


def _text(value) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    return "" if value is None else str(value)


def _csv_line(values) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue().encode()
