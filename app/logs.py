"""Logging: one line per record, with the process kind. Never log a command's body.

LOG_FORMAT=json makes each line a JSON object: time, level, process, logger, message, and the
trace_id / span_id of the current span and the command_id being worked for, when there are;
fields passed with `extra=` too, those with sensitive names masked.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import msgspec
from opentelemetry import trace

from app.kernel.log_context import current_command

SENSITIVE = ("password", "card", "token", "secret", "authorization", "cookie", "csrf")
"""An `extra=` field whose name contains one of these is written as "***"."""
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_encoder = msgspec.json.Encoder()


def masked(name: str, value: Any) -> Any:
    lowered = name.lower()
    if any(word in lowered for word in SENSITIVE):
        return "***"
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "process": self._process,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line["trace_id"] = f"{context.trace_id:032x}"
            line["span_id"] = f"{context.span_id:016x}"
        command_id = getattr(record, "command_id", None) or current_command.get()
        if command_id:
            line["command_id"] = command_id
        for name, value in record.__dict__.items():
            if name not in _STANDARD and name not in line:
                line[name] = masked(name, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(line).decode()


def configure_logging(level: str, kind: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(kind))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {kind} %(levelname)s %(name)s: %(message)s")
        )
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True
    )
    if log_format == "json":  # uvicorn's loggers have handlers of their own: JSON too
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            if logger.handlers:
                logger.handlers = [handler]
