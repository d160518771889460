"""The totals read model of the counters context."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from bus.messages import Envelope
from tests.messaging.counters.model import CounterOpened, Incremented

_UPSERT = """
INSERT INTO counters.totals (counter_id, total, versions, correlation_id, traceparent)
VALUES ($1, $2, ARRAY[$3::bigint], $4, $5)
ON CONFLICT (counter_id) DO UPDATE
    SET total = counters.totals.total + $2, versions = counters.totals.versions || $3::bigint,
        correlation_id = $4, traceparent = $5
"""
_SWITCHES = """
SELECT EXISTS (SELECT 1 FROM counters.poison WHERE counter_id = $1) AS poisoned,
       (SELECT value FROM counters.knobs WHERE name = 'delay') AS delay
"""


class PoisonedEvent(Exception):
    pass


class Totals:
    name = "counters.totals"
    tables = ("counters.totals",)

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        switches = await conn.fetchrow(_SWITCHES, envelope.aggregate_id)
        if switches["delay"]:
            await asyncio.sleep(switches["delay"])
        if switches["poisoned"]:
            raise PoisonedEvent(f"{envelope.aggregate_id} v{envelope.aggregate_version} is poison")
        by = event.by if isinstance(event, Incremented) else 0
        assert isinstance(event, CounterOpened | Incremented)
        await conn.execute(
            _UPSERT,
            envelope.aggregate_id,
            by,
            envelope.aggregate_version,
            envelope.correlation_id,
            envelope.traceparent,
        )
