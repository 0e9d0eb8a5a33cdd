"""Portlog's own log lines (the `portlog` logger: relay, workers, unavailable databases) go to
standard error at the configured level, next to uvicorn's."""

from __future__ import annotations

import logging
import sys


def configure(level: str) -> None:
    logger = logging.getLogger("portlog")
    logger.setLevel("DEBUG" if level == "trace" else level.upper())  # trace is uvicorn's, below debug
    if not any(getattr(h, "portlog", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)-9s %(name)s: %(message)s"))
        handler.portlog = True
        logger.addHandler(handler)
        logger.propagate = False
