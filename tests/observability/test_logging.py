"""Logging: the project's handler survives building the app, and every line written while serving a
request carries its correlation id (and, as JSON, the trace and span ids)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import msgspec
import pytest
from litestar import get
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import TracerProvider

from observability.logging import configure_logging
from shopstream.app import create_app

pytestmark = pytest.mark.anyio


@get("/test-only/log")
async def log_something() -> dict[str, str]:
    logging.getLogger("shopstream.test").warning("serving the probe")
    return {"ok": "yes"}


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the project's log handler writes, for the length of one test."""
    root = logging.getLogger()
    level = root.level
    configure_logging("INFO")
    handler = next(h for h in root.handlers if getattr(h, "_shopstream", False))
    assert isinstance(handler, logging.StreamHandler)
    captured = io.StringIO()
    previous = handler.setStream(captured)
    yield captured
    handler.setStream(previous)
    configure_logging(logging.getLevelName(level))


def test_building_the_app_keeps_the_project_handler_and_level(settings, lines):
    debug = msgspec.structs.replace(settings, log_level="DEBUG")
    create_app(debug)
    root = logging.getLogger()
    assert root.level == logging.DEBUG
    assert [h for h in root.handlers if getattr(h, "_shopstream", False)]
    assert not [h for h in root.handlers if type(h).__name__ == "QueueListenerHandler"]
    logging.getLogger("shopstream.test").debug("still here")
    assert "still here" in lines.getvalue()


def test_json_lines_carry_level_logger_message_and_the_current_span(lines):
    configure_logging("INFO", "json")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("shopstream.test").info("inside %s", "a span")
    line = json.loads(lines.getvalue().splitlines()[-1])
    context = span.get_span_context()
    assert line["level"] == "INFO"
    assert line["logger"] == "shopstream.test"
    assert line["message"] == "inside a span"
    assert line["correlation_id"] == "-"
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


async def test_a_line_logged_while_serving_a_request_carries_its_correlation_id(settings, lines):
    json_settings = msgspec.structs.replace(settings, log_format="json")
    async with AsyncTestClient(app=create_app(json_settings, route_handlers=[log_something])) as client:
        response = await client.get("/test-only/log", headers={"X-Correlation-ID": "probe-42"})
    assert response.status_code == 200
    served = [json.loads(line) for line in lines.getvalue().splitlines() if "serving the probe" in line]
    assert served and served[0]["correlation_id"] == "probe-42"


def test_uvicorn_access_lines_carry_no_email_address():
    """uvicorn logs each request's target; `configure_logging` scrubs personal query values from it."""
    from observability.logging import configure_logging

    configure_logging("INFO")
    access = logging.getLogger("uvicorn.access")
    record = access.makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/customers?email=ada%40example.com&limit=2", "1.1", 404),
        None,
    )
    for kept in access.filters:
        kept.filter(record)  # type: ignore[union-attr]
    assert record.getMessage() == '127.0.0.1:5000 - "GET /customers?email=REDACTED&limit=2 HTTP/1.1" 404'
