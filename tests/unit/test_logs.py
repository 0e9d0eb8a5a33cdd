"""api/logs.py: the JSON line's fields, and the levels it gives single loggers."""

from __future__ import annotations

import json
import logging

from api import logs


def test_a_json_line_has_the_extra_fields_and_the_traceback():
    try:
        raise ValueError("broken")
    except ValueError as error:
        record = logging.LogRecord("portlog.gc", logging.ERROR, __file__, 1, "run %d failed", (7,), (ValueError,
                                   error, error.__traceback__))
    record.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"  # as a logging filter adds it
    line = json.loads(logs.JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"]) == ("error", "portlog.gc", "run 7 failed")
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["exception"].startswith("Traceback") and "ValueError: broken" in line["exception"]
    assert "args" not in line and "exc_info" not in line and "msg" not in line


def test_levels_per_logger_and_uvicorns_config():
    portlog = logging.getLogger("portlog")
    before = (list(portlog.handlers), portlog.propagate, portlog.level)
    logs.configure("warning", "json", (("portlog.gc", "debug"), ("portlog.access", "error")))
    try:
        assert logging.getLogger("portlog").level == logging.WARNING
        assert logging.getLogger("portlog.gc").getEffectiveLevel() == logging.DEBUG
        assert not logging.getLogger("portlog.access").isEnabledFor(logging.INFO)
        handler = next(h for h in logging.getLogger("portlog").handlers if getattr(h, "portlog", False))
        assert isinstance(handler.formatter, logs.JsonFormatter)
    finally:  # as it was: other tests read portlog's records through the root logger (caplog)
        portlog.handlers[:], portlog.propagate, portlog.level = before
        for name in ("portlog.gc", "portlog.access"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    config = logs.uvicorn_log_config("trace", "json", (("uvicorn.error", "warning"),))
    assert config["formatters"]["default"] == {"()": "api.logs.JsonFormatter"}
    assert config["loggers"]["uvicorn"]["level"] == logs.UVICORN_TRACE
    assert config["loggers"]["uvicorn.error"]["level"] == logging.WARNING
    assert config["loggers"]["uvicorn.access"]["level"] == logs.UVICORN_TRACE
