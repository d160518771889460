"""Housekeeping: forget old idempotency records; refresh the gauges of outbox backlog, dead letters,
and each consumer group's lag and oldest pending entry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg
from redis.asyncio import Redis

from bus.outbox import Outbox
from observability import metrics

IDEMPOTENCY_KEPT_HOURS = 48  # the contract promises at least 24 h


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
        self._backlog = {
            o.context: f"SELECT count(*), extract(epoch FROM now() - min(occurred_at))"
            f" FROM {o.table} WHERE published_at IS NULL"
            for o in outboxes
        }

    async def run_once(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM bus.idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
                IDEMPOTENCY_KEPT_HOURS,
            )
            for context, sql in self._backlog.items():
                pending, age = await conn.fetchrow(sql)
                metrics.outbox_pending.labels(context).set(pending)
                metrics.outbox_oldest_pending_age.labels(context).set(float(age or 0))
            letters = await conn.fetch("SELECT context, count(*) AS n FROM bus.dead_letters GROUP BY context")
            counted = {r["context"]: r["n"] for r in letters}
            for outbox in self.outboxes:
                metrics.dead_letters.labels(outbox.context).set(counted.get(outbox.context, 0))

        if self.redis is not None:
            await self._measure_groups(self.redis)

    async def _measure_groups(self, redis: Redis) -> None:
        for stream, group in self.groups:
            info: Any = await redis.xinfo_groups(stream)
            mine = next((g for g in info if g["name"] in (group, group.encode())), None)
            if mine is None:
                continue
            if mine.get("lag") is not None:  # Redis 7 and later
                metrics.consumer_lag.labels(stream, group).set(mine["lag"])
            oldest: Any = await redis.xpending_range(stream, group, min="-", max="+", count=1)
            idle_ms = oldest[0]["time_since_delivered"] if oldest else 0
            metrics.pending_idle.labels(stream, group).set(idle_ms / 1000)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.every)
