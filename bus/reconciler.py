"""The reconciler: Redis is not trusted to keep what it acknowledged.

It looks for events published more than a grace period ago that its consumer has not applied (and
that no dead letter holds back), and XADDs them to their partition stream again; the inbox drops
whatever turns out to be a duplicate. A mark per consumer bounds the scan: every event published
before it is known to be applied. A partition stream that still holds entries the group has not read
is left alone: its consumer is merely behind (a backlog draining), and entries added again would
only queue behind the originals as duplicates.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import asyncpg
from redis.asyncio import Redis

from bus.config import BusConfig
from bus.inbox import Inbox
from bus.lag import behind
from bus.messages import encoder
from bus.outbox import partition_of
from observability import metrics

log = logging.getLogger("shopstream.reconciler")

_MARK = "SELECT published_after FROM bus.reconciler_marks WHERE consumer = $1"
_SET_MARK = (
    "INSERT INTO bus.reconciler_marks (consumer, published_after) VALUES ($1, $2)"
    " ON CONFLICT (consumer) DO UPDATE SET published_after = EXCLUDED.published_after"
)


class Reconciler:
    def __init__(
        self,
        inbox: Inbox,
        pool: asyncpg.Pool,
        redis: Redis,
        config: BusConfig,
        limit: int = 1000,
        group: str | None = None,
    ) -> None:
        self.inbox = inbox
        self.group = group or inbox.name  # the Redis consumer group that delivers to the inbox
        self.pool = pool
        self.redis = redis
        self.config = config
        self.limit = limit
        table = inbox.outbox.table
        # Only each aggregate's first unapplied event: once it lands, the inbox heals the rest from
        # the event log, so a consumer that is merely behind gets at most one extra entry per aggregate.
        self._unapplied = f"""
            SELECT DISTINCT ON (o.aggregate_id) {inbox.outbox.columns("o")}
            FROM {table} o
            LEFT JOIN bus.consumer_positions p ON p.consumer = $1 AND p.aggregate_id = o.aggregate_id
            WHERE o.published_at > $2 AND o.published_at <= $3
              AND o.aggregate_version > coalesce(p.version, 0)
              AND NOT EXISTS (SELECT 1 FROM bus.dead_letters d
                              WHERE d.consumer = $1 AND d.aggregate_id = o.aggregate_id)
            ORDER BY o.aggregate_id, o.aggregate_version LIMIT $4
        """
        self._redelivered = metrics.redelivered.labels(inbox.name)

    async def run_once(self) -> int:
        """One pass; return how many events were delivered again."""
        name = self.inbox.name
        async with self.pool.acquire() as conn:
            upto = await conn.fetchval(
                "SELECT now() - $1::interval", timedelta(seconds=self.config.reconcile_grace)
            )
            since = await conn.fetchval(_MARK, name) or await conn.fetchval("SELECT '-infinity'::timestamptz")
            rows = await conn.fetch(self._unapplied, name, since, upto, self.limit)
            if not rows:
                await conn.execute(_SET_MARK, name, upto)
                return 0
        outbox = self.inbox.outbox
        by_stream: dict[str, list[asyncpg.Record]] = {}
        for row in rows:
            stream = self.config.stream(
                outbox.context, partition_of(row["aggregate_id"], self.config.partitions)
            )
            by_stream.setdefault(stream, []).append(row)
        pipe = self.redis.pipeline(transaction=False)
        delivered = 0
        for stream, unapplied in by_stream.items():
            if await behind(self.redis, stream, self.group):
                continue
            for row in unapplied:
                pipe.xadd(stream, {"e": encoder.encode(outbox.envelope(row))})
            delivered += len(unapplied)
        if delivered:
            await pipe.execute()
            self._redelivered.inc(delivered)
            log.info("%s: delivered %d unapplied event(s) again", name, delivered)
        return delivered
