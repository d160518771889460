"""Consumers: retries and dead letters, duplicates and disorder, lost stream entries, rebuilds."""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import pytest
from prometheus_client import REGISTRY

from bus import deadletters
from bus.consumer import Consumer
from bus.messages import encoder, envelope_decoder
from bus.outbox import partition_of
from bus.rebuild import rebuild
from bus.reconciler import Reconciler
from bus.supervisor import Supervisor
from tests.messaging.counters.model import Increment, OpenCounter
from tests.messaging.helpers import make_counters, running, totals, wait_until

pytestmark = pytest.mark.anyio

CONSUMER = "counters.totals"


def _same_partition_ids(anchor: str, partitions: int, count: int) -> list[str]:
    """Fresh counter ids routed to the anchor's partition, so they share its worker."""
    wanted, ids = partition_of(anchor, partitions), []
    while len(ids) < count:
        candidate = uuid.uuid4().hex
        if partition_of(candidate, partitions) == wanted:
            ids.append(candidate)
    return ids


async def _increment(bus, counter_ids: list[str], times: int = 1) -> None:  # type: ignore[no-untyped-def]
    for _ in range(times):
        await asyncio.gather(*(bus.execute(Increment(counter_id=c, by=1)) for c in counter_ids))


def _versions_are(pool, expected: dict[str, list[int]]):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        current = await totals(pool)
        return all(current.get(c, (0, []))[1] == v for c, v in expected.items())

    return check


async def _dead_letter_ids(pool) -> list[int]:  # type: ignore[no-untyped-def]
    return [r["id"] for r in await pool.fetch("SELECT id FROM bus.dead_letters ORDER BY id")]


async def _has_dead_letter(pool) -> bool:  # type: ignore[no-untyped-def]
    return bool(await _dead_letter_ids(pool))


async def _parked_versions(pool, counter_id: str) -> list[int]:  # type: ignore[no-untyped-def]
    rows = await pool.fetch(
        "SELECT aggregate_version FROM bus.parked WHERE aggregate_id = $1 ORDER BY aggregate_version",
        counter_id,
    )
    return [r["aggregate_version"] for r in rows]


async def _dead_lettered_with_parked_followers(messaging, poisoned: str, others: list[str]):  # type: ignore[no-untyped-def]
    """Open `poisoned` and `others`, apply v1, then make `poisoned` v2 fail; v3 and v4 follow it."""
    pool = messaging.pool_of("counters")
    for counter_id in [poisoned, *others]:
        await messaging.bus.execute(OpenCounter(counter_id=counter_id, name="c"))
    await wait_until(_versions_are(pool, {c: [1] for c in [poisoned, *others]}))
    await pool.execute("INSERT INTO counters.poison (counter_id) VALUES ($1)", poisoned)
    await asyncio.gather(_increment(messaging.bus, [poisoned], 3), _increment(messaging.bus, others, 3))
    await wait_until(_versions_are(pool, {c: [1, 2, 3, 4] for c in others}))
    assert (await totals(pool))[poisoned] == (0, [1])
    await wait_until(lambda: _has_dead_letter(pool), timeout=10)
    assert await _parked_versions(pool, poisoned) == [3, 4]


def _is_retry_of(record: logging.LogRecord, counter_id: str) -> bool:
    """A consumer's retry line: (group, aggregate id, version, attempt, attempts, delay, error)."""
    return (
        record.name == "shopstream.consumer"
        and "retrying in" in str(record.msg)
        and (isinstance(record.args, tuple) and record.args[1] == counter_id)
    )


async def test_poison_event_is_retried_with_backoff_then_dead_lettered_and_replayed_in_order(
    messaging, caplog
):
    caplog.set_level(logging.WARNING, logger="shopstream.consumer")
    pool, config = messaging.pool_of("counters"), messaging.config
    poisoned = uuid.uuid4().hex
    neighbours = _same_partition_ids(poisoned, config.partitions, 3)
    elsewhere = [uuid.uuid4().hex for _ in range(8)]
    async with running(messaging.supervisor()):
        await _dead_lettered_with_parked_followers(messaging, poisoned, neighbours + elsewhere)

        retries = [r.args for r in caplog.records if _is_retry_of(r, poisoned)]
        assert [(args[2], args[3]) for args in retries] == [
            (2, n) for n in range(1, config.retry_attempts + 1)
        ]
        for _, _, _, attempt, _, delay, _ in retries[:-1]:
            assert 0 <= delay <= min(config.retry_cap, config.retry_base * 2 ** (attempt - 1))
        letter = await pool.fetchrow("SELECT * FROM bus.dead_letters")
        assert (letter["aggregate_id"], letter["aggregate_version"]) == (poisoned, 2)
        assert letter["attempts"] == config.retry_attempts
        assert "is poison" in letter["error"]

        # The dead letter holds back only its own aggregate: the others keep flowing.
        await _increment(messaging.bus, neighbours + elsewhere)
        await wait_until(_versions_are(pool, {c: [1, 2, 3, 4, 5] for c in neighbours + elsewhere}))
        assert (await totals(pool))[poisoned] == (0, [1])

        await pool.execute("DELETE FROM counters.poison")
        result = await deadletters.replay(pool, messaging.inboxes, letter["id"])
        assert result["released"] == 2
        assert (await totals(pool))[poisoned] == (3, [1, 2, 3, 4])
        assert await _parked_versions(pool, poisoned) == []
        assert await _dead_letter_ids(pool) == []

        # Unblocked: the aggregate's next event is applied straight away again.
        await _increment(messaging.bus, [poisoned])
        await wait_until(_versions_are(pool, {poisoned: [1, 2, 3, 4, 5]}))


async def test_dropping_a_dead_letter_skips_it_and_releases_the_parked_events(messaging):
    pool = messaging.pool_of("counters")
    poisoned, other = uuid.uuid4().hex, uuid.uuid4().hex
    async with running(messaging.supervisor()):
        await _dead_lettered_with_parked_followers(messaging, poisoned, [other])
        await pool.execute("DELETE FROM counters.poison")
        [letter_id] = await _dead_letter_ids(pool)
        result = await deadletters.drop(pool, messaging.inboxes, letter_id)
    assert result["released"] == 2
    assert (await totals(pool))[poisoned] == (2, [1, 3, 4])
    assert await _parked_versions(pool, poisoned) == []
    assert await _dead_letter_ids(pool) == []


@asynccontextmanager
async def _consuming(messaging) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    """The totals consumer alone: no relay."""
    stopping = asyncio.Event()
    task = asyncio.create_task(messaging.consumer(CONSUMER).run(stopping))
    try:
        yield
    finally:
        stopping.set()
        await asyncio.wait_for(task, 15)


async def _outbox_envelopes(messaging):  # type: ignore[no-untyped-def]
    outbox = messaging.outboxes["counters"]
    rows = await messaging.pool_of("counters").fetch(outbox.select_all, 0, 1_000_000)
    return [outbox.envelope(row) for row in rows]


async def _xadd(messaging, envelopes) -> None:  # type: ignore[no-untyped-def]
    """Publish by hand, each to its partition stream, in the order given."""
    config = messaging.config
    for envelope in envelopes:
        stream = config.stream("counters", partition_of(envelope.aggregate_id, config.partitions))
        await messaging.redis.xadd(stream, {"e": encoder.encode(envelope)})


async def _mark_published(pool) -> None:  # type: ignore[no-untyped-def]
    await pool.execute("UPDATE counters.outbox SET published_at = now() WHERE published_at IS NULL")


async def test_duplicated_and_shuffled_deliveries_end_as_in_order_application(messaging):
    pool = messaging.pool_of("counters")
    final = await make_counters(messaging.bus, count=12, increments=9)
    envelopes = await _outbox_envelopes(messaging)
    last = {e.aggregate_id: e for e in envelopes if e.aggregate_version == final[e.aggregate_id]}
    rand = random.Random(20240601)
    deliveries = [e for e in envelopes for _ in range(rand.randint(1, 3))]
    rand.shuffle(deliveries)
    assert deliveries != sorted(deliveries, key=lambda e: (e.aggregate_id, e.aggregate_version))
    await _xadd(messaging, deliveries)
    await _mark_published(pool)

    expected = {c: (version - 1, list(range(1, version + 1))) for c, version in final.items()}
    async with _consuming(messaging):
        await wait_until(lambda: _totals_are(pool, expected))
        await asyncio.sleep(0.5)  # let the remaining duplicates arrive: they must change nothing
    assert await totals(pool) == expected
    rows = await pool.fetch("SELECT counter_id, correlation_id, traceparent FROM counters.totals")
    for row in rows:  # the row reflects the last event, as in-order application leaves it
        assert (row["correlation_id"], row["traceparent"]) == (
            last[row["counter_id"]].correlation_id,
            last[row["counter_id"]].traceparent,
        )


async def _totals_are(pool, expected) -> bool:  # type: ignore[no-untyped-def]
    return await totals(pool) == expected


def _gaps_healed() -> float:
    return REGISTRY.get_sample_value("shopstream_gaps_healed_total", {"consumer": CONSUMER}) or 0.0


async def _stream_entries(messaging, counter_id: str) -> dict[int, bytes]:  # type: ignore[no-untyped-def]
    """Entry ids of the counter's events in its partition stream, by aggregate version."""
    relay = messaging.relay("counters")
    found = {}
    for entry_id, fields in await messaging.redis.xrange(relay.stream_of(counter_id)):
        envelope = envelope_decoder.decode(fields[b"e"])
        if envelope.aggregate_id == counter_id:
            found[envelope.aggregate_version] = entry_id
    return found


async def test_consumer_heals_a_version_gap_from_the_event_log(messaging):
    pool, counter_id = messaging.pool_of("counters"), uuid.uuid4().hex
    await messaging.bus.execute(OpenCounter(counter_id=counter_id, name="c"))
    await _increment(messaging.bus, [counter_id], 2)
    assert await messaging.relay("counters").relay_once() == 3
    entries = await _stream_entries(messaging, counter_id)
    stream = messaging.relay("counters").stream_of(counter_id)
    assert await messaging.redis.xdel(stream, entries[2]) == 1  # Redis lost v2 after acknowledging it

    healed_before = _gaps_healed()
    async with _consuming(messaging):
        await wait_until(_versions_are(pool, {counter_id: [1, 2, 3]}))
    assert (await totals(pool))[counter_id] == (2, [1, 2, 3])
    assert _gaps_healed() - healed_before == 1


async def test_reconciler_redelivers_a_lost_first_event_within_its_grace_period(messaging, counters_settings):
    pool, counter_id = messaging.pool_of("counters"), uuid.uuid4().hex
    await messaging.bus.execute(OpenCounter(counter_id=counter_id, name="c"))
    assert await messaging.relay("counters").relay_once() == 1
    [entry_id] = (await _stream_entries(messaging, counter_id)).values()
    assert await messaging.redis.xdel(messaging.relay("counters").stream_of(counter_id), entry_id) == 1

    grace = counters_settings.reconcile_grace
    async with running(messaging.supervisor()):
        # Published `grace` ago at the latest, plus one reconcile interval, plus generous slack.
        await wait_until(_versions_are(pool, {counter_id: [1]}), timeout=grace + 5)
    assert (await totals(pool))[counter_id] == (0, [1])


async def test_reconciler_leaves_a_stream_its_consumer_has_not_read_yet(messaging):
    """A consumer merely behind (its events old enough to reconcile, still waiting in the stream) gets
    no copies; once those entries are gone unread, it gets them again."""
    pool = messaging.pool_of("counters")
    final = await make_counters(messaging.bus, count=6, increments=1)
    assert await messaging.relay("counters").relay_once() == 12
    await pool.execute("UPDATE counters.outbox SET published_at = now() - interval '1 hour'")
    consumer = messaging.consumer(CONSUMER)
    await consumer.ensure_groups()
    streams = [consumer.stream(p) for p in range(messaging.config.partitions)]
    lengths = [await messaging.redis.xlen(s) for s in streams]
    reconciler = Reconciler(consumer.inbox, pool, messaging.redis, messaging.config)

    assert await reconciler.run_once() == 0
    assert [await messaging.redis.xlen(s) for s in streams] == lengths

    for stream in streams:  # Redis loses them unread
        ids = [entry_id for entry_id, _ in await messaging.redis.xrange(stream)]
        if ids:
            await messaging.redis.xdel(stream, *ids)
    assert await reconciler.run_once() == len(final)  # each counter's first event; the inbox heals on
    async with _consuming(messaging):
        await wait_until(_versions_are(pool, {c: [1, 2] for c in final}))


async def test_rebuild_resets_the_projection_and_replays_it_to_the_same_state(messaging):
    pool = messaging.pool_of("counters")
    final = await make_counters(messaging.bus, count=10, increments=4)
    async with running(messaging.supervisor()):
        await wait_until(_versions_are(pool, {c: list(range(1, v + 1)) for c, v in final.items()}))
    before = await pool.fetch("SELECT * FROM counters.totals ORDER BY counter_id")

    # Damage the read model so only a real reset-and-replay can restore it.
    await pool.execute("UPDATE counters.totals SET total = -1, versions = '{}'")
    await pool.execute("DELETE FROM counters.totals WHERE counter_id = $1", next(iter(final)))

    applied = await rebuild(pool, messaging.inboxes[CONSUMER])
    assert applied == sum(final.values())
    after = await pool.fetch("SELECT * FROM counters.totals ORDER BY counter_id")
    assert [dict(r) for r in after] == [dict(r) for r in before]


async def test_idle_partitions_wait_on_their_stream_between_chores(messaging, monkeypatch):
    """Only partition 0 reconciles: once a reconcile is due, the other partitions must keep blocking
    on their stream (up to a second per read) instead of polling it."""
    config = msgspec.structs.replace(messaging.config, reconcile_interval=0.05, reclaim_idle=60.0)
    totals_consumer = messaging.consumer(CONSUMER)
    consumer = Consumer(totals_consumer.inbox, totals_consumer.pool, messaging.redis, config)
    reads: collections.Counter[str] = collections.Counter()
    read = messaging.redis.xreadgroup

    async def counted(group, name, streams, **options):  # type: ignore[no-untyped-def]
        reads[name] += 1
        return await read(group, name, streams, **options)

    monkeypatch.setattr(messaging.redis, "xreadgroup", counted)
    async with running(Supervisor({"consumer": consumer.run}, shutdown_grace=5)):
        await asyncio.sleep(2.5)
    others = {name: n for name, n in reads.items() if name != "p0"}
    assert len(others) == config.partitions - 1
    assert max(others.values()) <= 6, others  # pending check, then reads of up to 1 s each
