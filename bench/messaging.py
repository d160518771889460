"""Throughput of the relay and of a consumer, each beside a baseline of the raw client library.

    python -m bench.messaging [--aggregates 5000] [--versions 10] [--partitions 4]

PostgreSQL and Redis come from BENCH_DATABASE_URL / BENCH_REDIS_URL, else SHOPSTREAM_TEST_DATABASE_URL /
SHOPSTREAM_TEST_REDIS_URL, else embedded servers started in a temporary directory. The run works in a
scratch database and under a unique Redis key prefix, both removed at the end.

A tiny `bench` context (an outbox and a read model upserting one row per event) is filled with
aggregates x versions pending events, then:

- relay: `Relay.relay_once` in a loop until the outbox is drained (default batch, 500), against
  redis-py pipelined XADD of the very same envelope bytes, 500 per pipeline, to as many partition
  streams (same MAXLEN option);
- consumer: `Consumer.run` from start until its last event is applied (batches of `read_batch` in one
  transaction, effectively-once tracking in `bus.consumer_positions`), against raw asyncpg
  one-upsert transactions (BEGIN; the same upsert with the same values; COMMIT) at the consumer's
  concurrency: one sequential loop per partition, each on its own connection.

Each baseline runs just before and just after the figure it is compared with (on fresh streams / an
emptied table) and counts as total events over total time of both runs, so that load from elsewhere
on the machine drifting during the run biases neither side. Same event loop (asyncio), same clients,
same payload bytes; every figure is checked afterwards (all published, every event in the read model).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from redis.asyncio import Redis

from bench.common import admin, backing_servers, machine_facts, with_database
from bus.config import BusConfig
from bus.consumer import Consumer
from bus.inbox import APPLIED, HEALED, Inbox
from bus.messages import Envelope, Event, encoder, message, registry
from bus.outbox import Outbox, Relay, partition_of
from shopstream.bootstrap import BUS
from shopstream.migrate import Component, migrate_all

CONTEXT = "bench"
MIGRATIONS = Path(__file__).parent / "migrations"
TARGET_RATIO = 0.5
CONSUMER_TIMEOUT = 120.0


@message
class ItemTicked(Event, frozen=True, kw_only=True, tag="bench.ItemTicked"):
    """The one event of the bench context."""

    item_id: str
    n: int
    amount: int
    label: str


def upsert_sql(table: str) -> str:
    return (
        f"INSERT INTO {table} (id, version, total, events, label, last_event_id)"
        " VALUES ($1, $2, $3, 1, $4, $5)"
        f" ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, total = {table}.total + EXCLUDED.total,"
        f" events = {table}.events + 1, label = EXCLUDED.label, last_event_id = EXCLUDED.last_event_id"
    )


class Items:
    """The projection under test: one upsert per event."""

    name: str = "bench.items"
    context: str = CONTEXT
    tables: Sequence[str] = ("bench.items",)
    _upsert = upsert_sql("bench.items")

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        await conn.execute(
            self._upsert,
            envelope.aggregate_id,
            envelope.aggregate_version,
            event.amount,
            event.label,
            envelope.event_id,
        )


class TimedConsumer(Consumer):
    """A consumer that notes when its `target`-th event was applied (counted after commit)."""

    def __init__(self, *args: Any, target: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.target = target
        self.applied = 0
        self.finished = asyncio.Event()
        self.finished_at = 0.0

    def count(self, outcome: str, envelope: Envelope | None = None, member: Any = None) -> None:
        super().count(outcome, envelope, member)
        if outcome in (APPLIED, HEALED):
            self.applied += 1
            if self.applied == self.target:
                self.finished_at = time.perf_counter()
                self.finished.set()


# Valid payload/headers JSON so envelopes decode; versions 1..V of each aggregate, interleaved by
# position (all first versions, then all second versions, ...) as concurrent traffic would write them.
_FILL = """
INSERT INTO bench.outbox (event_id, type, schema_version, aggregate_type, aggregate_id, aggregate_version,
                          occurred_at, payload, headers)
SELECT gen_random_uuid(), 'bench.ItemTicked', 1, 'Item', a.id, v, clock_timestamp(),
       jsonb_build_object('item_id', a.id, 'n', v, 'amount', v * 7 + a.n % 100,
                          'label', 'item ' || a.n || ' tick ' || v),
       jsonb_build_object('correlation_id', a.corr, 'causation_id', gen_random_uuid()::text,
                          'traceparent', '00-' || a.trace || '-' || left(md5(a.n || '.' || v), 16) || '-01')
FROM (SELECT n, md5(n::text)::uuid::text AS id, md5('c' || n)::uuid::text AS corr, md5('t' || n) AS trace
      FROM generate_series(1, $1) AS n) AS a,
     generate_series(1, $2) AS v
ORDER BY v, a.n
"""


def rate(events: int, seconds: float) -> float:
    return events / seconds if seconds > 0 else float("inf")


async def fill(pool: asyncpg.Pool, aggregates: int, versions: int) -> float:
    started = time.perf_counter()
    await pool.execute(_FILL, aggregates, versions)
    await pool.execute("ANALYZE bench.outbox")
    return time.perf_counter() - started


class Figure(msgspec.Struct, frozen=True):
    """A measured rate beside its baseline, taken just before and just after it."""

    rate: float
    baseline_before: float
    baseline_after: float

    @property
    def baseline(self) -> float:
        """Total events over total time of both baseline runs."""
        return 2 / (1 / self.baseline_before + 1 / self.baseline_after)


async def xadd_baseline(redis: Redis, config: BusConfig, entries: Sequence[tuple[str, bytes]]) -> float:
    """Events/s of redis-py pipelined XADD, `relay_batch` per pipeline, same MAXLEN option."""
    size = config.relay_batch
    started = time.perf_counter()
    for first in range(0, len(entries), size):
        pipe = redis.pipeline(transaction=False)
        for stream, entry in entries[first : first + size]:
            pipe.xadd(stream, {"e": entry}, maxlen=config.stream_maxlen, approximate=True)
        await pipe.execute()
    return rate(len(entries), time.perf_counter() - started)


async def bench_relay(
    pool: asyncpg.Pool, redis: Redis, config: BusConfig, outbox: Outbox, events: int
) -> Figure:
    """The relay draining the outbox, between two runs of raw XADD of the same envelope bytes."""
    rows = await pool.fetch(outbox.select_all, 0, events)  # the claim's columns, in position order
    assert len(rows) == events, f"expected {events} pending events, found {len(rows)}"
    envelopes = [
        (partition_of(r["aggregate_id"], config.partitions), encoder.encode(outbox.envelope(r))) for r in rows
    ]
    del rows

    def entries(label: str) -> list[tuple[str, bytes]]:
        streams = [f"{config.redis_prefix}.baseline-{label}.{p}" for p in range(config.partitions)]
        return [(streams[partition], entry) for partition, entry in envelopes]

    before = await xadd_baseline(redis, config, entries("before"))
    relay = Relay(outbox, pool, redis, config)
    started = time.perf_counter()
    published = 0
    while count := await relay.relay_once():
        published += count
    relay_rate = rate(events, time.perf_counter() - started)
    after = await xadd_baseline(redis, config, entries("after"))

    assert published == events, f"relay published {published} of {events}"
    left = await pool.fetchval(f"SELECT count(*) FROM {outbox.table} WHERE published_at IS NULL")
    assert left == 0, f"{left} events left unpublished"
    relayed = sum([await redis.xlen(config.stream(CONTEXT, p)) for p in range(config.partitions)])
    assert relayed == events, f"the relay's streams hold {relayed} of {events} entries"
    return Figure(relay_rate, before, after)


async def upsert_baseline(url: str, per_partition: Sequence[Sequence[tuple[Any, ...]]]) -> float:
    """Events/s of one-upsert transactions, one sequential loop per partition on its own connection."""
    upsert = upsert_sql("bench.items_baseline")
    connections = [await asyncpg.connect(url) for _ in per_partition]

    async def loop(conn: asyncpg.Connection, values: Sequence[tuple[Any, ...]]) -> None:
        for args in values:
            async with conn.transaction():
                await conn.execute(upsert, *args)

    try:
        await connections[0].execute("TRUNCATE bench.items_baseline")
        started = time.perf_counter()
        await asyncio.gather(*(loop(c, v) for c, v in zip(connections, per_partition, strict=True)))
        seconds = time.perf_counter() - started
    finally:
        for conn in connections:
            await conn.close()
    return rate(sum(map(len, per_partition)), seconds)


async def bench_consumer(
    url: str, pool: asyncpg.Pool, redis: Redis, config: BusConfig, outbox: Outbox, events: int
) -> Figure:
    """A consumer applying every event, between two runs of raw one-upsert transactions."""
    # The values the projection writes, in each partition's stream order.
    rows = await pool.fetch(
        f"SELECT aggregate_id, aggregate_version, payload::text AS payload, event_id FROM {outbox.table}"
        " ORDER BY position"
    )
    per_partition: list[list[tuple[Any, ...]]] = [[] for _ in range(config.partitions)]
    for r in rows:
        event = registry.decode("bench.ItemTicked", r["payload"].encode())
        per_partition[partition_of(r["aggregate_id"], config.partitions)].append(
            (r["aggregate_id"], r["aggregate_version"], event.amount, event.label, r["event_id"])
        )
    del rows

    before = await upsert_baseline(url, per_partition)
    await check_read_model(pool, "bench.items_baseline", events)

    inbox = Inbox(Items(), outbox, registry)
    consumer = TimedConsumer(inbox, pool, redis, config, target=events)
    stopping = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run(stopping))
    try:
        await asyncio.wait_for(consumer.finished.wait(), CONSUMER_TIMEOUT)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 15)
    consumer_rate = rate(events, consumer.finished_at - started)
    await check_read_model(pool, "bench.items", events)

    after = await upsert_baseline(url, per_partition)
    await check_read_model(pool, "bench.items_baseline", events)
    return Figure(consumer_rate, before, after)


async def check_read_model(pool: asyncpg.Pool, table: str, events: int) -> None:
    applied = await pool.fetchval(f"SELECT coalesce(sum(events), 0) FROM {table}")
    assert applied == events, f"{table} applied {applied} of {events} events"


def line(name: str, figure: Figure, baseline_name: str) -> str:
    ratio = figure.rate / figure.baseline
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    return (
        f"{name:<9} {figure.rate:>9,.0f} ev/s   baseline {baseline_name:<6} {figure.baseline:>9,.0f} ev/s"
        f"   ratio {ratio:4.2f}   (target {TARGET_RATIO:.2f} {verdict};"
        f" baseline before/after {figure.baseline_before:,.0f} / {figure.baseline_after:,.0f})"
    )


async def run(args: argparse.Namespace, database_server: str, redis_url: str) -> None:
    run_id = uuid.uuid4().hex[:10]
    database = f"bench_{run_id}"
    events = args.aggregates * args.versions
    config = msgspec.structs.replace(BusConfig(), redis_prefix=f"bench-{run_id}", partitions=args.partitions)
    outbox = Outbox(CONTEXT)
    await admin(database_server, f'CREATE DATABASE "{database}"')
    try:
        url = with_database(database_server, database)
        await migrate_all({url: [BUS, Component(CONTEXT, MIGRATIONS)]})
        redis = Redis.from_url(redis_url, socket_connect_timeout=2.0, health_check_interval=30)
        pool = await asyncpg.create_pool(
            url, min_size=config.partitions + 1, max_size=config.partitions + 2, command_timeout=60
        )
        try:
            server_version = await pool.fetchval("SHOW server_version")
            redis_version = (await redis.info("server"))["redis_version"]
            print(machine_facts(server_version, redis_version))
            print(
                f"settings  {events:,} events = {args.aggregates:,} aggregates x {args.versions} versions,"
                f" {config.partitions} partitions, relay_batch {config.relay_batch},"
                f" XADD pipeline {config.relay_batch}, read_batch {config.read_batch},"
                f" consumer/baseline concurrency {config.partitions}"
            )
            seconds = await fill(pool, args.aggregates, args.versions)
            print(f"filled    {events:,} pending outbox events in {seconds:.1f}s", flush=True)
            relay = await bench_relay(pool, redis, config, outbox, events)
            print(line("relay", relay, "XADD"), flush=True)
            consumer = await bench_consumer(url, pool, redis, config, outbox, events)
            print(line("consumer", consumer, "upsert"), flush=True)
        finally:
            await pool.close()
            keys = [key async for key in redis.scan_iter(match=f"{config.redis_prefix}*", count=1000)]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
    finally:
        await admin(database_server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--aggregates", type=int, default=5_000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--partitions", type=int, default=BusConfig().partitions)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    with backing_servers() as (database_server, redis_url):
        asyncio.run(run(args, database_server, redis_url))
    print(f"done in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
