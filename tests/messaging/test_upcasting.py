"""Upcasting: events stored in an older schema version reach every reader in the current shape.

The counters context stores its events as version 1. Here a newer release is simulated with a registry
of its own: `CounterOpened` v3 (v1 `name` renamed to `title` in v2, then split into `title` and
`subtitle` in v3) and `Incremented` v2 (`by` renamed to `step`). A projection records the events it
is handed, so each read path (consumer, gap healing, reconciler, rebuild, dead-letter replay) is seen
to hand over the current shape.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import msgspec
import pytest

from bus import deadletters
from bus.consumer import Consumer
from bus.inbox import HEALED, Inbox
from bus.messages import Envelope, Event, Registry, UnknownMessage
from bus.rebuild import rebuild
from bus.supervisor import Supervisor
from tests.messaging.counters.model import Increment, OpenCounter
from tests.messaging.helpers import running, wait_until

pytestmark = pytest.mark.anyio

newer = Registry()


@newer.register
class CounterOpened(Event, frozen=True, kw_only=True, tag="counters.CounterOpened"):
    schema_version: ClassVar[int] = 3
    counter_id: str
    title: str
    subtitle: str


@newer.register
class Incremented(Event, frozen=True, kw_only=True, tag="counters.Incremented"):
    schema_version: ClassVar[int] = 2
    counter_id: str
    step: int
    total: int


@newer.upcaster("counters.CounterOpened", 1)
def _name_became_title(fields: dict[str, Any]) -> dict[str, Any]:
    fields = dict(fields)
    fields["title"] = fields.pop("name")
    return fields


@newer.upcaster("counters.CounterOpened", 2)
def _title_split(fields: dict[str, Any]) -> dict[str, Any]:
    title, _, subtitle = fields["title"].partition(" / ")
    return {**fields, "title": title, "subtitle": subtitle}


@newer.upcaster("counters.Incremented", 1)
def _by_became_step(fields: dict[str, Any]) -> dict[str, Any]:
    fields = dict(fields)
    fields["step"] = fields.pop("by")
    return fields


class Seen:
    """Records each event it is handed, as its class name and fields; fails for poisoned counters."""

    name = "counters.seen"
    tables = ("counters.seen",)

    async def apply(self, conn: Any, envelope: Envelope, event: Any) -> None:
        if await conn.fetchval("SELECT 1 FROM counters.poison WHERE counter_id = $1", envelope.aggregate_id):
            raise RuntimeError("poisoned")
        assert isinstance(event, CounterOpened | Incremented), type(event)
        await conn.execute(
            "INSERT INTO counters.seen (counter_id, version, kind, fields) VALUES ($1, $2, $3, $4)",
            envelope.aggregate_id, envelope.aggregate_version, type(event).__name__,
            msgspec.json.encode(msgspec.structs.asdict(event)).decode(),
        )  # fmt: skip


@pytest.fixture
async def inbox(messaging) -> Inbox:  # type: ignore[no-untyped-def]
    await messaging.pool_of("counters").execute(
        "CREATE TABLE counters.seen (counter_id text, version bigint, kind text, fields jsonb,"
        " PRIMARY KEY (counter_id, version))"
    )
    return Inbox(Seen(), messaging.outboxes["counters"], newer)


@asynccontextmanager
async def _consuming(messaging, inbox: Inbox) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    config = msgspec.structs.replace(messaging.config, reconcile_interval=0.5)
    consumer = Consumer(inbox, messaging.pool_of("counters"), messaging.redis, config)
    async with running(Supervisor({"consumer": consumer.run}, shutdown_grace=5)):
        yield


async def _stored_v1(messaging, increments: int = 2) -> str:  # type: ignore[no-untyped-def]
    counter_id = uuid.uuid4().hex
    await messaging.bus.execute(OpenCounter(counter_id=counter_id, name="Tea / cups"))
    for _ in range(increments):
        await messaging.bus.execute(Increment(counter_id=counter_id, by=2))
    versions = await messaging.pool_of("counters").fetch(
        "SELECT DISTINCT schema_version FROM counters.outbox WHERE aggregate_id = $1", counter_id
    )
    assert [r["schema_version"] for r in versions] == [1]
    return counter_id


async def _seen(pool, counter_id: str) -> list[tuple[int, str, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    rows = await pool.fetch(
        "SELECT version, kind, fields::text FROM counters.seen WHERE counter_id = $1 ORDER BY version",
        counter_id,
    )
    return [(r["version"], r["kind"], msgspec.json.decode(r["fields"])) for r in rows]


def _current_shape(counter_id: str, increments: int = 2) -> list[tuple[int, str, dict[str, Any]]]:
    opened = {"counter_id": counter_id, "title": "Tea", "subtitle": "cups"}
    steps = [
        (v, "Incremented", {"counter_id": counter_id, "step": 2, "total": 2 * (v - 1)})
        for v in range(2, increments + 2)
    ]
    return [(1, "CounterOpened", opened), *steps]


def _has_seen(pool, counter_id: str, count: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return len(await _seen(pool, counter_id)) == count

    return check


async def _stream_entries(messaging, counter_id: str) -> dict[int, bytes]:  # type: ignore[no-untyped-def]
    relay = messaging.relay("counters")
    found = {}
    for entry_id, fields in await messaging.redis.xrange(relay.stream_of(counter_id)):
        envelope = msgspec.json.decode(fields[b"e"], type=Envelope)
        if envelope.aggregate_id == counter_id:
            found[envelope.aggregate_version] = entry_id
    return found


class TestRegistry:
    def test_the_current_version_decodes_without_upcasting(self):
        payload = msgspec.json.encode({"counter_id": "c", "step": 1, "total": 1})
        expected = Incremented(counter_id="c", step=1, total=1)
        assert newer.decode("counters.Incremented", payload, 2) == expected
        assert newer.decode("counters.Incremented", payload) == expected

    def test_an_older_version_is_lifted_step_by_step(self):
        payload = msgspec.json.encode({"counter_id": "c", "name": "Tea / cups"})
        expected = CounterOpened(counter_id="c", title="Tea", subtitle="cups")
        assert newer.decode("counters.CounterOpened", payload, 1) == expected
        assert newer.decode("counters.CounterOpened", msgspec.json.encode({"counter_id": "c", "title": "Tea / cups"}), 2) == expected  # fmt: skip

    def test_a_version_without_an_upcaster_passes_as_it_is(self):
        registry = Registry()

        @registry.register
        class Renamed(Event, frozen=True, kw_only=True, tag="t.Renamed"):
            schema_version: ClassVar[int] = 2
            name: str
            note: str = ""  # v2 only added a field with a default

        assert registry.decode("t.Renamed", b'{"name": "x"}', 1) == Renamed(name="x")

    def test_a_newer_version_than_the_code_knows_is_an_unknown_message(self):
        with pytest.raises(UnknownMessage, match="v3"):
            newer.decode("counters.Incremented", b'{"counter_id": "c", "step": 1, "total": 1}', 3)

    def test_an_upcaster_is_registered_once_per_version(self):
        with pytest.raises(TypeError):
            newer.upcaster("counters.Incremented", 1)(lambda fields: fields)


async def test_the_consumer_applies_stored_version_1_events_as_the_current_version(messaging, inbox):
    pool, counter_id = messaging.pool_of("counters"), await _stored_v1(messaging)
    assert await messaging.relay("counters").relay_once() == 3
    async with _consuming(messaging, inbox):
        await wait_until(_has_seen(pool, counter_id, 3))
    assert await _seen(pool, counter_id) == _current_shape(counter_id)


async def test_gap_healing_reads_the_event_log_in_the_current_version(messaging, inbox):
    pool, counter_id = messaging.pool_of("counters"), await _stored_v1(messaging)
    outbox = messaging.outboxes["counters"]
    first, _, third = map(outbox.envelope, await pool.fetch(outbox.select_versions, counter_id, 0, 4))
    async with pool.acquire() as conn, conn.transaction():
        await inbox.apply(conn, first)
        assert await inbox.apply(conn, third) == HEALED  # v2 comes from the event log
    assert await _seen(pool, counter_id) == _current_shape(counter_id)


async def test_the_reconcilers_redelivery_is_applied_in_the_current_version(messaging, inbox):
    pool, counter_id = messaging.pool_of("counters"), await _stored_v1(messaging, increments=0)
    assert await messaging.relay("counters").relay_once() == 1
    [entry_id] = (await _stream_entries(messaging, counter_id)).values()
    assert await messaging.redis.xdel(messaging.relay("counters").stream_of(counter_id), entry_id) == 1
    async with _consuming(messaging, inbox):  # only the reconciler can deliver it now
        await wait_until(_has_seen(pool, counter_id, 1), timeout=30)
    assert await _seen(pool, counter_id) == _current_shape(counter_id, increments=0)


async def test_a_rebuild_replays_the_event_log_in_the_current_version(messaging, inbox):
    pool, counter_id = messaging.pool_of("counters"), await _stored_v1(messaging)
    await rebuild(pool, inbox)
    assert await _seen(pool, counter_id) == _current_shape(counter_id)


async def _parked_are(pool, counter_id: str, count: int) -> bool:  # type: ignore[no-untyped-def]
    """`count` of the counter's events wait parked behind its dead letter."""
    parked = "SELECT count(*) FROM bus.parked WHERE aggregate_id = $1"
    return await pool.fetchval(parked, counter_id) == count  # type: ignore[no-any-return]


async def test_a_replayed_dead_letter_and_its_parked_events_arrive_in_the_current_version(messaging, inbox):
    pool, counter_id = messaging.pool_of("counters"), await _stored_v1(messaging)
    await pool.execute("INSERT INTO counters.poison (counter_id) VALUES ($1)", counter_id)
    assert await messaging.relay("counters").relay_once() == 3
    async with _consuming(messaging, inbox):
        await wait_until(lambda: _parked_are(pool, counter_id, 2))
    await pool.execute("DELETE FROM counters.poison")
    [letter] = await deadletters.listing(pool, Seen.name)
    outcome = await deadletters.replay(pool, {Seen.name: inbox}, letter.id)
    assert outcome["released"] == 2
    assert await _seen(pool, counter_id) == _current_shape(counter_id)


async def test_an_event_from_a_newer_release_waits_as_a_dead_letter(messaging, inbox):
    pool, counter_id = messaging.pool_of("counters"), await _stored_v1(messaging)
    await pool.execute(
        "UPDATE counters.outbox SET schema_version = 9 WHERE aggregate_id = $1 AND aggregate_version = 2",
        counter_id,
    )
    assert await messaging.relay("counters").relay_once() == 3
    async with _consuming(messaging, inbox):
        await wait_until(lambda: _parked_are(pool, counter_id, 1))
    [letter] = await deadletters.listing(pool, Seen.name)
    assert (letter.aggregate_version, letter.error) == (
        2,
        "UnknownMessage: counters.Incremented v9 (this release knows up to v2)",
    )
    assert [v for v, _, _ in await _seen(pool, counter_id)] == [1]
