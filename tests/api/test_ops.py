"""The operator's routes: dead letters listed page by page, replayed and dropped with the admin token;
outbox backlog; streams with the lag of a group that is behind, on Redis 7, the embedded Valkey and Redis 6.2."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from shopstream.app import create_app
from shopstream.settings import Settings
from shopstream.status import report
from tests.apps import own_connection
from tests.messaging.counters import module as counters
from tests.messaging.helpers import wait_until
from tests.problems import assert_problem

pytestmark = pytest.mark.anyio

TOKEN = "ops-token-" + uuid.uuid4().hex
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
CONSUMER = "counters.totals"
QUICK_RETRIES = {"partitions": 2, "retry_base": 0.02, "retry_cap": 0.1, "retry_attempts": 2}


@pytest.fixture
async def ops_settings(context_settings) -> Settings:
    return await context_settings("ops", [counters], admin_token=TOKEN, **QUICK_RETRIES)


@pytest.fixture
async def client(ops_settings: Settings) -> AsyncIterator[AsyncTestClient]:
    app = create_app(ops_settings, modules=[counters], run_workers=True)
    async with AsyncTestClient(app=app, timeout=30) as opened:
        yield opened


@pytest.fixture
async def quiet(ops_settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """The app without its relay and consumers."""
    async with AsyncTestClient(app=create_app(ops_settings, modules=[counters])) as opened:
        yield opened


async def _versions(settings: Settings, counter_id: str) -> list[int]:
    async with own_connection(settings) as conn:
        versions = await conn.fetchval(
            "SELECT versions FROM counters.totals WHERE counter_id = $1", counter_id
        )
    return list(versions or [])


async def _dead_letter_count(settings: Settings) -> int:
    async with own_connection(settings) as conn:
        return await conn.fetchval("SELECT count(*) FROM bus.dead_letters")  # type: ignore[no-any-return]


async def _poisoned_counters(client: AsyncTestClient, settings: Settings, count: int) -> list[str]:
    """Counters whose second event fails for good: each leaves one dead letter."""
    ids = [
        (await client.post("/test-only/counters", json={"name": "c"})).json()["counter_id"]
        for _ in range(count)
    ]
    for counter_id in ids:
        await wait_until(lambda c=counter_id: _has_versions(settings, c, [1]))
    async with own_connection(settings) as conn:
        await conn.executemany("INSERT INTO counters.poison (counter_id) VALUES ($1)", [(c,) for c in ids])
    for counter_id in ids:
        assert (
            await client.put(f"/test-only/counters/{counter_id}/increment", json={"by": 1})
        ).status_code == 200
    await wait_until(lambda: _has_dead_letters(settings, count))
    return ids


async def _has_versions(settings: Settings, counter_id: str, versions: list[int]) -> bool:
    return await _versions(settings, counter_id) == versions


async def _has_dead_letters(settings: Settings, count: int) -> bool:
    return await _dead_letter_count(settings) == count


async def test_a_dead_letter_is_listed_page_by_page_shown_by_status_then_replayed_or_dropped(
    client, ops_settings
):
    replayed, dropped, kept = await _poisoned_counters(client, ops_settings, 3)

    first = (await client.get("/ops/dead-letters", params={"limit": 2})).json()
    assert first["next_cursor"]
    rest = (await client.get("/ops/dead-letters", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert rest["next_cursor"] is None
    letters = first["items"] + rest["items"]
    assert [d["id"] for d in letters] == sorted(d["id"] for d in letters)
    assert {d["aggregate_id"] for d in letters} == {replayed, dropped, kept}
    assert {(d["consumer"], d["aggregate_version"], d["event_type"]) for d in letters} == {
        (CONSUMER, 2, "counters.Incremented")
    }
    assert "is poison" in letters[0]["error"]
    assert len((await client.get("/ops/dead-letters", params={"consumer": CONSUMER})).json()["items"]) == 3
    assert (await client.get("/ops/dead-letters", params={"consumer": "nobody"})).json() == {
        "items": [],
        "next_cursor": None,
    }

    out = io.StringIO()
    assert await report(ops_settings, as_json=True, modules=[counters], out=out) == 0
    status = json.loads(out.getvalue())
    assert [(d["consumer"], d["count"]) for d in status["dead_letters"]] == [(CONSUMER, 3)]
    assert [o["context"] for o in status["outbox"]] == ["counters"]
    assert {g["group"] for s in status["streams"] for g in s["groups"]} == {CONSUMER}

    by_aggregate = {d["aggregate_id"]: d["id"] for d in letters}
    async with own_connection(ops_settings) as conn:
        await conn.execute("DELETE FROM counters.poison WHERE counter_id <> $1", kept)

    response = await client.post(f"/ops/dead-letters/{by_aggregate[replayed]}/replay", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json() | {"resolved_at": None} == {
        "id": by_aggregate[replayed],
        "consumer": CONSUMER,
        "aggregate_id": replayed,
        "action": "replayed",
        "released": 0,
        "resolved_at": None,
    }
    assert await _versions(ops_settings, replayed) == [1, 2]

    response = await client.delete(f"/ops/dead-letters/{by_aggregate[dropped]}", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["action"] == "dropped"
    assert await _versions(ops_settings, dropped) == [1]

    still_poison = await client.post(f"/ops/dead-letters/{by_aggregate[kept]}/replay", headers=ADMIN)
    assert assert_problem(still_poison, 409)["type"].endswith(":replay-failed")
    assert [d["aggregate_id"] for d in (await client.get("/ops/dead-letters")).json()["items"]] == [kept]
    gone = await client.post(f"/ops/dead-letters/{by_aggregate[replayed]}/replay", headers=ADMIN)
    assert_problem(gone, 404)


async def test_resolving_needs_the_admin_token(quiet):
    path = "/ops/dead-letters/1/replay"
    for headers in ({}, {"Authorization": "Basic b3BzOnRva2Vu"}, {"Authorization": "Bearer "}):
        refused = await quiet.post(path, headers=headers)
        assert assert_problem(refused, 401)["type"].endswith(":unauthenticated")
        assert refused.headers["www-authenticate"].startswith("Bearer")
    wrong = await quiet.delete(
        "/ops/dead-letters/1", headers={"Authorization": "Bearer not-the-token-at-all"}
    )
    body = assert_problem(wrong, 403)
    assert TOKEN not in wrong.text and "not-the-token" not in body["detail"]
    assert_problem(await quiet.post(path, headers=ADMIN), 404)  # the token is right; no such letter


async def test_without_a_configured_token_nothing_can_be_resolved(settings):
    assert settings.admin_token is None
    async with AsyncTestClient(app=create_app(settings)) as plain:
        refused = await plain.post("/ops/dead-letters/1/replay", headers=ADMIN)
        outbox = await plain.get("/ops/outbox")
    assert assert_problem(refused, 403)["type"].endswith(":admin-token-not-configured")
    assert "SHOPSTREAM_ADMIN_TOKEN" in refused.json()["detail"]
    assert outbox.status_code == 200
    assert {o["context"] for o in outbox.json()["items"]} == {"identity", "catalogue"}


async def test_dead_letter_pages_refuse_a_foreign_cursor_and_a_limit_out_of_range(quiet):
    assert_problem(await quiet.get("/ops/dead-letters", params={"cursor": "bm90LWEtY3Vyc29y"}), 422, "cursor")
    for limit in (0, 101):
        assert_problem(await quiet.get("/ops/dead-letters", params={"limit": limit}), 422)


async def test_the_outbox_backlog_shows_what_waits_for_the_relay(quiet):
    await quiet.post("/test-only/counters", json={"name": "c"})
    await asyncio.sleep(0.01)
    [backlog] = (await quiet.get("/ops/outbox")).json()["items"]
    assert backlog["context"] == "counters"
    assert backlog["pending"] == 1
    assert backlog["oldest_pending_age_seconds"] > 0
    assert backlog["last_position"] >= 1
    assert backlog["last_published_at"] is None


@pytest.mark.parametrize("server", ["configured", "embedded", "redis 6.2"])
async def test_streams_show_the_lag_of_a_group_that_is_behind(request, ops_settings, server):
    redis_url = {
        "configured": lambda: ops_settings.redis_url,
        "embedded": lambda: request.getfixturevalue("embedded").redis_url(),
        "redis 6.2": lambda: request.getfixturevalue("redis62_url"),
    }[server]()
    settings = msgspec.structs.replace(ops_settings, redis_url=redis_url)
    stream = f"{settings.redis_prefix}.counters.0"
    redis = Redis.from_url(redis_url)
    try:
        await redis.xgroup_create(stream, "reporting", id="0", mkstream=True)
        for n in range(3):
            await redis.xadd(stream, {"e": str(n)})
        await redis.xreadgroup("reporting", "r1", {stream: ">"}, count=1)  # one delivered, two behind
        async with AsyncTestClient(app=create_app(settings, modules=[counters])) as c:
            streams = (await c.get("/ops/streams")).json()["items"]
    finally:
        await redis.delete(stream)
        await redis.aclose()

    [state] = [s for s in streams if s["stream"] == stream]
    groups = {g["group"]: g for g in state["groups"]}
    assert state["length"] == 3
    assert (groups["reporting"]["lag"], groups["reporting"]["pending"], groups["reporting"]["consumers"]) == (
        2,
        1,
        1,
    )
    assert groups["reporting"]["oldest_pending_idle_seconds"] >= 0
    assert (groups[CONSUMER]["exists"], groups[CONSUMER]["lag"]) == (False, 3)  # its consumer never ran


async def test_streams_answer_503_while_redis_is_unreachable(ops_settings):
    down = msgspec.structs.replace(ops_settings, redis_url="redis://127.0.0.1:1/0", ready_timeout=0.5)
    async with AsyncTestClient(app=create_app(down, modules=[counters])) as c:
        response = await c.get("/ops/streams")
    assert assert_problem(response, 503)["detail"] == "Redis is unreachable."
    assert response.headers["retry-after"]
