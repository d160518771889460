"""The outbox relay: many relays over one outbox publish every event exactly once."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from bus.messages import envelope_decoder
from bus.outbox import Relay
from shopstream.bootstrap import Messaging
from tests.messaging.counters import module as counters
from tests.messaging.counters.model import OpenCounter
from tests.messaging.helpers import unpublished, wait_until

pytestmark = pytest.mark.anyio

EVENTS = 10_000

# 1,000 counters opened and incremented nine times each: valid envelopes, committed in one statement.
_PENDING = """
INSERT INTO counters.outbox (event_id, type, schema_version, aggregate_type, aggregate_id,
                             aggregate_version, occurred_at, payload, headers)
SELECT gen_random_uuid(),
       CASE WHEN v = 1 THEN 'counters.CounterOpened' ELSE 'counters.Incremented' END,
       1, 'Counter', 'c-' || a, v, now(),
       CASE WHEN v = 1
            THEN jsonb_build_object('type', 'counters.CounterOpened', 'counter_id', 'c-' || a, 'name', 'c')
            ELSE jsonb_build_object('type', 'counters.Incremented', 'counter_id', 'c-' || a,
                                    'by', 1, 'total', v - 1)
       END,
       jsonb_build_object('correlation_id', 'bulk', 'causation_id', gen_random_uuid()::text)
FROM generate_series(1, $1 / 10) AS a, generate_series(1, 10) AS v
"""


async def _drain(relay: Relay) -> int:
    """Publish batches until the outbox holds no unpublished row (another relay may hold the rest);
    return how many rows this relay published."""
    published = 0
    while True:
        batch = await relay.relay_once()
        published += batch
        if batch == 0:
            if await unpublished(relay.pool) == 0:
                return published
            await asyncio.sleep(0.01)


async def test_two_relays_publish_each_pending_event_exactly_once(messaging, counters_settings):
    pool = messaging.pool_of("counters")
    await pool.execute(_PENDING, EVENTS)
    assert await unpublished(pool) == EVENTS

    other = await Messaging.open(counters_settings, [counters])  # a second process: own pool and client
    try:
        first, second = messaging.relay("counters"), other.relay("counters")
        by_first, by_second = await asyncio.wait_for(asyncio.gather(_drain(first), _drain(second)), 60)
    finally:
        await other.close()

    assert by_first > 0 and by_second > 0, "both relays took part"
    assert by_first + by_second == EVENTS

    published: list[str] = []
    for partition in range(messaging.config.partitions):
        stream = messaging.config.stream("counters", partition)
        for _, fields in await messaging.redis.xrange(stream):
            envelope = envelope_decoder.decode(fields[b"e"])
            assert first.stream_of(envelope.aggregate_id) == stream
            published.append(str(envelope.event_id))
    assert len(published) == EVENTS
    assert len(set(published)) == EVENTS
    logged = {str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM counters.outbox")}
    assert set(published) == logged
    assert await unpublished(pool) == 0


async def test_relay_wakes_for_a_commit_notified_while_it_was_publishing(messaging, counters_settings):
    pool = messaging.pool_of("counters")
    config = msgspec.structs.replace(messaging.config, relay_poll_interval=3600)  # only NOTIFY wakes it
    relay = Relay(messaging.outboxes["counters"], pool, messaging.redis, config)
    claim, calls = relay.relay_once, 0

    async def claim_while_a_command_commits() -> int:
        nonlocal calls
        calls += 1
        count = await claim()
        if calls == 1:  # its NOTIFY reaches the relay after the claim, before it goes to sleep
            await messaging.bus.execute(OpenCounter(counter_id=uuid.uuid4().hex, name="c"))
            await asyncio.sleep(0.2)
        return count

    relay.relay_once = claim_while_a_command_commits  # type: ignore[method-assign]
    stopping = asyncio.Event()
    task = asyncio.create_task(relay.run(counters_settings.database_url, stopping))
    try:
        await wait_until(lambda: _drained_after(pool, calls), timeout=10)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)


async def _drained_after(pool, calls: int) -> bool:  # type: ignore[no-untyped-def]
    return calls > 1 and await unpublished(pool) == 0


async def test_a_published_entry_is_the_envelope_the_event_log_holds(messaging):
    """Each stream entry decodes to exactly the envelope that gap healing and rebuilds read from the
    event log: occurred_at in UTC, traceparent kept or null, the payload unchanged."""
    pool = messaging.pool_of("counters")
    traced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    for n, traceparent in enumerate((None, traced)):
        headers = {"correlation_id": f"corr-{n}", "causation_id": f"cause-{n}"}
        if traceparent:
            headers["traceparent"] = traceparent
        await pool.execute(
            "INSERT INTO counters.outbox (event_id, type, schema_version, aggregate_type, aggregate_id,"
            " aggregate_version, occurred_at, payload, headers)"
            " VALUES (gen_random_uuid(), 'counters.CounterOpened', 1, 'Counter', $1, 1,"
            " '2026-02-03 04:05:06.789012+00', $2, $3)",
            f"entry-{n}-{uuid.uuid4().hex[:6]}",
            msgspec.json.encode({"counter_id": f"entry-{n}", "name": 'ünïcode "q"'}).decode(),
            msgspec.json.encode(headers).decode(),
        )
    relay = messaging.relay("counters")
    await _drain(relay)
    outbox = relay.outbox
    logged = {
        row["aggregate_id"]: outbox.envelope(row) for row in await pool.fetch(outbox.select_all, 0, 1_000)
    }
    seen = 0
    for partition in range(messaging.config.partitions):
        for _, fields in await messaging.redis.xrange(messaging.config.stream("counters", partition)):
            entry = envelope_decoder.decode(fields[b"e"])
            if entry.aggregate_id.startswith("entry-"):
                expected = logged[entry.aggregate_id]
                assert msgspec.structs.replace(entry, payload=None) == msgspec.structs.replace(
                    expected, payload=None
                )
                assert msgspec.json.decode(entry.payload) == msgspec.json.decode(expected.payload)
                assert entry.occurred_at.isoformat() == "2026-02-03T04:05:06.789012+00:00"
                seen += 1
    assert seen == 2
