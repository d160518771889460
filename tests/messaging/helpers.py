"""Helpers shared by the messaging tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg

from bus.supervisor import Supervisor
from tests.messaging.counters.model import Increment, OpenCounter


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float = 15.0, every: float = 0.05
) -> float:
    """Poll until `check()` holds; return the seconds it took. Fails the test on timeout."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)
    return time.monotonic() - started


@asynccontextmanager
async def running(supervisor: Supervisor) -> AsyncIterator[Supervisor]:
    task = asyncio.create_task(supervisor.run())
    try:
        yield supervisor
    finally:
        supervisor.stop()
        await asyncio.wait_for(task, 15)


async def totals(pool: asyncpg.Pool) -> dict[str, tuple[int, list[int]]]:
    rows = await pool.fetch("SELECT counter_id, total, versions FROM counters.totals")
    return {r["counter_id"]: (r["total"], list(r["versions"])) for r in rows}


async def make_counters(bus, count: int, increments: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Open `count` counters and increment each `increments` times; return id → final version."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    for counter_id in ids:
        await bus.execute(OpenCounter(counter_id=counter_id, name="c"))
    for _ in range(increments):
        await asyncio.gather(*(bus.execute(Increment(counter_id=c, by=1)) for c in ids))
    return dict.fromkeys(ids, increments + 1)


async def unpublished(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM counters.outbox WHERE published_at IS NULL")  # type: ignore[no-any-return]
