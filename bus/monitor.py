"""What an operator watches: each outbox's backlog, each stream's groups and how far they lag, and the
dead letters per consumer. Read here once for the `/ops` routes, `shopstream status` and the gauges."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from msgspec import Meta
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bus.lag import group_info, lag_of
from bus.outbox import Outbox


class OutboxBacklog(msgspec.Struct, frozen=True, kw_only=True):
    """One context's outbox: what waits for the relay, and how far it has published."""

    context: Annotated[str, Meta(examples=["identity"])]
    pending: Annotated[int, Meta(examples=[3], description="rows not yet published")]
    oldest_pending_age_seconds: Annotated[
        float, Meta(examples=[0.4], description="age of the oldest unpublished row; 0 when none waits")
    ]
    last_position: Annotated[
        int, Meta(examples=[1042], description="position of the newest event in the log; 0 when empty")
    ]
    last_published_at: Annotated[
        datetime | None, Meta(examples=["2026-01-05T10:00:01.250000Z"], description="null until one is")
    ]


class GroupState(msgspec.Struct, frozen=True, kw_only=True):
    """One consumer group of a stream."""

    group: Annotated[str, Meta(examples=["identity.customer_cards"])]
    consumers: Annotated[int, Meta(examples=[1])]
    pending: Annotated[int, Meta(examples=[0], description="delivered, not yet acknowledged")]
    lag: Annotated[int, Meta(examples=[0], description="entries not yet delivered to the group")]
    oldest_pending_idle_seconds: Annotated[
        float, Meta(examples=[0.0], description="since the oldest pending entry was delivered; 0 if none")
    ]
    exists: Annotated[bool, Meta(description="false until its consumer first starts")] = True


class StreamState(msgspec.Struct, frozen=True, kw_only=True):
    """One partition stream and every group reading it."""

    stream: Annotated[str, Meta(examples=["shopstream.identity.0"])]
    context: Annotated[str, Meta(examples=["identity"])]
    partition: Annotated[int, Meta(examples=[0])]
    length: Annotated[int, Meta(examples=[250], description="entries in the stream (XLEN)")]
    groups: list[GroupState]


class DeadLetterCount(msgspec.Struct, frozen=True, kw_only=True):
    """The dead letters one consumer holds."""

    consumer: Annotated[str, Meta(examples=["identity.customer_cards"])]
    context: Annotated[str, Meta(examples=["identity"])]
    count: Annotated[int, Meta(examples=[1])]
    oldest_failed_at: Annotated[datetime, Meta(examples=["2026-01-05T09:58:12.004000Z"])]


class StreamPlan(msgspec.Struct, frozen=True):
    """A stream to report on, with the groups that should read it."""

    stream: str
    context: str
    partition: int
    groups: tuple[str, ...]


async def outbox_backlog(conn: asyncpg.Connection | asyncpg.Pool, outbox: Outbox) -> OutboxBacklog:
    """Each figure comes from an index: the unpublished rows (a partial index), the newest position
    (the key) and the newest publication time."""
    t = outbox.table
    row = await conn.fetchrow(
        f"SELECT (SELECT count(*) FROM {t} WHERE published_at IS NULL) AS pending,"
        f" (SELECT extract(epoch FROM now() - min(occurred_at)) FROM {t} WHERE published_at IS NULL) AS age,"
        f" (SELECT max(position) FROM {t}) AS last_position,"
        f" (SELECT max(published_at) FROM {t}) AS last_published_at"
    )
    assert row is not None
    return OutboxBacklog(
        context=outbox.context,
        pending=row["pending"],
        oldest_pending_age_seconds=max(0.0, float(row["age"] or 0)),
        last_position=row["last_position"] or 0,
        last_published_at=row["last_published_at"],
    )


_DEAD_LETTERS = """
SELECT consumer, context, count(*) AS count, min(first_failed_at) AS oldest_failed_at
FROM bus.dead_letters GROUP BY consumer, context ORDER BY consumer
"""


async def dead_letter_counts(conn: asyncpg.Connection | asyncpg.Pool) -> list[DeadLetterCount]:
    return [DeadLetterCount(**dict(r)) for r in await conn.fetch(_DEAD_LETTERS)]


async def measure_group(redis: Redis, stream: str, group: str) -> GroupState:
    return await group_state(redis, stream, group, await group_info(redis, stream, group))


async def group_state(redis: Redis, stream: str, group: str, info: Mapping[str, Any] | None) -> GroupState:
    """The group's consumers, pending entries, lag and oldest pending idle time from its XINFO GROUPS
    entry. A group its consumer has not created yet (no entry) counts every entry of the stream as lag."""
    if info is None:
        waiting = await redis.xlen(stream)
        return GroupState(
            group=group, consumers=0, pending=0, lag=waiting, oldest_pending_idle_seconds=0.0, exists=False
        )
    idle_ms = 0
    if info["pending"]:
        oldest: Any = await redis.xpending_range(stream, group, min="-", max="+", count=1)
        idle_ms = oldest[0]["time_since_delivered"] if oldest else 0
    return GroupState(
        group=group,
        consumers=int(info["consumers"]),
        pending=int(info["pending"]),
        lag=await lag_of(redis, stream, info),
        oldest_pending_idle_seconds=idle_ms / 1000,
    )


async def stream_state(redis: Redis, plan: StreamPlan) -> StreamState:
    """The stream's length and its groups: the planned ones, and any other that reads it."""
    length, groups = await asyncio.gather(redis.xlen(plan.stream), _groups_of(redis, plan.stream))
    names = list(plan.groups) + sorted(set(groups) - set(plan.groups))
    states = await asyncio.gather(*(group_state(redis, plan.stream, n, groups.get(n)) for n in names))
    return StreamState(
        stream=plan.stream, context=plan.context, partition=plan.partition, length=length, groups=list(states)
    )


async def _groups_of(redis: Redis, stream: str) -> dict[str, Any]:
    try:
        found: Any = await redis.xinfo_groups(stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return {}
        raise
    return {_text(g["name"]): g for g in found}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def streams_state(redis: Redis, plans: Sequence[StreamPlan]) -> list[StreamState]:
    return list(await asyncio.gather(*(stream_state(redis, p) for p in plans)))
