"""The HTTP tests' means: the app with its workers in the test client's loop, a database connection of
the test's own loop, polls for eventually consistent reads, and the events an aggregate's outbox holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from litestar.testing import AsyncTestClient

from shopstream.app import create_app
from shopstream.settings import Settings


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """The whole app with its relays and consumers, so read models catch up by themselves."""
    async with AsyncTestClient(app=create_app(settings, run_workers=True), timeout=30) as opened:
        yield opened


@asynccontextmanager
async def own_connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own event loop (the app's pools live in the client's loop)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def until(
    client: AsyncTestClient, path: str, holds: Callable[[Any], bool], timeout: float = 30.0
) -> httpx.Response:
    """Poll a read until its body satisfies `holds`."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(path)
        if response.status_code == 200 and holds(response.json()):
            return response
        assert response.status_code in (200, 404), response.text
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never got there: {response.status_code} {response.text}")
        await asyncio.sleep(0.05)


async def eventually(
    client: AsyncTestClient, path: str, version: int, timeout: float = 30.0
) -> httpx.Response:
    """Poll a read until it reflects at least `version` of its aggregate."""
    return await until(client, path, lambda body: body["version"] >= version, timeout)


async def events_of(db: asyncpg.Connection, context: str, aggregate_id: str) -> list[str]:
    """The types of the events the context's outbox holds for the aggregate, oldest first."""
    rows = await db.fetch(
        f"SELECT type FROM {context}.outbox WHERE aggregate_id = $1 ORDER BY aggregate_version", aggregate_id
    )
    return [r["type"] for r in rows]


async def outbox_size(db: asyncpg.Connection, context: str) -> int:
    """How many events the context has recorded, for every aggregate."""
    return int(await db.fetchval(f"SELECT count(*) FROM {context}.outbox"))


OMIT = object()


def merged(body: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A request body with a test's overrides, without the fields it set to `OMIT`."""
    return {k: v for k, v in (body | overrides).items() if v is not OMIT}


async def created(client: AsyncTestClient, path: str, body: dict[str, Any], id_field: str) -> str:
    """POST a body that must create something: the new id."""
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()[id_field])
