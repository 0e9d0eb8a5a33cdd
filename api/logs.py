"""Portlog's log lines (the `portlog` logger and its children: the access line, relay, workers,
unavailable databases) and uvicorn's go to standard error, as text or as one JSON object a line
(`log.format = json`, for log shippers), at the configured level, with per-logger levels
(`log.levels`, e.g. `portlog.gc = "debug"`). With tracing on, a record written inside a span
carries its `trace_id` (adapters/tracing.py): a field of the JSON object, `trace_id=…` at the end
of a text line."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

import orjson

TEXT_FORMAT = "%(levelname)-9s %(name)s: %(message)s"
# What every LogRecord has: anything else on a record came as `extra=` (the access line's
# fields, a trace id) and goes into the JSON object as a field of its own.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the record's extra
    fields, and the traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        entry.update((key, value) for key, value in vars(record).items()
                     if key not in _STANDARD and not key.startswith("_"))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        trace_id = getattr(record, "trace_id", "")
        return f"{text} trace_id={trace_id}" if trace_id else text


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT)


def level_number(level: str) -> int:
    return logging.DEBUG if level == "trace" else logging.getLevelName(level.upper())  # trace is uvicorn's


def configure(level: str, log_format: str = "text", levels: tuple[tuple[str, str], ...] = ()) -> None:
    logger = logging.getLogger("portlog")
    logger.setLevel(level_number(level))
    handler = next((h for h in logger.handlers if getattr(h, "portlog", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.portlog = True
        logger.addHandler(handler)
        logger.propagate = False
    handler.setFormatter(formatter(log_format))
    for name, name_level in levels:
        logging.getLogger(name).setLevel(level_number(name_level))


def uvicorn_log_config(level: str, log_format: str, levels: tuple[tuple[str, str], ...] = ()) -> dict:
    """uvicorn's own lines (startup, errors) in the same format, at the same level or their own
    (`uvicorn.error = "warning"`). Given with log_level=None, so uvicorn keeps these levels. Its
    access log stays off: Portlog writes its own access line (api/access_log.py)."""
    text = {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s", "use_colors": False}
    own = {name: _uvicorn_level(name_level) for name, name_level in levels if name.split(".")[0] == "uvicorn"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"default": {"()": "api.logs.JsonFormatter"} if log_format == "json" else text},
        "handlers": {"default": {"formatter": "default", "class": "logging.StreamHandler",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {"uvicorn": {"handlers": ["default"], "level": own.get("uvicorn", _uvicorn_level(level)),
                                "propagate": False},
                    **{name: {"level": own.get(name, own.get("uvicorn", _uvicorn_level(level)))}
                       for name in UVICORN_LOGGERS},
                    **{name: {"level": name_level} for name, name_level in own.items()}},
    }


UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.access", "uvicorn.asgi")
UVICORN_TRACE = 5  # uvicorn's level below debug


def _uvicorn_level(level: str) -> int:
    return UVICORN_TRACE if level == "trace" else logging.getLevelName(level.upper())
