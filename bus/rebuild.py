"""Projection rebuild: forget one consumer's tracking and tables, then replay it from the event log."""

from __future__ import annotations

import asyncpg

from bus.inbox import DUPLICATE, Inbox

_FORGET = [
    f"DELETE FROM bus.{table} WHERE consumer = $1"
    for table in ("consumer_positions", "parked", "dead_letters", "reconciler_marks")
]


async def rebuild(pool: asyncpg.Pool, inbox: Inbox, batch: int = 1000) -> int:
    """Return how many events were applied. Run it with the consumer stopped, or let the inbox's
    version tracking settle the race: an event applied twice is still applied once."""
    async with pool.acquire() as conn, conn.transaction():
        for table in inbox.projection.tables:
            await conn.execute(f"TRUNCATE {table}")
        for statement in _FORGET:
            await conn.execute(statement, inbox.name)
    applied, position = 0, 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(inbox.outbox.select_all, position, batch)
            outcomes = await inbox.apply_batch(conn, [inbox.outbox.envelope(row) for row in rows])
            applied += sum(outcome != DUPLICATE for outcome in outcomes)
        if not rows:
            return applied
        position = rows[-1]["position"]
