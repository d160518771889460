"""Command → outbox → stream → projection, with correlation and trace ids intact."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider

from observability.logging import correlation_id
from tests.messaging.counters.model import Increment, OpenCounter
from tests.messaging.helpers import running, totals, wait_until

pytestmark = pytest.mark.anyio


async def test_command_reaches_the_projection_with_its_ids(messaging):
    tracer = TracerProvider().get_tracer("test")
    token = correlation_id.set("corr-round-trip")
    try:
        with tracer.start_as_current_span("request") as span:
            opened = await messaging.bus.execute(OpenCounter(counter_id="c-1", name="first"))
            incremented = await messaging.bus.execute(Increment(counter_id="c-1", by=5))
        trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        correlation_id.reset(token)
    assert (opened.version, incremented.version) == (1, 2)
    assert opened.created_id == "c-1"

    pool = messaging.pool_of("counters")
    row = await pool.fetchrow("SELECT headers FROM counters.outbox WHERE aggregate_version = 2")
    assert '"corr-round-trip"' in row["headers"]

    async with running(messaging.supervisor()):
        await wait_until(lambda: _applied(pool, "c-1", 2))
    card = await pool.fetchrow("SELECT * FROM counters.totals WHERE counter_id = 'c-1'")
    assert card["total"] == 5
    assert list(card["versions"]) == [1, 2]
    assert card["correlation_id"] == "corr-round-trip"
    assert card["traceparent"].split("-")[1] == trace_id
    assert await pool.fetchval("SELECT count(*) FROM counters.outbox WHERE published_at IS NULL") == 0


async def _applied(pool, counter_id: str, version: int) -> bool:
    return (await totals(pool)).get(counter_id, (0, []))[1][-1:] == [version]
