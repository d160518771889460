"""A blue/green rebuild of a 100,000-event log, beside the live consumer's rate on the same log.

    python -m bench.rebuild [--events 100000]

In a scratch database: `EVENTS` identity events (half registrations, half profile updates of the same
customers) are written straight into the event log, their personal fields sealed with each customer's
data key as the repository seals them (the keys stored in the customers' rows), and published to the
streams. The live consumer of
`identity.customer_card` alone then applies them all (its rate: events over the time from its start to
the last commit). Then `shopstream projections rebuild identity.customer_card` runs in process — replay
into shadow tables, then the swap — while a reader polls customer cards on a pool of its own, like the
API; a read that fails or finds no card counts as failed. Target: rebuild >= 0.8 x live rate, 0 failed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import asyncpg
import msgspec

from bench.commands import scratch
from bench.common import backing_servers
from bus.consumer import Consumer
from bus.messages import encoder
from bus.rebuild import Rebuild
from bus.supervisor import Supervisor
from contexts.identity import events, queries
from contexts.identity.datakeys import DataKeys
from contexts.identity.personal import personal_data_of, seal_event
from contexts.identity.values import Status, Tier
from shopstream import eventloop
from shopstream.bootstrap import Messaging
from shopstream.settings import Settings

PROJECTION = "identity.customer_card"
EVENTS = 100_000
TARGET = 0.8


class RebuildFigure(msgspec.Struct, frozen=True):
    events: int
    live_rate: float  # events/s the live consumer applied the log at
    rebuild_rate: float  # events/s of the rebuild, replay and swap included
    rebuild_seconds: float
    reads: int  # reads of the polling reader during the rebuild
    failed_reads: int

    @property
    def ratio(self) -> float:
        return self.rebuild_rate / self.live_rate if self.live_rate else 0.0


def _rows(count: int, keys: DataKeys, customers: list[tuple[object, ...]]) -> Iterator[tuple[object, ...]]:
    """Outbox rows: each customer registered (v1), then updated their profile (v2); `customers` gets
    each customer's row with its wrapped data key."""
    now = datetime.now(UTC)
    headers = encoder.encode({"correlation_id": "bench", "causation_id": "bench"}).decode()
    for number in range(count // 2):
        customer_id = str(uuid.uuid4())
        registered = events.CustomerRegistered(
            customer_id=customer_id, external_id=f"ext-{number}", email=f"user-{number}@bench.example",
            first_name="Ada", last_name="Lovelace", phone=None, date_of_birth=None, status=Status.ACTIVE,
            tier=Tier.STANDARD, registered_at=now,
        )  # fmt: skip
        updated = events.ProfileUpdated(
            customer_id=customer_id, first_name="Ada", last_name="King", phone="+44 20 7946 0958",
            date_of_birth=date(1990, 12, 10),
        )  # fmt: skip
        cipher, kek, wrapped = keys.new(customer_id)
        customers.append(
            (customer_id, "{}", 2, f"ext-{number}", f"user-{number}@bench.example", kek, wrapped)
        )
        for version, event in enumerate((registered, updated), start=1):
            yield (
                uuid.uuid4(), event.tag(), event.schema_version, "Customer", customer_id, version, now,
                seal_event(cipher, customer_id, event), headers,
            )  # fmt: skip


async def write_log(pool: asyncpg.Pool, count: int, keys: DataKeys) -> list[str]:
    customers: list[tuple[object, ...]] = []
    rows = list(_rows(count, keys, customers))
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "customers", schema_name="identity", records=customers,
            columns=["id", "state", "version", "external_id", "email_key", "data_kek", "data_key"],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "outbox", schema_name="identity", records=rows,
            columns=["event_id", "type", "schema_version", "aggregate_type", "aggregate_id",
                     "aggregate_version", "occurred_at", "payload", "headers"],
        )  # fmt: skip
    return [str(r[4]) for r in rows[::2]]


async def applied(pool: asyncpg.Pool) -> int:
    query = "SELECT coalesce(sum(version), 0)::bigint FROM bus.consumer_positions WHERE consumer = $1"
    return int(await pool.fetchval(query, PROJECTION))


async def all_applied(pool: asyncpg.Pool, count: int, within: float = 120.0) -> None:
    started = time.perf_counter()
    while time.perf_counter() - started < within:
        if await applied(pool) >= count:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"rebuild: the live consumer did not apply {count:,} events within {within:.0f}s")


class Reader:
    """Polls random customers' cards until stopped; a failure or a missing card counts as failed."""

    def __init__(self, pool: asyncpg.Pool, customers: list[str]) -> None:
        self.pool = pool
        self.customers = customers
        self.reads = 0
        self.failed = 0

    async def poll(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                card = await queries.get_customer_card(self.pool, random.choice(self.customers))
                self.failed += card is None
            except (asyncpg.PostgresError, asyncpg.InterfaceError):
                self.failed += 1
            self.reads += 1
            await asyncio.sleep(0.002)


async def measure(settings: Settings, count: int, log) -> RebuildFigure:  # type: ignore[no-untyped-def]
    messaging = await Messaging.open(settings)
    try:
        pool = messaging.pool_of("identity")
        customers = await write_log(pool, count, personal_data_of(messaging.outboxes["identity"]).keys)
        relay = messaging.relay("identity")
        while await relay.relay_once():
            pass
        log(f"rebuild    {count:,} events in the identity log, published")

        consumer = Consumer(messaging.inboxes[PROJECTION], pool, messaging.redis, messaging.config)
        supervisor = Supervisor({"consumer": consumer.run})
        started = time.perf_counter()
        running = asyncio.create_task(supervisor.run())
        await all_applied(pool, count)
        live_seconds = time.perf_counter() - started
        log(
            f"rebuild    live consumer applied them in {live_seconds:.1f}s ({count / live_seconds:,.0f} ev/s)"
        )

        # The live consumer keeps running (nothing new to apply) while a reader polls through the rebuild.
        async with asyncpg.create_pool(settings.database_url, min_size=2, max_size=2) as readers:
            reader, stop = Reader(readers, customers), asyncio.Event()
            polling = asyncio.create_task(reader.poll(stop))
            started = time.perf_counter()
            progress = await Rebuild(pool, messaging.inboxes[PROJECTION]).run()
            rebuild_seconds = time.perf_counter() - started
            stop.set()
            await polling
        supervisor.stop()
        await running
        figure = RebuildFigure(
            events=progress.done,
            live_rate=count / live_seconds,
            rebuild_rate=progress.done / rebuild_seconds,
            rebuild_seconds=rebuild_seconds,
            reads=reader.reads,
            failed_reads=reader.failed,
        )
        log(
            f"rebuild    {figure.events:,} events in {rebuild_seconds:.1f}s ({figure.rebuild_rate:,.0f} ev/s,"
            f" {figure.ratio:.2f} x live); reader: {figure.reads:,} reads, {figure.failed_reads} failed"
        )
        return figure
    finally:
        await messaging.close()


def bench(database_server: str, redis_url: str, count: int = EVENTS, log=print) -> RebuildFigure:  # type: ignore[no-untyped-def]
    with scratch(database_server, redis_url, uuid.uuid4().hex[:10]) as (settings, _, _):
        return eventloop.run(measure(settings, count, log))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=EVENTS, help=f"events in the log (default {EVENTS:,})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with backing_servers() as (database_server, redis_url):
        figure = bench(database_server, redis_url, args.events)
    held = figure.ratio >= TARGET and figure.failed_reads == 0
    print(f"rebuild    {'met' if held else 'missed'}: >= {TARGET} x live rate, 0 failed reads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
