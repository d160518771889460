"""Housekeeping: forget old idempotency records; refresh the gauges of outbox backlog, dead letters,
and each consumer group's lag and oldest pending entry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import asyncpg
from redis.asyncio import Redis

from bus import idempotency, monitor
from bus.outbox import Outbox
from observability import metrics


class Maintenance:
    def __init__(
        self,
        pool: asyncpg.Pool,
        outboxes: Sequence[Outbox],
        every: float = 15.0,
        redis: Redis | None = None,
        groups: Sequence[tuple[str, str]] = (),  # (stream, consumer group)
    ) -> None:
        self.pool = pool
        self.outboxes = outboxes
        self.every = every
        self.redis = redis
        self.groups = groups

    async def run_once(self) -> None:
        async with self.pool.acquire() as conn:
            await idempotency.purge(conn)
            for outbox in self.outboxes:
                backlog = await monitor.outbox_backlog(conn, outbox)
                age = backlog.oldest_pending_age_seconds
                metrics.outbox_pending.labels(outbox.context).set(backlog.pending)
                metrics.outbox_oldest_pending_age.labels(outbox.context).set(age)
            counted: dict[str, int] = {}
            for letters in await monitor.dead_letter_counts(conn):
                counted[letters.context] = counted.get(letters.context, 0) + letters.count
            for outbox in self.outboxes:
                metrics.dead_letters.labels(outbox.context).set(counted.get(outbox.context, 0))

        if self.redis is not None:
            await self._measure_groups(self.redis)

    async def _measure_groups(self, redis: Redis) -> None:
        for stream, group in self.groups:
            state = await monitor.measure_group(redis, stream, group)
            metrics.consumer_lag.labels(stream, group).set(state.lag)
            metrics.pending_idle.labels(stream, group).set(state.oldest_pending_idle_seconds)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.every)
