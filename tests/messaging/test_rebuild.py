"""Blue/green rebuilds: the live read model answers throughout, the shadow takes over whole, a killed
rebuild resumes, a projection whose version changed is rebuilt on start, dead letters stay."""

from __future__ import annotations

import asyncio
import io
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar

import asyncpg
import msgspec
import pytest
from prometheus_client import REGISTRY

from bus import deadletters
from bus.messages import Envelope
from bus.module import ContextModule
from bus.rebuild import Progress, Rebuild, rebuild
from contexts import identity
from contexts.catalogue import queries as catalogue_queries
from contexts.catalogue import search as catalogue_search
from contexts.catalogue.gallery import AddProductImage
from contexts.catalogue.lifecycle import ActivateProduct, ArchiveProduct, DiscontinueProduct
from contexts.catalogue.pricing import ChangeVariantPrice, SetTierPrice
from contexts.catalogue.viewer import ADMIN
from contexts.identity import queries
from shopstream.bootstrap import Messaging, product_modules
from shopstream.progress import ProgressLine
from shopstream.settings import Settings
from tests.catalogue.test_handlers import new_category, new_product, new_variant
from tests.identity.test_handlers import new_address, registration
from tests.messaging.conftest import FAST
from tests.messaging.counters import module as counters
from tests.messaging.counters.model import Increment, OpenCounter
from tests.messaging.counters.projection import Totals
from tests.messaging.helpers import make_counters, running, totals, wait_until
from tests.messaging.test_reliability import ROOT, proc_env, set_delay, spawned

pytestmark = pytest.mark.anyio

TOTALS = "counters.totals"


async def _caught_up(pool: asyncpg.Pool, consumer: str, log: str) -> bool:
    applied = await pool.fetchval(
        "SELECT coalesce(sum(version), 0) FROM bus.consumer_positions WHERE consumer = $1", consumer
    )
    return bool(applied == await pool.fetchval(f"SELECT count(*) FROM {log}"))


@pytest.fixture
async def identity_messaging(context_settings) -> AsyncIterator[Messaging]:
    settings = await context_settings("rebuild_identity", [identity.module], **FAST)
    opened = await Messaging.open(settings, [identity.module])
    yield opened
    await opened.close()


@dataclass
class Reader:
    """Polls every customer's card and address list and the segment counts, as the API would, on a pool
    of its own; records whatever would have been a 404, a shorter list or a lower count."""

    pool: asyncpg.Pool
    cards: dict[str, int]  # customer → card version before the rebuild
    addresses: dict[str, int]  # customer → addresses before the rebuild
    members: int  # segment members before the rebuild
    reads: int = 0
    failures: list[str] = field(default_factory=list)

    async def poll(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for customer_id, version in self.cards.items():
                card = await queries.get_customer_card(self.pool, customer_id)
                if card is None or card.version < version:
                    self.failures.append(f"card {customer_id}: {card}")
                book = await queries.list_addresses(self.pool, customer_id)
                if book is None or len(book.items) < self.addresses[customer_id]:
                    self.failures.append(f"addresses {customer_id}: {book}")
                counted = sum((await queries.get_segments(self.pool)).tiers.values())
                if counted < self.members:
                    self.failures.append(f"segments: {counted} < {self.members}")
                self.reads += 3


async def test_readers_never_see_a_missing_or_partial_read_model_during_rebuilds(identity_messaging):
    messaging = identity_messaging
    pool = messaging.pool_of("identity")
    customers = [registration() for _ in range(30)]
    for command in customers:
        await messaging.bus.execute(command)
        for _ in range(2):
            await messaging.bus.execute(new_address(command.customer_id))
    async with running(messaging.supervisor()):
        await wait_until(lambda: _caught_up(pool, "identity.segments", "identity.outbox"))
        await wait_until(lambda: _caught_up(pool, "identity.address_book", "identity.outbox"))
        await wait_until(lambda: _caught_up(pool, "identity.customer_card", "identity.outbox"))
        cards = [await queries.get_customer_card(pool, c.customer_id) for c in customers]
        before_cards = {card.customer_id: card.version for card in cards if card is not None}
        assert len(before_cards) == len(customers)
        url = messaging.resources.settings.database_url
        async with asyncpg.create_pool(url, min_size=2, max_size=2) as readers:
            reader = Reader(readers, before_cards, dict.fromkeys(before_cards, 2), len(customers))
            stop = asyncio.Event()
            polling = asyncio.create_task(reader.poll(stop))
            for name in ("identity.customer_card", "identity.address_book", "identity.segments"):
                inbox = messaging.inboxes[name]
                reads_before = reader.reads
                # Small batches: many transactions while the readers poll and the live consumer applies.
                busy = asyncio.create_task(_keep_registering(messaging, 5))
                done = await Rebuild(pool, inbox, batch=7).run()
                await busy
                assert done.swapped
                assert reader.reads > reads_before  # the readers polled while it ran
                await wait_until(partial(_reads_since, reader, reader.reads + 30))
            stop.set()
            await polling
    assert reader.failures == []
    assert reader.reads > 0


async def _reads_since(reader: Reader, count: int) -> bool:
    return reader.reads >= count


async def _keep_registering(messaging: Messaging, count: int) -> None:
    for _ in range(count):
        await messaging.bus.execute(registration())


async def _published_and_applied(
    messaging: Messaging, counters_count: int, increments: int
) -> dict[str, int]:
    final = await make_counters(messaging.bus, count=counters_count, increments=increments)
    async with running(messaging.supervisor()):
        await wait_until(lambda: _caught_up(messaging.pool_of("counters"), TOTALS, "counters.outbox"))
    return final


def _replayed() -> float:
    return REGISTRY.get_sample_value("shopstream_rebuild_events_total", {"projection": TOTALS}) or 0.0


async def test_a_rebuild_killed_halfway_resumes_where_it_stopped(messaging, counters_settings):
    pool = messaging.pool_of("counters")
    final = await _published_and_applied(messaging, counters_count=20, increments=9)
    expected = await totals(pool)
    events = sum(final.values())
    await set_delay(messaging, 0.01)
    async with spawned(counters_settings, "rebuild") as proc:

        async def halfway() -> bool:
            done = await pool.fetchval("SELECT done FROM bus.rebuilds WHERE projection = $1", TOTALS)
            return (done or 0) >= 50 or proc.returncode is not None

        await wait_until(halfway, timeout=60)
        assert proc.returncode is None, "the rebuild process ended by itself"
        proc.kill()  # SIGKILL: no clean-up of any kind
        await proc.wait()
    await set_delay(messaging, None)
    done_when_killed = await pool.fetchval("SELECT done FROM bus.rebuilds WHERE projection = $1", TOTALS)
    assert 0 < done_when_killed < events
    assert await totals(pool) == expected  # the live model was never touched

    replayed_before = _replayed()
    progress = await Rebuild(pool, messaging.inboxes[TOTALS], batch=50).run()
    assert progress.swapped
    assert progress.done == events
    assert _replayed() - replayed_before == events - done_when_killed  # resumed, not started over
    assert await totals(pool) == expected
    assert await pool.fetchval("SELECT count(*) FROM bus.rebuilds") == 0


class TotalsTimesTen(Totals):
    """Version 2 of the totals: every step counts ten times."""

    version: ClassVar[int] = 2

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        await super().apply(_TimesTen(conn), envelope, event)


class _TimesTen:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self._conn.fetchrow(query, *args)

    async def execute(self, query: str, counter_id: str, by: int, *args: Any) -> str:
        return await self._conn.execute(query, counter_id, by * 10, *args)


async def test_a_projection_whose_version_changed_is_rebuilt_on_start_while_the_old_one_answers(
    messaging, counters_settings: Settings
):
    pool = messaging.pool_of("counters")
    final = await _published_and_applied(messaging, counters_count=10, increments=6)
    old = await totals(pool)
    assert (
        await pool.fetchval("SELECT version FROM bus.projection_versions WHERE projection = $1", TOTALS) == 1
    )

    await set_delay(messaging, 0.01)  # a rebuild long enough to read the old model during it
    v2 = ContextModule(
        name="counters",
        migrations=counters.migrations,
        handlers=counters.handlers,
        projections=[TotalsTimesTen()],
    )
    upgraded = await Messaging.open(counters_settings, [v2])
    seen: set[str] = set()
    try:
        async with running(upgraded.supervisor()):

            async def rebuilt() -> bool:
                current = await totals(pool)
                assert set(current) == set(final)  # never an empty or partial model
                seen.add("old" if current == old else "new" if all(
                    current[c][0] == old[c][0] * 10 for c in final
                ) else "mixed")  # fmt: skip
                stored = "SELECT version FROM bus.projection_versions WHERE projection = $1"
                return bool(await pool.fetchval(stored, TOTALS) == 2)

            await wait_until(rebuilt, timeout=60)
    finally:
        await upgraded.close()
        await set_delay(messaging, None)
    assert "old" in seen  # the old version answered while the new one was built
    assert "mixed" not in seen
    assert {c: t for c, (t, _) in (await totals(pool)).items()} == {c: old[c][0] * 10 for c in final}


async def test_dead_letters_and_parked_events_survive_a_rebuild(messaging):
    pool = messaging.pool_of("counters")
    poisoned = uuid.uuid4().hex
    await pool.execute("INSERT INTO counters.poison (counter_id) VALUES ($1)", poisoned)
    final = await make_counters(messaging.bus, count=5, increments=2)
    await messaging.bus.execute(OpenCounter(counter_id=poisoned, name="p"))
    await messaging.bus.execute(Increment(counter_id=poisoned, by=1))
    async with running(messaging.supervisor()):

        async def settled() -> bool:
            parked = await pool.fetchval("SELECT count(*) FROM bus.parked WHERE aggregate_id = $1", poisoned)
            healthy = await totals(pool)
            return parked == 1 and all(healthy.get(c, (0, []))[1][-1:] == [v] for c, v in final.items())

        await wait_until(settled)
    letters_before = await deadletters.listing(pool, TOTALS)
    parked_before = await pool.fetch("SELECT aggregate_id, aggregate_version FROM bus.parked ORDER BY 1, 2")

    await pool.execute("DELETE FROM counters.poison")  # fixed meanwhile: the rebuild must still not apply it
    assert (await Rebuild(pool, messaging.inboxes[TOTALS]).run()).swapped
    assert await deadletters.listing(pool, TOTALS) == letters_before
    assert (
        await pool.fetch("SELECT aggregate_id, aggregate_version FROM bus.parked ORDER BY 1, 2")
        == parked_before
    )
    assert poisoned not in await totals(pool)

    [letter] = letters_before
    outcome = await deadletters.replay(pool, messaging.inboxes, letter.id)
    assert outcome["released"] == 1
    assert (await totals(pool))[poisoned] == (1, [1, 2])


async def test_rebuilding_twice_keeps_the_tables_indexes_and_constraint_names(messaging):
    pool = messaging.pool_of("counters")
    await _published_and_applied(messaging, counters_count=3, increments=1)
    indexes = "SELECT indexname FROM pg_indexes WHERE schemaname = 'counters' AND tablename = 'totals'"
    names = [r["indexname"] for r in await pool.fetch(indexes)]
    expected = await totals(pool)
    for _ in range(2):
        await rebuild(pool, messaging.inboxes[TOTALS])
    assert [r["indexname"] for r in await pool.fetch(indexes)] == names == ["totals_pkey"]
    assert await totals(pool) == expected
    assert await pool.fetchval("SELECT to_regclass('counters_rebuild.totals')") is None


async def test_a_dead_letter_replayed_during_the_rebuild_reaches_the_new_tables(messaging):
    pool = messaging.pool_of("counters")
    poisoned = uuid.uuid4().hex
    await pool.execute("INSERT INTO counters.poison (counter_id) VALUES ($1)", poisoned)
    await messaging.bus.execute(OpenCounter(counter_id=poisoned, name="p"))
    await messaging.bus.execute(Increment(counter_id=poisoned, by=1))
    async with running(messaging.supervisor()):
        parked = "SELECT count(*) FROM bus.parked WHERE aggregate_id = $1"
        await wait_until(partial(_equals, pool, parked, poisoned, 1))
    await pool.execute("DELETE FROM counters.poison")
    [letter] = await deadletters.listing(pool, TOTALS)

    class ReplayedBeforeTheSwap(Rebuild):
        """The operator replays the dead letter just as the shadow reaches the head of the log."""

        async def _swap(self, conn: asyncpg.Connection) -> bool:
            if await deadletters.exists(pool, letter.id):
                await deadletters.replay(pool, messaging.inboxes, letter.id)
            return await super()._swap(conn)

    assert (await ReplayedBeforeTheSwap(pool, messaging.inboxes[TOTALS]).run()).swapped
    assert (await totals(pool))[poisoned] == (1, [1, 2])  # healed into the shadow before it took over
    assert await deadletters.listing(pool, TOTALS) == []


async def _equals(pool: asyncpg.Pool, query: str, argument: str, expected: int) -> bool:
    return bool(await pool.fetchval(query, argument) == expected)


async def test_every_product_projection_rebuilds_to_the_same_read_model(context_settings):
    settings = await context_settings("rebuild_all", product_modules(), **FAST)
    messaging = await Messaging.open(settings)
    try:
        category_id, product_ids = await _shop_history(messaging)
        async with running(messaging.supervisor()):
            for name, inbox in messaging.inboxes.items():
                log = inbox.outbox.table
                await wait_until(partial(_caught_up, messaging.pool_of(messaging.owners[name]), name, log))
        url = settings.database_url
        async with asyncpg.create_pool(url, min_size=2, max_size=2) as readers:
            counts = _catalogue_counts(readers, category_id, product_ids)
            floor = await counts()
            assert floor == {"cards": 2, "filed": 1, "products": 2, "price changes": 2}
            failures: list[str] = []
            stop = asyncio.Event()
            polling = asyncio.create_task(_poll_counts(counts, floor, failures, stop))
            for name, inbox in messaging.inboxes.items():
                pool = messaging.pool_of(messaging.owners[name])
                before = await _contents(pool, inbox.projection.tables)
                assert any(before.values()), name
                assert (await Rebuild(pool, inbox, batch=3).run()).swapped
                assert await _contents(pool, inbox.projection.tables) == before, name
            stop.set()
            await polling
        assert failures == []
    finally:
        await messaging.close()


def _catalogue_counts(pool: asyncpg.Pool, category_id: str, product_ids: list[str]):  # type: ignore[no-untyped-def]
    """What a catalogue reader sees, as numbers that must never go down: cards listed, products filed in
    the category, products found, price changes."""

    async def counts() -> dict[str, int]:
        category = await catalogue_queries.get_category(pool, category_id, viewer=ADMIN)
        found = [await catalogue_queries.get_product(pool, p, viewer=ADMIN) for p in product_ids]
        histories = [await catalogue_queries.get_price_history(pool, p, viewer=ADMIN) for p in product_ids]
        return {
            "cards": len((await catalogue_search.list_product_cards(pool, limit=100, viewer=ADMIN)).items),
            "filed": category.product_count if category else -1,
            "products": sum(p is not None for p in found),
            "price changes": sum(len(h.items) for h in histories if h is not None),
        }

    return counts


async def _poll_counts(counts, floor: dict[str, int], failures: list[str], stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    while not stop.is_set():
        seen = await counts()
        failures.extend(f"{what}: {seen[what]} < {floor[what]}" for what in floor if seen[what] < floor[what])


async def _shop_history(messaging: Messaging) -> tuple[str, list[str]]:
    """A category, an active and an archived product with a variant, a tier price, a price change and an
    image each, and customers with an address; returns the category and product ids."""
    execute = messaging.bus.execute
    product_ids = []
    category_id = (await execute(new_category())).created_id
    for archived in (False, True):
        product_id = (await execute(new_product(category_id=category_id))).created_id
        product_ids.append(product_id)
        variant_id = (await execute(new_variant(product_id))).created_id
        await execute(
            SetTierPrice(product_id=product_id, variant_id=variant_id, tier="Gold", price=Decimal("9"))
        )
        await execute(
            ChangeVariantPrice(product_id=product_id, variant_id=variant_id, base_price=Decimal("19"))
        )
        image = AddProductImage(
            product_id=product_id, image_id=str(uuid.uuid4()), url="https://x.example/a.png"
        )
        await execute(image)
        await execute(ActivateProduct(product_id=product_id))
        if archived:
            await execute(DiscontinueProduct(product_id=product_id))
            await execute(ArchiveProduct(product_id=product_id))
    for _ in range(3):
        command = registration()
        await execute(command)
        await execute(new_address(command.customer_id))
    return category_id, product_ids


async def _contents(pool: asyncpg.Pool, tables: tuple[str, ...]) -> dict[str, list[str]]:
    return {
        table: sorted(r[0] for r in await pool.fetch(f"SELECT to_jsonb(t)::text FROM {table} t"))
        for table in tables
    }


async def test_the_cli_shows_a_stopped_rebuild_then_resumes_it_with_progress(identity_messaging):
    messaging = identity_messaging
    pool = messaging.pool_of("identity")
    for _ in range(12):
        await messaging.bus.execute(registration())
    inbox = messaging.inboxes["identity.customer_card"]
    stopping = asyncio.Event()
    stopped = await Rebuild(
        pool, inbox, batch=5, on_progress=lambda p: p.done and stopping.set(), stopping=stopping
    ).run()
    assert (stopped.swapped, stopped.done, stopped.total) == (False, 5, 12)

    env = proc_env(messaging.resources.settings)
    status = await _cli(env, "projections", "status", "--json")
    [card] = [p for p in msgspec.json.decode(status) if p["name"] == "identity.customer_card"]
    assert (card["version"], card["live_version"], card["applied"], card["lag"]) == (1, 1, 0, 12)
    assert (card["rebuild"]["version"], card["rebuild"]["done"], card["rebuild"]["total"]) == (1, 5, 12)

    out = await _cli(env, "projections", "rebuild", "identity.customer_card", stderr=True)
    assert "identity.customer_card v1: 12/12 events (100%)" in out  # plain lines: not a terminal
    assert "rebuilt identity.customer_card v1: 12 event(s) replayed" in out
    assert await pool.fetchval("SELECT count(*) FROM identity.customer_cards") == 12
    after = msgspec.json.decode(await _cli(env, "projections", "status", "--json"))
    [card] = [p for p in after if p["name"] == "identity.customer_card"]
    assert (card["applied"], card["lag"], card["rebuild"]) == (12, 0, None)


async def _cli(env: dict[str, str], *words: str, stderr: bool = False) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shopstream.cli", *words, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT if stderr else None,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


class TestProgressLine:
    def test_a_pipe_gets_plain_lines(self):
        out = io.StringIO()
        line = ProgressLine(out, every=0)
        line(Progress("p", 2, done=500, total=1000, rate=250.0))
        assert out.getvalue() == "p v2: 500/1,000 events (50%)  250 events/s  2s left\n"

    def test_a_terminal_gets_a_bar_redrawn_in_place(self):
        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        out = Terminal()
        line = ProgressLine(out, every=0)
        line(Progress("p", 1, done=250, total=1000, rate=10.0))
        line(Progress("p", 1, done=1000, total=1000, rate=10.0, swapped=True))
        first, second = out.getvalue().split("\r")[1:]
        assert first.startswith("\x1b[2K[######                  ] p v1: 250/1,000 events (25%)")
        assert first.endswith("1m15s left")
        assert second.endswith("(100%)  10 events/s  0s left\n")


async def test_a_rebuild_left_unfinished_for_another_version_is_dropped_on_start(messaging):
    pool = messaging.pool_of("counters")
    await _published_and_applied(messaging, counters_count=5, increments=3)
    expected = await totals(pool)
    stopping = asyncio.Event()
    inbox = messaging.inboxes[TOTALS]
    unfinished = Rebuild(pool, inbox, version=2, batch=5, on_progress=lambda p: p.done and stopping.set())
    unfinished.stopping = stopping
    assert not (await unfinished.run()).swapped
    assert await pool.fetchval("SELECT version FROM bus.rebuilds WHERE projection = $1", TOTALS) == 2

    async with running(messaging.supervisor()):  # the code is at version 1 again, as the live tables are

        async def dropped() -> bool:
            return await pool.fetchval("SELECT count(*) FROM bus.rebuilds") == 0

        await wait_until(dropped)
    assert await pool.fetchval("SELECT to_regclass('counters_rebuild.totals')") is None
    assert (
        await pool.fetchval("SELECT count(*) FROM bus.consumer_positions WHERE consumer LIKE '%_rebuild'")
        == 0
    )
    assert await totals(pool) == expected
