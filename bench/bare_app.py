"""The baseline of `bench.commands`: the least a Litestar + asyncpg endpoint does to register a customer.

    DATABASE_URL=postgresql://... uvicorn bench.bare_app:app --port 8001

`POST /customers` decodes the same JSON body as ShopStream's (four strings), makes an id, and in one
transaction inserts the aggregate row and one outbox row; it answers 201 {"customer_id", "version": 1}.
`POST /categories` does the same with a category's body (a name, an optional parent and attributes).
No validation, command bus, unit of work, correlation id, metrics or problem details. The pool is
ShopStream's: SHOPSTREAM_DB_POOL_SIZE connections (default 10), no reset query on release. The tables
(`bare.customers`, `bare.categories`, `bare.outbox`) are created by `bench.commands` (BARE_SCHEMA) before this app starts;
that module does not import this one, whose `Litestar(...)` would configure logging in the benchmark.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec
from litestar import Litestar, post

_INSERT_CUSTOMER = "INSERT INTO bare.customers (id, state, version) VALUES ($1, $2, 1)"
_INSERT_CATEGORY = "INSERT INTO bare.categories (id, state, version) VALUES ($1, $2, 1)"
_INSERT_EVENT = "INSERT INTO bare.outbox (event_id, aggregate_id, payload) VALUES ($1, $2, $3)"


class Registration(msgspec.Struct, kw_only=True):
    external_id: str
    email: str
    first_name: str
    last_name: str


class CustomerCreated(msgspec.Struct, frozen=True):
    customer_id: str
    version: int


class NewCategory(msgspec.Struct, kw_only=True):
    name: str
    parent_category_id: str | None = None
    attributes: dict[str, str] | None = None


class CategoryCreated(msgspec.Struct, frozen=True):
    category_id: str
    version: int


class _State:
    pool: asyncpg.Pool | None = None


state = _State()


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Like ShopStream's pool: the session is never changed, so release runs no reset query."""


@asynccontextmanager
async def lifespan(_app: Litestar) -> AsyncIterator[None]:
    state.pool = await asyncpg.create_pool(
        os.environ["DATABASE_URL"],
        min_size=1,
        max_size=int(os.environ.get("SHOPSTREAM_DB_POOL_SIZE") or 10),
        command_timeout=30,
        reset=_keep_session,
    )
    try:
        yield
    finally:
        await state.pool.close()


@post("/customers")
async def register(data: Registration) -> CustomerCreated:
    assert state.pool is not None
    customer_id = uuid.uuid4()
    document = msgspec.json.encode(data).decode()
    async with state.pool.acquire() as conn, conn.transaction():
        await conn.execute(_INSERT_CUSTOMER, customer_id, document)
        await conn.execute(_INSERT_EVENT, uuid.uuid4(), customer_id, document)
    return CustomerCreated(customer_id=str(customer_id), version=1)


@post("/categories")
async def create_category(data: NewCategory) -> CategoryCreated:
    assert state.pool is not None
    category_id = uuid.uuid4()
    document = msgspec.json.encode(data).decode()
    async with state.pool.acquire() as conn, conn.transaction():
        await conn.execute(_INSERT_CATEGORY, category_id, document)
        await conn.execute(_INSERT_EVENT, uuid.uuid4(), category_id, document)
    return CategoryCreated(category_id=str(category_id), version=1)


app = Litestar(route_handlers=[register, create_category], lifespan=[lifespan])
