"""The state of a ShopStream installation as its operators see it — outbox backlogs, streams and
consumer groups, dead letters — gathered over every database and stream of this process's contexts.
Shared by the `/ops` routes and `shopstream status`.

Dead letter ids are numbered per database: when contexts live in databases of their own, a listing
walks the databases in a fixed order, and an id that exists in several needs its `context` named.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from bus import deadletters, monitor, outages
from bus.deadletters import DeadLetter
from bus.errors import Conflict, Invalid, NotFound
from bus.monitor import DeadLetterCount, OutboxBacklog, StreamPlan, StreamState
from shopstream.bootstrap import Messaging


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """Everything `shopstream status` shows."""

    outbox: list[OutboxBacklog]
    streams: list[StreamState]
    dead_letters: list[DeadLetterCount]


class ReplayFailed(Conflict):
    """Resolving the dead letter failed again; it stays where it is (409)."""

    kind = "replay-failed"


class _Cursor(msgspec.Struct, frozen=True):
    db: int
    id: int


_cursor_decoder = msgspec.json.Decoder(_Cursor)


def encode_cursor(db: int, last_id: int) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(_Cursor(db, last_id))).decode().rstrip("=")


def decode_cursor(cursor: str) -> _Cursor:
    try:
        after = _cursor_decoder.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, msgspec.DecodeError):
        raise Invalid("cursor", "is not a cursor this service issued") from None
    if after.db < 0 or not 0 <= after.id < 2**63:
        raise Invalid("cursor", "is not a cursor this service issued")
    return after


class Monitor:
    def __init__(self, messaging: Messaging) -> None:
        self.messaging = messaging
        pools: dict[int, asyncpg.Pool] = {}
        for context in messaging.modules:
            pools.setdefault(id(messaging.pool_of(context)), messaging.pool_of(context))
        self.databases: list[asyncpg.Pool] = list(pools.values())  # one per database, in context order
        config = messaging.config
        self.plans = [
            StreamPlan(
                config.stream(context, partition),
                context,
                partition,
                tuple(messaging.groups_reading(context)),
            )
            for context in messaging.modules
            for partition in range(config.partitions)
        ]

    async def outbox(self) -> list[OutboxBacklog]:
        return [
            await monitor.outbox_backlog(self.messaging.pool_of(context), outbox)
            for context, outbox in self.messaging.outboxes.items()
        ]

    async def streams(self) -> list[StreamState]:
        return await monitor.streams_state(self.messaging.redis, self.plans)

    async def dead_letter_counts(self) -> list[DeadLetterCount]:
        return [counted for pool in self.databases for counted in await monitor.dead_letter_counts(pool)]

    async def overview(self) -> Overview:
        return Overview(
            outbox=await self.outbox(),
            streams=await self.streams(),
            dead_letters=await self.dead_letter_counts(),
        )

    async def dead_letters(
        self, consumer: str | None, limit: int, cursor: str | None
    ) -> tuple[list[DeadLetter], str | None]:
        """One page, oldest first, and the cursor of the next page (None on the last)."""
        after = decode_cursor(cursor) if cursor else _Cursor(0, 0)
        items: list[tuple[int, DeadLetter]] = []
        for db in range(after.db, len(self.databases)):
            wanted = limit + 1 - len(items)
            start = after.id if db == after.db else 0
            found = await deadletters.listing(self.databases[db], consumer, wanted, after=start)
            items += [(db, letter) for letter in found]
            if len(items) > limit:
                break
        page, more = items[:limit], len(items) > limit
        return [letter for _, letter in page], encode_cursor(*_position(page[-1])) if more else None

    async def resolve(
        self, dead_letter_id: int, *, apply: bool, context: str | None = None
    ) -> dict[str, Any]:
        """Replay (`apply`) or drop one dead letter, found in the context's database or in the only
        database that holds that id."""
        if not 0 < dead_letter_id < 2**63:
            raise NotFound("dead letter", str(dead_letter_id))
        candidates = self._databases_of(context)
        holding = [pool for pool in candidates if await deadletters.exists(pool, dead_letter_id)]
        if not holding:
            raise NotFound("dead letter", str(dead_letter_id))
        if len(holding) > 1:
            raise Conflict(f"dead letter {dead_letter_id} exists in several databases; name its `context`")
        action = deadletters.replay if apply else deadletters.drop
        try:
            return await action(holding[0], self.messaging.inboxes, dead_letter_id)
        except deadletters.DeadLetterNotFound:  # resolved by someone else in the meantime
            raise NotFound("dead letter", str(dead_letter_id)) from None
        except Exception as exc:  # still failing (the cause is not fixed) or of an unknown consumer
            if outages.unavailable(exc):
                raise  # the database went away: not the dead letter's fault
            raise ReplayFailed(
                f"dead letter {dead_letter_id} is kept: {type(exc).__name__}: {str(exc)[:500]}"
            ) from exc

    def _databases_of(self, context: str | None) -> Sequence[asyncpg.Pool]:
        if context is None:
            return self.databases
        if context not in self.messaging.modules:
            raise Invalid("context", f"must be one of {', '.join(self.messaging.modules)}")
        return [self.messaging.pool_of(context)]


def _position(entry: tuple[int, DeadLetter]) -> tuple[int, int]:
    return entry[0], entry[1].id
