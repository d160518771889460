"""Projection groups: one consumer group keeps several projections over one read and one transaction,
each projection with its own tracking, retries and dead letters; a failing one holds back only itself."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
import pytest

from bus import deadletters
from bus.consumer import Consumer, groups
from bus.inbox import Inbox
from bus.messages import Envelope, registry
from bus.outbox import Outbox
from bus.supervisor import Supervisor
from shopstream.bootstrap import Messaging
from shopstream.settings import ConfigurationError, Settings
from tests.messaging.counters import module as counters
from tests.messaging.helpers import make_counters, running, totals, wait_until

pytestmark = pytest.mark.anyio

GROUP = "counters.projections"
_TALLY = """
CREATE TABLE IF NOT EXISTS counters.tally (counter_id text PRIMARY KEY, versions bigint[] NOT NULL);
"""


class Tally:
    """A second read model of the counters' events; fails, as told, for some counters."""

    name = "counters.tally"
    tables = ("counters.tally",)

    def __init__(self) -> None:
        self.failing: set[str] = set()

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        if envelope.aggregate_id in self.failing:
            raise RuntimeError(f"tally of {envelope.aggregate_id} refused")
        await conn.execute(
            "INSERT INTO counters.tally VALUES ($1, ARRAY[$2::bigint]) ON CONFLICT (counter_id)"
            " DO UPDATE SET versions = counters.tally.versions || $2::bigint",
            envelope.aggregate_id,
            envelope.aggregate_version,
        )


async def _tallies(pool: asyncpg.Pool) -> dict[str, list[int]]:
    return {r["counter_id"]: list(r["versions"]) for r in await pool.fetch("SELECT * FROM counters.tally")}


async def _group(messaging: Messaging, tally: Tally) -> tuple[Consumer, Inbox]:
    pool = messaging.pool_of("counters")
    await pool.execute(_TALLY)
    inbox = Inbox(tally, messaging.outboxes["counters"], registry)
    consumer = Consumer(
        [messaging.inboxes["counters.totals"], inbox], pool, messaging.redis, messaging.config, name=GROUP
    )
    return consumer, inbox


async def _pending(messaging: Messaging) -> int:
    streams = [messaging.config.stream("counters", p) for p in range(messaging.config.partitions)]
    return sum([(await messaging.redis.xpending(s, GROUP))["pending"] for s in streams])


async def test_one_group_applies_every_read_to_each_projection_each_tracking_its_own(messaging):
    pool = messaging.pool_of("counters")
    consumer, _ = await _group(messaging, Tally())
    expected = await make_counters(messaging.bus, 12, 4)
    want = {c: list(range(1, v + 1)) for c, v in expected.items()}

    async def both_done() -> bool:
        got = await totals(pool)
        return {c: got.get(c, (0, []))[1] for c in want} == want and await _tallies(pool) == want

    relay = messaging.relay("counters")
    async with running(Supervisor({"relay": lambda s: relay.run(None, s), "group": consumer.run})):
        await wait_until(both_done)
        await wait_until(lambda: _no_pending(messaging))

    tracked = await pool.fetch(
        "SELECT consumer, count(*) AS n, sum(version) AS v FROM bus.consumer_positions GROUP BY consumer"
    )
    assert {r["consumer"]: (r["n"], r["v"]) for r in tracked} == {
        name: (len(expected), sum(expected.values())) for name in ("counters.totals", "counters.tally")
    }
    for partition in range(messaging.config.partitions):
        found = await messaging.redis.xinfo_groups(messaging.config.stream("counters", partition))
        assert [g["name"].decode() for g in found] == [GROUP]  # one read serves both


async def _no_pending(messaging: Messaging) -> bool:
    return await _pending(messaging) == 0


async def test_a_failing_projection_holds_back_only_its_own_work_and_is_replayed_alone(messaging):
    pool = messaging.pool_of("counters")
    tally = Tally()
    consumer, inbox = await _group(messaging, tally)
    expected = await make_counters(messaging.bus, 8, 3)
    poisoned = next(iter(expected))
    tally.failing.add(poisoned)
    want = {c: list(range(1, v + 1)) for c, v in expected.items()}

    async def settled() -> bool:
        got = await totals(pool)
        letters = await pool.fetch("SELECT consumer, aggregate_id FROM bus.dead_letters")
        return (
            {c: got.get(c, (0, []))[1] for c in want} == want
            and [(r["consumer"], r["aggregate_id"]) for r in letters] == [("counters.tally", poisoned)]
            and await _pending(messaging) == 0
        )

    relay = messaging.relay("counters")
    async with running(Supervisor({"relay": lambda s: relay.run(None, s), "group": consumer.run})):
        await wait_until(settled, timeout=30)
        # The sibling applied every event of the poisoned counter; the failing projection everything else.
        assert await _tallies(pool) == {c: v for c, v in want.items() if c != poisoned}
        parked = await pool.fetch(
            "SELECT consumer, aggregate_version FROM bus.parked WHERE aggregate_id = $1", poisoned
        )
        assert {r["consumer"] for r in parked} == {"counters.tally"}  # parked for the failing one only
        # (a copy the reconciler delivered again while the event was retried may be parked too)
        assert {r["aggregate_version"] for r in parked} >= set(range(2, expected[poisoned] + 1))

        tally.failing.clear()  # fixed: replaying the dead letter applies it and its parked followers
        (letter,) = await pool.fetch("SELECT id FROM bus.dead_letters")
        await deadletters.replay(pool, {"counters.tally": inbox}, letter["id"])
    assert await _tallies(pool) == want
    assert (await totals(pool))[poisoned][1] == want[poisoned]  # the sibling saw nothing twice


def test_projections_of_one_context_and_source_share_a_group_unless_isolated():
    def inbox(name: str, source: str) -> Inbox:
        projection = msgspec.defstruct("P", [], namespace={"name": name, "tables": ()})()
        return Inbox(projection, Outbox(source), registry)  # type: ignore[arg-type]

    inboxes = {
        "shop.cards": inbox("shop.cards", "shop"),
        "shop.details": inbox("shop.details", "shop"),
        "shop.search": inbox("shop.search", "shop"),
        "shop.tiers": inbox("shop.tiers", "people"),
        "people.cards": inbox("people.cards", "people"),
    }
    owners = {name: name.split(".")[0] for name in inboxes}
    found = {name: [i.name for i in members] for name, members in groups(inboxes, owners).items()}
    assert found == {
        "people.cards": ["people.cards"],  # alone: named after itself
        "shop.projections": ["shop.cards", "shop.details", "shop.search"],
        "shop.tiers": ["shop.tiers"],  # another context's events: its own group
    }
    found = {name: [i.name for i in m] for name, m in groups(inboxes, owners, {"shop.search"}).items()}
    assert found["shop.search"] == ["shop.search"]
    assert found["shop.projections"] == ["shop.cards", "shop.details"]


async def test_isolated_projections_come_from_a_setting_that_names_known_ones(counters_settings):
    parsed = Settings.from_env({"SHOPSTREAM_ISOLATED_PROJECTIONS": " counters.totals , identity.segments"})
    assert parsed.isolated_projections == ("counters.totals", "identity.segments")
    with pytest.raises(ConfigurationError, match="SHOPSTREAM_ISOLATED_PROJECTIONS"):
        Settings.from_env({"SHOPSTREAM_ISOLATED_PROJECTIONS": "Not A Name"})

    wrong = msgspec.structs.replace(counters_settings, isolated_projections=("counters.nothing",))
    with pytest.raises(ConfigurationError, match="SHOPSTREAM_ISOLATED_PROJECTIONS names no projection"):
        await Messaging.open(wrong, [counters])
