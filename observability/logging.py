"""Log formatting: every line carries the correlation id of the request or message it serves."""

from __future__ import annotations

import logging
from contextvars import ContextVar

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="-")

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(correlation_id)s] %(message)s"


class _CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


def configure_logging(level: str = "INFO") -> None:
    """Send ShopStream's logs to stderr in one format; idempotent."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(h, "_shopstream", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler._shopstream = True  # type: ignore[attr-defined]
    handler.addFilter(_CorrelationFilter())
    handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(handler)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every pg_ctl call at INFO
