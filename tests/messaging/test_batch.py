"""Set-based batches: one statement moves a wave's tracked versions; whatever it cannot move (a
duplicate, a version jump, a parked aggregate) takes the per-event path, and order per aggregate holds."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from bus import deadletters
from bus.batch import schedule
from bus.inbox import APPLIED, DUPLICATE, HEALED, PARKED, Inbox
from bus.messages import Envelope, registry
from tests.messaging.counters.model import Increment, OpenCounter
from tests.messaging.counters.projection import Totals
from tests.messaging.helpers import totals

pytestmark = pytest.mark.anyio

CONSUMER = "counters.totals"


class RecordingTotals(Totals):
    """The totals read model with a batch form that notes which versions each call received."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, int]]] = []

    async def apply_batch(self, conn: asyncpg.Connection, items: Sequence[tuple[Envelope, Any]]) -> None:
        self.calls.append([(e.aggregate_id, e.aggregate_version) for e, _ in items])
        for envelope, event in items:
            await self.apply(conn, envelope, event)


async def _counters(messaging, increments: dict[str, int]) -> dict[tuple[str, int], Envelope]:  # type: ignore[no-untyped-def]
    """Open each counter and increment it; return its events by (counter, version), unpublished."""
    for counter_id, times in increments.items():
        await messaging.bus.execute(OpenCounter(counter_id=counter_id, name="c"))
        for _ in range(times):
            await messaging.bus.execute(Increment(counter_id=counter_id))
    outbox = messaging.outboxes["counters"]
    rows = await messaging.pool_of("counters").fetch(outbox.select_all, 0, 10_000)
    return {(r["aggregate_id"], r["aggregate_version"]): outbox.envelope(r) for r in rows}


async def _apply_batch(messaging, inbox: Inbox, batch: list[Envelope], blocked=()) -> list[str]:  # type: ignore[no-untyped-def]
    async with messaging.pool_of("counters").acquire() as conn, conn.transaction():
        return await inbox.apply_batch(conn, batch, blocked)


class TestBatchStatement:
    async def test_duplicates_and_version_jumps_inside_a_batch_are_applied_once_in_order(self, messaging):
        a, b = uuid.uuid4().hex, uuid.uuid4().hex
        events = await _counters(messaging, {a: 1, b: 2})
        batch = [events[a, 1], events[a, 1], events[b, 1], events[b, 3], events[a, 2], events[b, 2]]

        outcomes = await _apply_batch(messaging, messaging.inboxes[CONSUMER], batch)

        assert outcomes == [APPLIED, DUPLICATE, APPLIED, HEALED, APPLIED, DUPLICATE]
        current = await totals(messaging.pool_of("counters"))
        assert current[a] == (1, [1, 2])
        assert current[b] == (2, [1, 2, 3])

    async def test_a_batch_already_applied_is_all_duplicates(self, messaging):
        a = uuid.uuid4().hex
        events = await _counters(messaging, {a: 2})
        batch = [events[a, v] for v in (1, 2, 3)]
        inbox = messaging.inboxes[CONSUMER]

        assert await _apply_batch(messaging, inbox, batch) == [APPLIED] * 3
        assert await _apply_batch(messaging, inbox, batch) == [DUPLICATE] * 3
        assert (await totals(messaging.pool_of("counters")))[a] == (2, [1, 2, 3])

    async def test_versions_of_one_aggregate_reach_the_batch_form_in_successive_calls(self, messaging):
        a, b = uuid.uuid4().hex, uuid.uuid4().hex
        events = await _counters(messaging, {a: 2, b: 1})
        projection = RecordingTotals()
        inbox = Inbox(projection, messaging.outboxes["counters"], registry)
        batch = [events[a, 1], events[a, 2], events[b, 1], events[a, 3], events[b, 2]]

        assert await _apply_batch(messaging, inbox, batch) == [APPLIED] * 5

        assert projection.calls == [[(a, 1), (b, 1)], [(a, 2), (b, 2)], [(a, 3)]]
        current = await totals(messaging.pool_of("counters"))
        assert current[a] == (2, [1, 2, 3])
        assert current[b] == (1, [1, 2])

    async def test_a_batch_mixing_applied_and_parked_aggregates_parks_only_the_blocked_one(self, messaging):
        flowing, stuck = uuid.uuid4().hex, uuid.uuid4().hex
        events = await _counters(messaging, {flowing: 2, stuck: 3})
        pool, inbox = messaging.pool_of("counters"), messaging.inboxes[CONSUMER]
        assert await _apply_batch(messaging, inbox, [events[stuck, 1], events[flowing, 1]]) == [APPLIED] * 2
        async with pool.acquire() as conn:
            await deadletters.store(conn, CONSUMER, events[stuck, 2], "boom", 4, datetime.now(UTC))

        # The consumer's in-memory hint may be missing the dead letter (another process stored it).
        for blocked in (set(), {stuck}):
            batch = [events[stuck, 3], events[flowing, 2], events[stuck, 4]]
            outcomes = await _apply_batch(messaging, inbox, batch, blocked)
            assert outcomes == [PARKED, APPLIED if not blocked else DUPLICATE, PARKED]

        # Delivered again while its dead letter stands, the dead-lettered event itself waits too.
        assert await _apply_batch(messaging, inbox, [events[stuck, 2], events[flowing, 3]], {stuck}) == [
            PARKED,
            APPLIED,
        ]
        current = await totals(pool)
        assert current[flowing] == (2, [1, 2, 3])
        assert current[stuck] == (0, [1])
        parked = await pool.fetch(
            "SELECT aggregate_version FROM bus.parked WHERE aggregate_id = $1 ORDER BY 1", stuck
        )
        assert [r["aggregate_version"] for r in parked] == [2, 3, 4]


class TestSchedule:
    def test_each_chain_keeps_its_order_with_one_group_per_statement(self):
        chains = [[("unflag", (1,)), ("insert", (1,))], [("insert", (2,))], [("stamp", (3,))]]
        groups = schedule(chains)
        assert sorted(q for q, _ in groups) == ["insert", "stamp", "unflag"]
        order = [q for q, _ in groups]
        assert order.index("unflag") < order.index("insert")
        assert dict(groups)["insert"] == [(1,), (2,)]

    def test_chains_ordering_statements_both_ways_go_round_by_round(self):
        chains = [[("a", (1,)), ("b", (1,))], [("b", (2,)), ("a", (2,))], [("a", (3,)), ("a", (4,))]]
        assert schedule(chains) == [
            ("a", [(1,), (3,)]),
            ("b", [(2,)]),
            ("b", [(1,)]),
            ("a", [(2,), (4,)]),
        ]
