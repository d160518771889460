"""The command bus and unit of work: serialised per aggregate, optimistic locking, If-Match,
Idempotency-Key, and refusal past the bounds."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from bus.bus import Bus, Route
from bus.config import BusConfig
from bus.errors import Conflict, Overloaded
from shopstream.app import create_app
from shopstream.bootstrap import Messaging
from tests.messaging.counters import module as counters
from tests.messaging.counters.model import Increment, OpenCounter

pytestmark = pytest.mark.anyio


class TestOneAggregateUnderConcurrency:
    async def test_eight_commands_through_two_buses_lose_no_update(self, counters_settings):
        settings = msgspec.structs.replace(counters_settings, command_attempts=20)
        first, second = await Messaging.open(settings, [counters]), await Messaging.open(settings, [counters])
        try:
            await first.bus.execute(OpenCounter(counter_id="shared", name="c"))
            outcomes = await asyncio.gather(
                *(bus.execute(Increment(counter_id="shared", by=1)) for bus in [first.bus, second.bus] * 4)
            )
            pool = first.pool_of("counters")
            assert (
                await pool.fetchval(
                    "SELECT (state->>'total')::bigint FROM counters.counters WHERE id = 'shared'"
                )
                == 8
            )
            versions = await pool.fetch(
                "SELECT aggregate_version FROM counters.outbox WHERE aggregate_id = 'shared' ORDER BY position"
            )
            assert [r["aggregate_version"] for r in versions] == list(range(1, 10))
            assert sorted(o.version for o in outcomes) == list(range(2, 10))
        finally:
            await first.close()
            await second.close()

    async def test_commands_for_one_aggregate_run_in_arrival_order(self, messaging):
        await messaging.bus.execute(OpenCounter(counter_id="ordered", name="c"))
        outcomes = await asyncio.gather(
            *(messaging.bus.execute(Increment(counter_id="ordered", by=n)) for n in range(1, 11))
        )
        assert [o.version for o in outcomes] == list(range(2, 12))
        rows = await messaging.pool_of("counters").fetch(
            "SELECT payload->>'by' AS by FROM counters.outbox WHERE aggregate_version > 1 ORDER BY aggregate_version"
        )
        assert [int(r["by"]) for r in rows] == list(range(1, 11))

    async def test_clash_that_persists_past_the_attempts_is_a_conflict(self, counters_settings):
        settings = msgspec.structs.replace(counters_settings, command_attempts=1)
        first, second = await Messaging.open(settings, [counters]), await Messaging.open(settings, [counters])
        try:
            await first.bus.execute(OpenCounter(counter_id="contended", name="c"))
            results = await asyncio.gather(
                *(bus.execute(Increment(counter_id="contended")) for bus in [first.bus, second.bus] * 10),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, Exception)]
            assert all(isinstance(f, Conflict) for f in failures)
            total = await first.pool_of("counters").fetchval(
                "SELECT (state->>'total')::bigint FROM counters.counters"
            )
            assert total == len(results) - len(failures)
        finally:
            await first.close()
            await second.close()


class TestOverload:
    async def test_commands_past_the_mailbox_bound_are_refused(self):
        gate = asyncio.Event()

        async def slow(command: Any, uow: Any) -> str:
            await gate.wait()
            return command.counter_id

        bus = Bus(BusConfig(mailbox_capacity=2, max_mailboxes=2))
        bus.register(Increment, Route("counters", slow, None, None))  # type: ignore[arg-type]
        running = [asyncio.create_task(bus.execute(Increment(counter_id="a")))]
        await asyncio.sleep(0.01)  # the first runs
        running += [asyncio.create_task(bus.execute(Increment(counter_id="a"))) for _ in range(2)]
        await asyncio.sleep(0.01)  # two wait in the mailbox
        with pytest.raises(Overloaded):
            await asyncio.wait_for(bus.execute(Increment(counter_id="a")), 1)
        running.append(asyncio.create_task(bus.execute(Increment(counter_id="b"))))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded):
            await asyncio.wait_for(bus.execute(Increment(counter_id="c")), 1)  # a third aggregate
        gate.set()
        assert await asyncio.gather(*running) == ["a", "a", "a", "b"]
        assert await bus.execute(Increment(counter_id="c")) == "c"  # mailboxes retired when idle


@pytest.fixture
async def client(counters_settings):
    app = create_app(counters_settings, modules=[counters])
    async with AsyncTestClient(app=app) as c:
        yield c


async def _fetchval(client, sql: str, *args: Any) -> Any:
    """The app runs in the test client's own loop: query through a connection of the test's loop."""
    conn = await asyncpg.connect(client.app.state.resources.settings.database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _events(client, counter_id: str) -> int:
    return await _fetchval(client, "SELECT count(*) FROM counters.outbox WHERE aggregate_id = $1", counter_id)


class TestIdempotencyKey:
    async def test_retry_with_same_key_and_body_returns_the_first_response(self, client):
        headers = {"Idempotency-Key": "key-create-1"}
        first = await client.post("/test-only/counters", json={"name": "x"}, headers=headers)
        again = await client.post("/test-only/counters", json={"name": "x"}, headers=headers)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        counter_id = first.json()["counter_id"]
        assert await _events(client, counter_id) == 1

        path = f"/test-only/counters/{counter_id}/increment"
        step = {"Idempotency-Key": "key-step-1"}
        responses = [await client.put(path, json={"by": 2}, headers=step) for _ in range(3)]
        assert {r.json()["version"] for r in responses} == {2}
        assert await _events(client, counter_id) == 2

    async def test_same_key_with_another_body_is_422(self, client):
        headers = {"Idempotency-Key": "key-create-2"}
        await client.post("/test-only/counters", json={"name": "x"}, headers=headers)
        response = await client.post("/test-only/counters", json={"name": "y"}, headers=headers)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")

    async def test_concurrent_retries_run_the_command_once(self, client):
        headers = {"Idempotency-Key": "key-create-3"}
        responses = await asyncio.gather(
            *(client.post("/test-only/counters", json={"name": "z"}, headers=headers) for _ in range(5))
        )
        assert {r.status_code for r in responses} <= {201, 409}
        ids = {r.json()["counter_id"] for r in responses if r.status_code == 201}
        assert len(ids) == 1
        assert await _fetchval(client, "SELECT count(*) FROM counters.counters") == 1


class TestIfMatch:
    async def test_matching_version_applies_and_a_stale_one_is_412(self, client):
        counter_id = (await client.post("/test-only/counters", json={"name": "x"})).json()["counter_id"]
        path = f"/test-only/counters/{counter_id}/increment"
        ok = await client.put(path, json={"by": 1}, headers={"If-Match": '"1"'})
        assert ok.status_code == 200
        assert ok.json() == {"status": "ok", "version": 2}
        assert ok.headers["etag"] == '"2"'
        stale = await client.put(path, json={"by": 1}, headers={"If-Match": '"1"'})
        assert stale.status_code == 412
        assert stale.headers["content-type"].startswith("application/problem+json")
        garbage = await client.put(path, json={"by": 1}, headers={"If-Match": "not-a-version"})
        assert garbage.status_code == 412
        assert await _events(client, counter_id) == 2

    async def test_unknown_aggregate_is_404(self, client):
        response = await client.put("/test-only/counters/nope/increment", json={"by": 1})
        assert response.status_code == 404
