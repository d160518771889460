"""PostgreSQL or Redis away: every route answers 503 problem+json with `Retry-After`, never 500, and
works again once the service is back. A command whose commit the outage hid says its outcome is
unknown, and a retry with its `Idempotency-Key` then answers without running it twice.

The app reaches the real servers through relays the tests cut (tests/outage.py); the servers
themselves keep running for the other tests."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from observability import metrics
from shopstream import problems
from shopstream.app import create_app
from shopstream.settings import Settings
from tests.outage import CuttableRelay
from tests.problems import assert_problem

pytestmark = pytest.mark.anyio

HELD = 0x5EED  # the advisory lock a held commit waits for
# At commit, the idempotency record of a key starting `held-` waits until the test lets it go, so the
# test can break the connection while the commit is in flight.
HOLD_COMMITS = f"""
CREATE FUNCTION bus.hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key LIKE 'held-%' THEN PERFORM pg_advisory_xact_lock({HELD}); END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON bus.idempotency_keys
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bus.hold_commit();
"""


@pytest.fixture(scope="module")
async def outage_settings(api_settings: Settings) -> Settings:
    conn = await asyncpg.connect(api_settings.database_url)
    try:
        await conn.execute(HOLD_COMMITS)
    finally:
        await conn.close()
    return api_settings


@dataclass
class Served:
    client: AsyncTestClient
    postgres: CuttableRelay
    redis: CuttableRelay


@pytest.fixture
async def served(outage_settings: Settings) -> AsyncIterator[Served]:
    """The app (without workers) whose PostgreSQL and Redis the test can take away."""
    assert outage_settings.database_url and outage_settings.redis_url
    postgres = CuttableRelay(outage_settings.database_url).start()
    redis = CuttableRelay(outage_settings.redis_url).start()
    settings = msgspec.structs.replace(outage_settings, database_url=postgres.url(), redis_url=redis.url())
    try:
        async with AsyncTestClient(app=create_app(settings), timeout=30) as client:
            yield Served(client, postgres, redis)
    finally:
        postgres.stop()
        redis.stop()


def customer() -> dict[str, str]:
    unique = uuid.uuid4().hex[:10]
    return {"external_id": f"crm-{unique}", "email": f"ada.{unique}@example.com", "first_name": "Ada",
            "last_name": "Lovelace"}  # fmt: skip


def assert_unavailable(response: httpx.Response, service: str, kind: str = "unavailable") -> dict[str, Any]:
    body = assert_problem(response, 503)
    assert body["type"] == f"urn:shopstream:problem:{kind}", body
    assert body["service"] == service
    assert int(response.headers["retry-after"]) > 0
    return body


class TestPostgreSQLAway:
    async def test_a_write_answers_503_with_retry_after_and_succeeds_once_it_is_back(self, served):
        with served.postgres.down():
            assert_unavailable(await served.client.post("/customers", json=customer()), "PostgreSQL")
        assert (await served.client.post("/customers", json=customer())).status_code == 201

    async def test_a_write_that_was_working_when_it_went_away_answers_503(self, served):
        assert (await served.client.post("/customers", json=customer())).status_code == 201  # pool warm
        with served.postgres.down():
            assert_unavailable(await served.client.post("/customers", json=customer()), "PostgreSQL")

    @pytest.mark.parametrize("path", ["/products", "/customers/segments", "/categories", "/ops/outbox"])
    async def test_a_read_answers_503_and_reads_again_once_it_is_back(self, served, path):
        assert (await served.client.get(path)).status_code == 200
        with served.postgres.down():
            assert_unavailable(await served.client.get(path), "PostgreSQL")
        assert (await served.client.get(path)).status_code == 200

    async def test_an_idempotency_key_is_recalled_once_it_is_back(self, served):
        body, key = customer(), {"Idempotency-Key": f"key-{uuid.uuid4()}"}
        with served.postgres.down():  # the key cannot even be looked up
            assert_unavailable(await served.client.post("/customers", json=body, headers=key), "PostgreSQL")
        first = await served.client.post("/customers", json=body, headers=key)
        assert first.status_code == 201, first.text
        again = await served.client.post("/customers", json=body, headers=key)
        assert (again.status_code, again.json()) == (201, first.json())

    async def test_commands_it_failed_are_counted_as_unavailable(self, served):
        labels = ("identity", "RegisterCustomer", "Unavailable")
        before = metrics.commands_total.labels(*labels)._value.get()
        assert (await served.client.post("/customers", json=customer())).status_code == 201
        with served.postgres.down():
            await served.client.post("/customers", json=customer())
        assert metrics.commands_total.labels(*labels)._value.get() == before + 1

    async def test_an_outage_is_logged_once_without_tracebacks(self, served, caplog, monkeypatch):
        monkeypatch.setattr(problems, "outage_log", type(problems.outage_log)(problems.log))  # none known
        caplog.set_level(logging.WARNING, logger="shopstream")
        with served.postgres.down():
            for _ in range(3):
                await served.client.post("/customers", json=customer())
                await served.client.get("/products")
        lines = [r for r in caplog.records if r.name == "shopstream.errors"]
        assert [r.getMessage().split(" (")[0] for r in lines] == ["PostgreSQL unavailable"], lines
        assert lines[0].exc_info is None


class TestRedisAway:
    async def test_a_route_reading_redis_answers_503_and_reads_again_once_it_is_back(self, served):
        assert (await served.client.get("/ops/streams")).status_code == 200
        with served.redis.down():
            assert_unavailable(await served.client.get("/ops/streams"), "Redis")
        assert (await served.client.get("/ops/streams")).status_code == 200

    async def test_commands_need_no_redis(self, served):
        with served.redis.down():  # the outbox keeps the events until the relay can publish them
            assert (await served.client.post("/customers", json=customer())).status_code == 201

    async def test_ready_names_the_service_that_is_away(self, served):
        with served.redis.down():
            body = assert_problem(await served.client.get("/ready"), 503)
            assert body["failing"] == ["Redis"]


# --- a commit the outage hides ------------------------------------------------------------------


Sabotage = Callable[[asyncpg.Connection, int], Awaitable[None]]


class Saboteur:
    """Holds the commits of `held-` keys; once one waits, breaks its connection with `sabotage`, lets
    the commit go on, and waits until its server process has finished (committed or rolled back)."""

    def __init__(self, url: str, sabotage: Sabotage) -> None:
        self.url = url
        self.sabotage = sabotage
        self.holding = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Saboteur:
        self.thread.start()
        assert self.holding.wait(10), self.failure
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(30)
        assert not self.thread.is_alive(), "the held commit never came"
        if self.failure is not None:
            raise self.failure

    def _run(self) -> None:
        try:
            asyncio.run(self._act())
        except BaseException as exc:
            self.failure = exc
            self.holding.set()

    async def _act(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", HELD)
            self.holding.set()
            pid = await _eventually(conn, _WAITING_FOR_HOLD)
            await self.sabotage(conn, pid)
            await conn.execute("SELECT pg_advisory_unlock($1)", HELD)
            await _eventually(
                conn, "SELECT 1 WHERE NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid
            )
        finally:
            await conn.close()


_WAITING_FOR_HOLD = f"""
SELECT pid FROM pg_locks
 WHERE locktype = 'advisory' AND objid = {HELD} AND NOT granted
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


_WAITING_BEHIND = """
SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE l.locktype = 'transactionid' AND NOT l.granted AND l.pid <> $1 AND a.datname = current_database()
"""


async def _eventually(conn: asyncpg.Connection, query: str, *args: object) -> Any:
    for _ in range(600):
        if (found := await conn.fetchval(query, *args)) is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {query}")


@dataclass
class Write:
    path: str
    body: Callable[[], dict[str, Any]]
    created: str  # the field naming what it created
    count: str  # how many such aggregates the body made: SQL taking the body's unique value as $1
    unique: str


REGISTRATION = Write(
    "/customers",
    customer,
    "customer_id",
    "SELECT count(*) FROM identity.customers WHERE external_id = $1",
    "external_id",
)


def listing(category_id: str) -> Write:
    """Listing a product in a category: a commit in a transaction, as the category is only read."""
    return Write(
        "/products",
        lambda: {
            "sku": f"TEE-{uuid.uuid4().hex[:10]}".upper(),
            "title": "Tee",
            "seller_id": str(uuid.uuid4()),
            "category_id": category_id,
        },
        "product_id",
        "SELECT count(*) FROM catalogue.products WHERE state->>'sku' = $1",
        "sku",
    )


@pytest.fixture(params=["one statement", "transaction"])
async def write(request, served) -> Write:
    if request.param == "one statement":
        return REGISTRATION
    made = await served.client.post("/categories", json={"name": f"Tees {uuid.uuid4().hex[:8]}"})
    assert made.status_code == 201, made.text
    return listing(made.json()["category_id"])


class TestCommitLost:
    async def test_a_commit_that_took_effect_is_recalled_by_its_idempotency_key(self, served, write, db):
        async def cut(conn: asyncpg.Connection, pid: int) -> None:
            served.postgres.cut()  # the server commits, but its answer never arrives

        body, key = write.body(), {"Idempotency-Key": f"held-{uuid.uuid4()}"}
        with Saboteur(served_url(served), cut):
            lost = await served.client.post(write.path, json=body, headers=key)
        served.postgres.restore()
        assert_unavailable(lost, "PostgreSQL", kind="outcome-unknown")
        assert "Idempotency-Key" in lost.json()["detail"]
        assert await db.fetchval(write.count, body[write.unique]) == 1  # it did take effect

        retried = await served.client.post(write.path, json=body, headers=key)
        assert retried.status_code == 201, retried.text
        assert await db.fetchval(write.count, body[write.unique]) == 1  # and did not run again

    async def test_a_commit_that_did_not_take_effect_runs_once_on_retry(self, served, write, db):
        async def terminate(conn: asyncpg.Connection, pid: int) -> None:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)  # rolled back mid-commit

        body, key = write.body(), {"Idempotency-Key": f"held-{uuid.uuid4()}"}
        with Saboteur(served_url(served), terminate):
            lost = await served.client.post(write.path, json=body, headers=key)
        assert_unavailable(lost, "PostgreSQL", kind="outcome-unknown")
        assert await db.fetchval(write.count, body[write.unique]) == 0

        retried = await served.client.post(write.path, json=body, headers=key)
        assert retried.status_code == 201, retried.text
        assert await db.fetchval(write.count, body[write.unique]) == 1
        again = await served.client.post(write.path, json=body, headers=key)
        assert (again.status_code, again.json()) == (201, retried.json())

    async def test_a_retry_racing_the_lost_commit_answers_as_the_first_did(self, served, write, db):
        async def cut_then_let_the_retry_wait_behind_it(conn: asyncpg.Connection, pid: int) -> None:
            served.postgres.cut()  # the first attempt's answer is lost, but its commit goes on
            served.postgres.restore()
            await _eventually(conn, _WAITING_BEHIND, pid)  # the retry clashes with what it writes

        body, key = write.body(), {"Idempotency-Key": f"held-{uuid.uuid4()}"}
        with Saboteur(served_url(served), cut_then_let_the_retry_wait_behind_it):
            lost = await served.client.post(write.path, json=body, headers=key)
            assert_unavailable(lost, "PostgreSQL", kind="outcome-unknown")
            retried = await served.client.post(write.path, json=body, headers=key)
        assert retried.status_code == 201, retried.text
        assert await db.fetchval(write.count, body[write.unique]) == 1
        again = await served.client.post(write.path, json=body, headers=key)
        assert (again.status_code, again.json()) == (201, retried.json())

    async def test_commands_whose_outcome_is_unknown_are_counted_so(self, served, db):
        async def terminate(conn: asyncpg.Connection, pid: int) -> None:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)

        labels = ("identity", "RegisterCustomer", "OutcomeUnknown")
        before = metrics.commands_total.labels(*labels)._value.get()
        with Saboteur(served_url(served), terminate):
            lost = await served.client.post(
                "/customers", json=customer(), headers={"Idempotency-Key": f"held-{uuid.uuid4()}"}
            )
        assert lost.status_code == 503
        assert metrics.commands_total.labels(*labels)._value.get() == before + 1


def served_url(served: Served) -> str:
    """The database itself, not through the relay the test cuts."""
    return served.postgres.upstream
