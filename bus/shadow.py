"""Shadow tables: a projection writing into a copy of its tables, while the live ones keep serving.

Each table `<schema>.<name>` of a projection has its shadow `<schema>_rebuild.<name>`, created `LIKE`
the live one `INCLUDING ALL` (columns, defaults, constraints, indexes, with the same names in the
shadow's own schema). The projection's code stays as it is: `ShadowProjection` hands it a connection
that rewrites the live table names in each statement into the shadow ones (once per distinct statement),
and it tracks its versions under a consumer name of its own. The live path never goes through it.

At the swap the live tables are dropped and the shadows move into the live schema (`SET SCHEMA`), so
tables, indexes and constraints keep their original names through any number of rebuilds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

import asyncpg

from bus.inbox import Projection
from bus.messages import Envelope

SUFFIX = "_rebuild"


def shadow_of(table: str) -> str:
    schema, name = table.split(".")
    return f"{schema}{SUFFIX}.{name}"


def tracking_name(projection: str) -> str:
    """The consumer name a rebuild tracks its versions under, until the swap makes them the live ones."""
    return f"{projection}{SUFFIX}"


class _Rewriter:
    def __init__(self, tables: Sequence[str]) -> None:
        names = "|".join(re.escape(t) for t in sorted(tables, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<![\w.\"])({names})(?![\w\"])")
        self._done: dict[str, str] = {}

    def __call__(self, query: str) -> str:
        rewritten = self._done.get(query)
        if rewritten is None:
            rewritten = self._done[query] = self._pattern.sub(lambda m: shadow_of(m.group(1)), query)
        return rewritten


class _ShadowConnection:
    """Stands in for the connection while a projection writes: the same calls, on the shadow tables."""

    def __init__(self, conn: asyncpg.Connection, rewrite: _Rewriter) -> None:
        self._conn = conn
        self._rewrite = rewrite

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        return await self._conn.execute(self._rewrite(query), *args, **kwargs)

    async def executemany(self, query: str, args: Any, **kwargs: Any) -> None:
        await self._conn.executemany(self._rewrite(query), args, **kwargs)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        return await self._conn.fetch(self._rewrite(query), *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> asyncpg.Record | None:
        return await self._conn.fetchrow(self._rewrite(query), *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._conn.fetchval(self._rewrite(query), *args, **kwargs)


class ShadowProjection:
    """The projection, writing into its shadow tables and tracked under `tracking_name(name)`."""

    def __init__(self, live: Projection) -> None:
        self.live = live
        self.name = tracking_name(live.name)
        self.tables = tuple(shadow_of(t) for t in live.tables)
        self._rewrite = _Rewriter(live.tables)
        self.reads_sealed = bool(getattr(live, "reads_sealed", False))
        if hasattr(live, "apply_batch"):
            self.apply_batch = self._apply_batch

    def connection(self, conn: asyncpg.Connection) -> asyncpg.Connection:
        return cast(asyncpg.Connection, _ShadowConnection(conn, self._rewrite))

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        await self.live.apply(self.connection(conn), envelope, event)

    async def _apply_batch(self, conn: asyncpg.Connection, items: Sequence[tuple[Envelope, Any]]) -> None:
        await self.live.apply_batch(self.connection(conn), items)  # type: ignore[attr-defined]


async def create(conn: asyncpg.Connection, tables: Sequence[str]) -> None:
    """Fresh, empty shadows of `tables` (any left from an abandoned rebuild are dropped first)."""
    for table in tables:
        shadow = shadow_of(table)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {shadow.split('.')[0]}")
        await conn.execute(f"DROP TABLE IF EXISTS {shadow}")
        await conn.execute(f"CREATE TABLE {shadow} (LIKE {table} INCLUDING ALL)")


async def exist(conn: asyncpg.Connection, tables: Sequence[str]) -> bool:
    found = await conn.fetchval(
        "SELECT count(*) FROM unnest($1::text[]) AS t(name) WHERE to_regclass(t.name) IS NOT NULL",
        [shadow_of(t) for t in tables],
    )
    return bool(found == len(tables))


async def take_over(conn: asyncpg.Connection, tables: Sequence[str]) -> None:
    """Inside the swap's transaction, holding the live tables' locks: the shadows become the live tables."""
    for table in tables:
        await conn.execute(f"DROP TABLE {table}")
        await conn.execute(f"ALTER TABLE {shadow_of(table)} SET SCHEMA {table.split('.')[0]}")


async def drop(conn: asyncpg.Connection, tables: Sequence[str]) -> None:
    for table in tables:
        await conn.execute(f"DROP TABLE IF EXISTS {shadow_of(table)}")
