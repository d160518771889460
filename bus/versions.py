"""Projection versions: the version whose code built each live read model, and a rebuild on start when
the running code declares another.

A projection declares `version` (1 unless it says otherwise); `bus.projection_versions` holds the
version of its live tables (no row: 1, what every projection was before it declared one). When a
`serve` or `worker` process starts with a different one, `VersionKeeper` rebuilds that projection in the
background, blue/green (`bus.rebuild`), while the old tables keep answering; the other processes wait
for it, or carry on a rebuild whose process died.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime

import anyio
import asyncpg
import msgspec

from bus.inbox import Inbox
from bus.rebuild import Rebuild, RebuildBusy, version_of

log = logging.getLogger("shopstream.versions")

_STORED = "SELECT version FROM bus.projection_versions WHERE projection = $1"
_FIRST = "INSERT INTO bus.projection_versions (projection, version) VALUES ($1, 1) ON CONFLICT DO NOTHING"
_APPLIED = "SELECT coalesce(sum(version), 0)::bigint FROM bus.consumer_positions WHERE consumer = $1"
_REBUILD = "SELECT version, done, total, started_at, updated_at FROM bus.rebuilds WHERE projection = $1"


async def stored_version(conn: asyncpg.Connection | asyncpg.Pool, projection: str) -> int:
    return int(await conn.fetchval(_STORED, projection) or 1)


class VersionKeeper:
    """A supervisor task: rebuilds, one after the other, the projections whose live version is not the
    code's, then idles until the process stops."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        inboxes: Sequence[Inbox],
        retry_every: float = 5.0,
        lock_dsn: str | None = None,  # the database's direct URL, for the rebuild lock (`bus.rebuild`)
    ) -> None:
        self.pool = pool
        self.inboxes = inboxes
        self.retry_every = retry_every
        self.lock_dsn = lock_dsn

    async def run(self, stopping: asyncio.Event) -> None:
        for inbox in self.inboxes:
            await self._keep(inbox, stopping)
        await stopping.wait()

    async def _keep(self, inbox: Inbox, stopping: asyncio.Event) -> None:
        wanted = version_of(inbox.projection)
        await self.pool.execute(_FIRST, inbox.name)
        rebuild = Rebuild(self.pool, inbox, version=wanted, stopping=stopping, lock_dsn=self.lock_dsn)
        await rebuild.discard()  # one left unfinished for another version of the code
        while not stopping.is_set() and await stored_version(self.pool, inbox.name) != wanted:
            try:
                await rebuild.run()
            except RebuildBusy:
                with anyio.move_on_after(self.retry_every):  # until it is done there, or its process died
                    await stopping.wait()


class RebuildStatus(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    done: int
    total: int
    started_at: datetime
    updated_at: datetime


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    context: str
    version: int  # the running code's
    live_version: int  # the live tables'
    applied: int  # events the live tables reflect
    lag: int  # events of the context's log not applied yet (or held back by a dead letter)
    rebuild: RebuildStatus | None


async def status(pool: asyncpg.Pool, inbox: Inbox) -> ProjectionStatus:
    async with pool.acquire() as conn:
        logged = await conn.fetchval(f"SELECT count(*) FROM {inbox.outbox.table}")
        applied = await conn.fetchval(_APPLIED, inbox.name)
        rebuild = await conn.fetchrow(_REBUILD, inbox.name)
        return ProjectionStatus(
            name=inbox.name,
            context=inbox.outbox.context,
            version=version_of(inbox.projection),
            live_version=await stored_version(conn, inbox.name),
            applied=applied,
            lag=max(0, logged - applied),
            rebuild=None if rebuild is None else RebuildStatus(**dict(rebuild)),
        )
