"""Blue/green projection rebuilds: replay the event log into shadow tables, then swap them in at once.

While a rebuild fills the shadow tables (`bus.shadow`) batch by batch, the live tables keep serving
reads and the live consumer keeps applying new events. Each batch commits with the rebuild's place in
the event log (`bus.rebuilds`), so a rebuild that is killed resumes from there. Only one process
rebuilds a projection at a time (a session advisory lock). Given `lock_dsn` (the database's direct URL),
the lock lives on a connection of its own to it while the batches run on a pooled connection, one
transaction each: behind a pooler in transaction mode only a direct connection keeps the lock and its
release on one server session. Without it, the lock lives on the pooled connection the rebuild works on.

Once the shadow reaches the head of the log, one transaction swaps: it locks `bus.consumer_positions`
against writers — every consumer transaction writes it before it touches a projection's tables, so a
live batch either committed before or waits until after — checks that the shadow holds every version
the live consumer applied (else it heals those aggregates from the log, commits, and tries again: an
event committed out of position order, a dead letter replayed meanwhile), moves the shadow's tracked
versions onto the live consumer's name, then drops the live tables and moves the shadows into their
place. Readers wait for that last step only (its lock is bounded by `lock_timeout`; the swap retries if
it runs out), and see the old model or the new one, never an empty or partial one. Events the shadow
has not replayed yet and the live consumer has not applied either reach it after the swap, as usual.

Events of an aggregate the live consumer holds a dead letter for are not replayed from that version
on: the dead letter and the events parked behind it stay as they are, and apply to the new tables
when an operator replays them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio
import asyncpg

from bus import shadow
from bus.inbox import Inbox
from bus.messages import Envelope
from observability import metrics

log = logging.getLogger("shopstream.rebuild")

_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('shopstream.rebuild:' || $1, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('shopstream.rebuild:' || $1, 0))"
_STATE = "SELECT version, position, done FROM bus.rebuilds WHERE projection = $1"
_START = """
INSERT INTO bus.rebuilds (projection, version, total) VALUES ($1, $2, $3)
ON CONFLICT (projection) DO UPDATE SET version = $2, position = 0, done = 0, total = $3,
    started_at = now(), updated_at = now()
"""
_ADVANCE = (
    "UPDATE bus.rebuilds SET position = $2, done = $3, total = $4, updated_at = now() WHERE projection = $1"
)
_FORGET_TRACKING = "DELETE FROM bus.consumer_positions WHERE consumer = $1"
_HELD = (
    "SELECT aggregate_id, min(aggregate_version) AS version FROM bus.dead_letters"
    " WHERE consumer = $1 GROUP BY aggregate_id"
)
# Aggregates the live consumer has applied further than the shadow: (aggregate, shadow's, live's).
_BEHIND = """
SELECT l.aggregate_id, coalesce(s.version, 0) AS shadow, l.version AS live
FROM bus.consumer_positions l
LEFT JOIN bus.consumer_positions s ON s.consumer = $2 AND s.aggregate_id = l.aggregate_id
WHERE l.consumer = $1 AND l.version > coalesce(s.version, 0)
"""
_HANDOVER = "UPDATE bus.consumer_positions SET consumer = $1 WHERE consumer = $2"
_BUILT = """
INSERT INTO bus.projection_versions (projection, version) VALUES ($1, $2)
ON CONFLICT (projection) DO UPDATE SET version = $2, built_at = now()
"""
_DONE = "DELETE FROM bus.rebuilds WHERE projection = $1"


class RebuildBusy(Exception):
    """Another process is rebuilding this projection."""


@dataclass
class Progress:
    projection: str
    version: int
    done: int  # events of the log replayed, over every run of this rebuild
    total: int  # events in the log, as last counted
    rate: float = 0.0  # events/s in this run
    swapped: bool = False

    @property
    def remaining_seconds(self) -> float | None:
        return max(0, self.total - self.done) / self.rate if self.rate > 0 else None


class Rebuild:
    """One rebuild of one projection; `run()` returns once the shadow took over or `stopping` is set."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        inbox: Inbox,
        version: int | None = None,
        batch: int = 1000,
        on_progress: Callable[[Progress], None] | None = None,
        stopping: asyncio.Event | None = None,
        lock_timeout: float = 0.5,
        max_heals: int = 5,
        lock_dsn: str | None = None,
    ) -> None:
        self.pool = pool
        self.lock_dsn = lock_dsn
        self._lock_holder: asyncpg.Connection | None = None
        self.live = inbox
        self.name = inbox.name
        self.tables = tuple(inbox.projection.tables)
        self.shadow = Inbox(shadow.ShadowProjection(inbox.projection), inbox.outbox, inbox.registry)
        self.version = version if version is not None else version_of(inbox.projection)
        self.batch = batch
        self.on_progress = on_progress
        self.stopping = stopping or asyncio.Event()
        self.lock_timeout = lock_timeout
        self.max_heals = max_heals
        self._heals = 0
        self.progress = Progress(self.name, self.version, 0, 0)
        self._position = 0
        self._started = time.monotonic()
        self._done_at_start = 0
        self._gauges = metrics.rebuild_gauges(self.name)
        self._replayed = metrics.rebuild_events.labels(self.name)

    async def run(self) -> Progress:
        async with self._exclusive() as conn:
            if conn is None:
                raise RebuildBusy(f"a rebuild of {self.name} is running in another process")
            try:
                self._gauges.started()
                await self._start_or_resume(conn)
                while not self.stopping.is_set():
                    self._check_lock()
                    if await self._step(conn) < self.batch and await self._swap(conn):
                        break
            finally:
                self._gauges.stopped()
        return self.progress

    async def discard(self) -> bool:
        """Drop a rebuild left unfinished for another version than this one (its shadow tables,
        tracking and progress); False when there is none, or another process is rebuilding."""
        async with self._exclusive() as conn:
            if conn is None:
                return False
            state = await conn.fetchrow(_STATE, self.name)
            if state is None or state["version"] == self.version:
                return False
            async with conn.transaction():
                await shadow.drop(conn, self.tables)
                await conn.execute(_FORGET_TRACKING, self.shadow.name)
                await conn.execute(_DONE, self.name)
            log.info("%s: dropped the unfinished rebuild of v%d", self.name, state["version"])
            return True

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[asyncpg.Connection | None]:
        """A pooled connection to rebuild on while this process holds the projection's rebuild lock
        (on a direct connection of its own with `lock_dsn`); None when another process holds it."""
        async with AsyncExitStack() as stack:
            conn = await stack.enter_async_context(self.pool.acquire())
            holder = conn
            if self.lock_dsn is not None:
                holder = await asyncpg.connect(self.lock_dsn, statement_cache_size=0)
                stack.push_async_callback(holder.close)  # closing it releases the lock in any case
            if not await holder.fetchval(_TRY_LOCK, self.name):
                yield None
                return
            self._lock_holder = holder
            try:
                yield conn
            finally:
                self._lock_holder = None
                with anyio.CancelScope(shield=True):  # the lock is the session's: never leave it held
                    if not holder.is_closed():
                        await holder.fetchval(_UNLOCK, self.name)

    def _check_lock(self) -> None:
        """A lock on a connection of its own is gone with that connection: stop rather than go on
        beside another rebuilder (a later run resumes)."""
        if self._lock_holder is not None and self._lock_holder.is_closed():
            raise ConnectionError(f"{self.name}: the connection holding the rebuild lock closed")

    async def _start_or_resume(self, conn: asyncpg.Connection) -> None:
        state = await conn.fetchrow(_STATE, self.name)
        if state is not None and state["version"] == self.version and await shadow.exist(conn, self.tables):
            self._position, done = state["position"], state["done"]
            log.info("%s: resuming the rebuild of v%d after %d event(s)", self.name, self.version, done)
        else:
            async with conn.transaction():
                await shadow.create(conn, self.tables)
                await conn.execute(_FORGET_TRACKING, self.shadow.name)
                await conn.execute(_START, self.name, self.version, 0)
            self._position, done = 0, 0
            log.info("%s: rebuilding v%d into shadow tables", self.name, self.version)
        after = await conn.fetchval(
            f"SELECT count(*) FROM {self.live.outbox.table} WHERE position > $1", self._position
        )
        self.progress = Progress(self.name, self.version, done, done + after)
        self._done_at_start, self._started, self._heals = done, time.monotonic(), 0
        self._report()

    async def _step(self, conn: asyncpg.Connection) -> int:
        """Replay the next batch into the shadow; return how many events the log gave."""
        async with conn.transaction():
            count = await self._replay(conn, self.batch)
        self._report()
        return count

    async def _replay(self, conn: asyncpg.Connection, limit: int) -> int:
        rows = await conn.fetch(self.live.outbox.select_all, self._position, limit)
        if not rows:
            return 0
        held = {r["aggregate_id"]: r["version"] for r in await conn.fetch(_HELD, self.name)}
        await self.shadow.apply_batch(conn, _not_held([self.live.outbox.envelope(r) for r in rows], held))
        self._position = rows[-1]["position"]
        progress = self.progress
        progress.done += len(rows)
        progress.total = max(progress.total, progress.done)
        await conn.execute(_ADVANCE, self.name, self._position, progress.done, progress.total)
        self._replayed.inc(len(rows))
        return len(rows)

    async def _swap(self, conn: asyncpg.Connection) -> bool:
        """The shadow takes over in one transaction. False when it first had to heal aggregates the
        live consumer applied further (committed on their own, so that a reader whose snapshot predates
        the swap finds them in the new tables too; after `max_heals` such rounds it heals and swaps at
        once), or when the live tables' locks were not granted in time."""
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE bus.consumer_positions IN SHARE ROW EXCLUSIVE MODE")
                healed = await self._heal(conn)
                self._heals += bool(healed)
                if healed and self._heals <= self.max_heals:
                    return False
                await conn.execute(_FORGET_TRACKING, self.name)
                await conn.execute(_HANDOVER, self.name, self.shadow.name)
                # Readers of the live tables wait from here to the commit; bounded below the deadlock
                # timeout, so a reader that holds one table and waits for another is never the victim.
                await conn.execute(f"SET LOCAL lock_timeout = {int(self.lock_timeout * 1000)}")
                await conn.execute(f"LOCK TABLE {', '.join(self.tables)} IN ACCESS EXCLUSIVE MODE")
                await shadow.take_over(conn, self.tables)
                await conn.execute(_BUILT, self.name, self.version)
                await conn.execute(_DONE, self.name)
        except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError):
            log.info("%s: the live tables are busy; trying the swap again", self.name)
            await asyncio.sleep(self.lock_timeout)
            return False
        self.progress.swapped = True
        self._report()
        log.info("%s: v%d took over after %d event(s)", self.name, self.version, self.progress.done)
        return True

    async def _heal(self, conn: asyncpg.Connection) -> int:
        """Apply from the log, to the shadow, what the live consumer applied further; return how many
        aggregates that took."""
        behind = await conn.fetch(_BEHIND, self.name, self.shadow.name)
        for row in behind:
            await self.shadow.catch_up(conn, row["aggregate_id"], row["shadow"], row["live"] + 1)
        return len(behind)

    def _report(self) -> None:
        progress = self.progress
        elapsed = time.monotonic() - self._started
        if elapsed > 0:
            progress.rate = (progress.done - self._done_at_start) / elapsed
        self._gauges.report(progress.done, progress.total, progress.rate, progress.remaining_seconds)
        if self.on_progress is not None:
            self.on_progress(progress)


def _not_held(envelopes: Sequence[Envelope], held: dict[str, int]) -> list[Envelope]:
    if not held:
        return list(envelopes)
    return [e for e in envelopes if e.aggregate_version < held.get(e.aggregate_id, e.aggregate_version + 1)]


def version_of(projection: object) -> int:
    """The version a projection's code declares (1 unless it says otherwise)."""
    return int(getattr(projection, "version", 1))


async def rebuild(pool: asyncpg.Pool, inbox: Inbox, batch: int = 1000) -> int:
    """Rebuild one projection to its code's version; return how many events of the log it replayed."""
    return (await Rebuild(pool, inbox, batch=batch).run()).done
