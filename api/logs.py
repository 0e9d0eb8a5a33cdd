"""Portlog's own log lines (the `portlog` logger: relay, workers, unavailable databases) go to
standard error at the configured level, next to uvicorn's. With tracing on, a line written inside
a span ends with its `trace_id` (adapters/tracing.py's filter puts it on the record)."""

from __future__ import annotations

import logging
import sys


def configure(level: str) -> None:
    logger = logging.getLogger("portlog")
    logger.setLevel("DEBUG" if level == "trace" else level.upper())  # trace is uvicorn's, below debug
    if not any(getattr(h, "portlog", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_TextFormatter("%(levelname)-9s %(name)s: %(message)s"))
        handler.portlog = True
        logger.addHandler(handler)
        logger.propagate = False


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        trace_id = getattr(record, "trace_id", "")
        return f"{text} trace_id={trace_id}" if trace_id else text
