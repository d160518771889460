"""Dead letters: stored before their entry is acknowledged; listed, replayed or dropped by operators.

Replaying applies the event through its consumer's inbox and then releases the aggregate's parked
events in order, all in one transaction. Dropping counts the event as handled without projecting
it, then releases the parked events the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from msgspec import Meta

from bus.inbox import Inbox
from bus.messages import Envelope, encoder, envelope_decoder

_STORE = """
INSERT INTO bus.dead_letters (consumer, context, event_id, event_type, aggregate_id, aggregate_version,
                              envelope, error, attempts, first_failed_at, last_failed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
ON CONFLICT (consumer, event_id) DO UPDATE
    SET error = EXCLUDED.error, attempts = bus.dead_letters.attempts + EXCLUDED.attempts,
        last_failed_at = now()
"""
_LIST = """
SELECT id, consumer, context, event_id, event_type, aggregate_id, aggregate_version, error, attempts,
       first_failed_at, last_failed_at
FROM bus.dead_letters WHERE ($1::text IS NULL OR consumer = $1) AND id > $3 ORDER BY id LIMIT $2
"""
_EXISTS = "SELECT EXISTS (SELECT 1 FROM bus.dead_letters WHERE id = $1)"
_LOCK = "SELECT consumer, aggregate_id, envelope::text FROM bus.dead_letters WHERE id = $1 FOR UPDATE"
_DELETE = "DELETE FROM bus.dead_letters WHERE id = $1"
_BLOCKED = "SELECT DISTINCT aggregate_id FROM bus.dead_letters WHERE consumer = $1"


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An event its consumer gave up on; its aggregate's later events wait behind it."""

    id: Annotated[int, Meta(examples=[7])]
    consumer: Annotated[str, Meta(examples=["identity.customer_cards"])]
    context: Annotated[str, Meta(examples=["identity"])]
    event_id: Annotated[str, Meta(examples=["0f3c2a9e-5b1d-4c8e-9a7f-2d6e4b1c3a5f"])]
    event_type: Annotated[str, Meta(examples=["identity.AddressAdded"])]
    aggregate_id: Annotated[str, Meta(examples=["4f8e2a10-5c3b-4d6e-9f7a-1b2c3d4e5f60"])]
    aggregate_version: Annotated[int, Meta(examples=[3])]
    error: Annotated[str, Meta(examples=["UniqueViolationError: duplicate key value"])]
    attempts: Annotated[int, Meta(examples=[8])]
    first_failed_at: datetime
    last_failed_at: datetime


class DeadLetterNotFound(LookupError):
    pass


async def store(
    conn: asyncpg.Connection, consumer: str, envelope: Envelope, error: str, attempts: int, first: datetime
) -> None:
    await conn.execute(
        _STORE, consumer, envelope.context, envelope.event_id, envelope.type, envelope.aggregate_id,
        envelope.aggregate_version, encoder.encode(envelope).decode(), error[:4000], attempts, first,
    )  # fmt: skip


async def listing(
    pool: asyncpg.Pool, consumer: str | None = None, limit: int = 100, after: int = 0
) -> list[DeadLetter]:
    """Oldest first; `after` an id, the next page (keyset pagination)."""
    rows = await pool.fetch(_LIST, consumer, limit, after)
    return [DeadLetter(**{**dict(r), "event_id": str(r["event_id"])}) for r in rows]


async def exists(pool: asyncpg.Pool, dead_letter_id: int) -> bool:
    return bool(await pool.fetchval(_EXISTS, dead_letter_id))


async def blocked_aggregates(pool: asyncpg.Pool, consumer: str) -> set[str]:
    return {r["aggregate_id"] for r in await pool.fetch(_BLOCKED, consumer)}


async def replay(pool: asyncpg.Pool, inboxes: dict[str, Inbox], dead_letter_id: int) -> dict[str, Any]:
    """Apply the dead letter through its consumer, then its aggregate's parked events."""
    return await _resolve(pool, inboxes, dead_letter_id, apply=True)


async def drop(pool: asyncpg.Pool, inboxes: dict[str, Inbox], dead_letter_id: int) -> dict[str, Any]:
    """Forget the event for this consumer, then apply its aggregate's parked events."""
    return await _resolve(pool, inboxes, dead_letter_id, apply=False)


async def _resolve(
    pool: asyncpg.Pool, inboxes: dict[str, Inbox], dead_letter_id: int, apply: bool
) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(_LOCK, dead_letter_id)
        if row is None:
            raise DeadLetterNotFound(dead_letter_id)
        inbox = inboxes[row["consumer"]]
        envelope = envelope_decoder.decode(row["envelope"])
        await conn.execute(_DELETE, dead_letter_id)
        if apply:
            await inbox.apply(conn, envelope)
        else:
            await inbox.skip(conn, envelope)
        released = await inbox.release_parked(conn, row["aggregate_id"])
    return {
        "id": dead_letter_id,
        "consumer": row["consumer"],
        "aggregate_id": row["aggregate_id"],
        "resolved_at": datetime.now(UTC).isoformat(),
        "released": released,
        "action": "replayed" if apply else "dropped",
    }
