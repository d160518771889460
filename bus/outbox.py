"""The outbox: each context's event log, written inside the command's transaction, and its relay.

The relay claims a batch of unpublished rows in one statement (`FOR UPDATE SKIP LOCKED`, so relays
never share a row), XADDs them in one pipeline to each event's partition stream, and marks them
published in the same transaction. A crash between XADD and commit publishes the batch again later:
consumers deduplicate. It never relays by an "id greater than the last seen" mark: positions commit
out of order.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bus import idempotency
from bus.aggregate import Aggregate
from bus.config import BusConfig
from bus.messages import Envelope, Event, encoder
from observability import metrics, spans, tracing

if TYPE_CHECKING:
    from bus.sealing import Sealing

log = logging.getLogger("shopstream.relay")
CHANNEL = "shopstream_outbox"


class Headers(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    correlation_id: str
    causation_id: str
    traceparent: str | None = None


_EVENT_COLUMNS = "event_id, type, schema_version, aggregate_type, aggregate_id, aggregate_version, occurred_at, payload, headers"
_EVENT_TYPES = ("uuid", "text", "integer", "text", "text", "bigint", "timestamptz", "jsonb", "jsonb")


# How an event becomes its stored payload (JSON text); a repository may seal fields on the way.
EncodeEvent = Callable[[Aggregate, Event], str]


def plain(aggregate: Aggregate, event: Event) -> str:
    return encoder.encode(event).decode()


def partition_of(aggregate_id: str, partitions: int) -> int:
    return zlib.crc32(aggregate_id.encode()) % partitions


class Outbox:
    """SQL of one context's event log, built once; `sealing` opens the payloads of a context that seals
    fields of its events (`bus.sealing`)."""

    def __init__(self, context: str, schema: str | None = None, sealing: Sealing | None = None) -> None:
        self.context = context
        self.sealing = sealing
        table = f"{schema or context}.outbox"
        self.table = table
        self._insert = f"INSERT INTO {table} ({_EVENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        self._combined: dict[tuple[str, int, int, bool], str] = {}
        columns = self.columns()
        # The claim turns off the wait for the WAL flush at commit, for its transaction alone: a mark lost
        # in a crash only publishes the batch again, which consumers deduplicate.
        self.claim = (
            f"SELECT {columns}, set_config('synchronous_commit', 'off', true) AS durability FROM {table}"
            " WHERE published_at IS NULL ORDER BY position LIMIT $1 FOR UPDATE SKIP LOCKED"
        )
        self.mark_published = f"UPDATE {table} SET published_at = clock_timestamp() WHERE position = ANY($1)"
        self.select_versions = (
            f"SELECT {columns} FROM {table} WHERE aggregate_id = $1"
            " AND aggregate_version > $2 AND aggregate_version < $3 ORDER BY aggregate_version"
        )
        self.select_all = f"SELECT {columns} FROM {table} WHERE position > $1 ORDER BY position LIMIT $2"

    @staticmethod
    def columns(alias: str = "") -> str:
        """The columns `envelope()` reads, JSON as text (one decode, in Python, where it is needed)."""
        p = f"{alias}." if alias else ""
        return (
            f"{p}position, {p}event_id, {p}type, {p}schema_version, {p}aggregate_type, {p}aggregate_id,"
            f" {p}aggregate_version, {p}occurred_at, {p}payload::text AS payload, {p}headers::text AS headers"
        )

    def rows(
        self, aggregate: Aggregate, headers: Headers, encode: EncodeEvent = plain
    ) -> list[tuple[object, ...]]:
        """The outbox rows of the aggregate's pending events, in `insert` column order."""
        now = datetime.now(UTC)
        header_json = encoder.encode(headers).decode()
        first = aggregate.loaded_version
        return [
            (
                uuid.uuid4(),
                event.tag(),
                event.schema_version,
                aggregate.aggregate_type,
                aggregate.id,
                first + offset,
                now,
                encode(aggregate, event),
                header_json,
            )
            for offset, event in enumerate(aggregate.pending_events, start=1)
        ]

    async def append(
        self, conn: asyncpg.Connection, aggregate: Aggregate, headers: Headers, encode: EncodeEvent = plain
    ) -> None:
        """Write the aggregate's pending events; the insert trigger sends the NOTIFY on commit."""
        rows = self.rows(aggregate, headers, encode)
        if len(rows) == 1:
            await conn.execute(self._insert, *rows[0])
        elif rows:
            await conn.executemany(self._insert, rows)

    def insert_after(self, write: str, first: int, count: int, remember: bool) -> str:
        """One statement that runs `write` (an aggregate's INSERT or versioned UPDATE, parameters $1 to
        $first-1), then, only if it touched its row, inserts `count` events (and the idempotency record
        when `remember`): the command's whole commit in one round trip, atomic without a transaction."""
        key = (write, first, count, remember)
        sql = self._combined.get(key)
        if sql is None:
            n = first
            values = []
            for _ in range(count):
                values.append(
                    "(" + ", ".join(f"${n + i}::{kind}" for i, kind in enumerate(_EVENT_TYPES)) + ")"
                )
                n += len(_EVENT_TYPES)
            keep = f", {idempotency.remember_if('kept', 'written', n)}" if remember else ""
            sql = (
                f"WITH written AS ({write} RETURNING 1){keep}"
                f" INSERT INTO {self.table} ({_EVENT_COLUMNS})"
                f" SELECT * FROM (VALUES {', '.join(values)}) AS event WHERE EXISTS (SELECT FROM written)"
            )
            self._combined[key] = sql
        return sql

    def envelope(self, row: asyncpg.Record) -> Envelope:
        headers = msgspec.json.decode(row["headers"], type=Headers)
        return Envelope(
            event_id=row["event_id"],
            type=row["type"],
            schema_version=row["schema_version"],
            context=self.context,
            aggregate_type=row["aggregate_type"],
            aggregate_id=row["aggregate_id"],
            aggregate_version=row["aggregate_version"],
            occurred_at=row["occurred_at"],
            correlation_id=headers.correlation_id,
            causation_id=headers.causation_id,
            traceparent=headers.traceparent,
            payload=msgspec.Raw(row["payload"].encode()),
        )


class Relay:
    """Publishes one context's outbox to its partition streams."""

    def __init__(self, outbox: Outbox, pool: asyncpg.Pool, redis: Redis, config: BusConfig) -> None:
        self.outbox = outbox
        self.pool = pool
        self.redis = redis
        self.config = config
        self._wake = asyncio.Event()
        self._published = metrics.relay_published.labels(outbox.context)

    def stream_of(self, aggregate_id: str) -> str:
        return self.config.stream(self.outbox.context, partition_of(aggregate_id, self.config.partitions))

    async def relay_once(self) -> int:
        """Publish one batch; return how many rows it held. Redis errors leave the rows unpublished."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(self.outbox.claim, self.config.relay_batch)
            if not rows:
                return 0
            # Mark while the pipeline is in flight (PostgreSQL and Redis work in parallel): the mark
            # commits only if the XADDs succeeded too; otherwise the transaction rolls it back.
            outcomes = await asyncio.gather(
                conn.execute(self.outbox.mark_published, [r["position"] for r in rows]),
                self._publish(rows),
                return_exceptions=True,  # wait for both: the connection must be idle to roll back
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        self._published.inc(len(rows))
        return len(rows)

    async def _publish(self, rows: Sequence[asyncpg.Record]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        maxlen = self.config.stream_maxlen
        traced: dict[str, list[spans.EventTrace]] | None = {} if tracing.tracer() else None
        for row in rows:
            envelope = self.outbox.envelope(row)
            stream = self.stream_of(row["aggregate_id"])
            pipe.xadd(stream, {"e": encoder.encode(envelope)}, maxlen=maxlen, approximate=True)
            if traced is not None:
                event = spans.EventTrace(envelope.event_id, envelope.traceparent)
                traced.setdefault(stream, []).append(event)
        with spans.sending(traced or {}):
            await pipe.execute()

    async def run(self, listen_dsn: str | None = None, stopping: asyncio.Event | None = None) -> None:
        """Relay until cancelled or `stopping` is set: wake on NOTIFY, poll slowly as a fallback.

        `listen_dsn` must reach the database directly: a LISTEN through a pooler in transaction mode
        lands on a server connection the pooler hands to others, and hears nothing."""
        listener = await self._listen(listen_dsn) if listen_dsn else None
        backoff = 0.0
        try:
            while stopping is None or not stopping.is_set():
                self._wake.clear()  # before claiming: a NOTIFY during relay_once must not be lost
                try:
                    count = await self.relay_once()
                    backoff = 0.0
                except (RedisError, OSError) as exc:
                    backoff = min(max(backoff * 2, 0.1), 30.0)
                    log.warning(
                        "relay %s: publishing failed (%s); retrying in %.1fs",
                        self.outbox.context,
                        exc,
                        backoff,
                    )
                    await asyncio.sleep(backoff)
                    continue
                if count == self.config.relay_batch:
                    continue  # more is waiting
                if count and self.config.linger > 0:
                    await asyncio.sleep(self.config.linger)  # let the next claim find a batch
                await self._sleep(stopping)
        finally:
            if listener is not None:
                await listener.close()

    async def _sleep(self, stopping: asyncio.Event | None) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait())]
        if stopping is not None:
            waiters.append(asyncio.ensure_future(stopping.wait()))
        try:
            await asyncio.wait(
                waiters, timeout=self.config.relay_poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _listen(self, dsn: str) -> asyncpg.Connection:
        conn = await asyncpg.connect(dsn)

        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            if payload == self.outbox.context:
                self._wake.set()

        await conn.add_listener(CHANNEL, on_notify)
        return conn
