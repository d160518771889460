"""Idempotency records: a command's outcome kept under its `Idempotency-Key` with the fingerprint of
the request, written in the command's own commit, recalled before a retry would run it again, and
purged once older than `KEPT_HOURS`."""

from __future__ import annotations

import asyncpg
import msgspec

from bus.errors import IdempotencyKeyReused
from bus.messages import Outcome

KEPT_HOURS = 48  # the contract promises at least 24 h

_TABLE = "idempotency_keys"
_REMEMBER = "INSERT INTO bus.idempotency_keys (key, fingerprint, outcome) VALUES ($1, $2, $3)"
_RECALL = "SELECT fingerprint, outcome::text FROM bus.idempotency_keys WHERE key = $1"
_PURGE = "DELETE FROM bus.idempotency_keys WHERE created_at < now() - make_interval(hours => $1)"
_outcome_decoder = msgspec.json.Decoder(Outcome)


async def remember(conn: asyncpg.Connection, key: str, fingerprint: str | None, outcome: str) -> None:
    """Keep `outcome` (JSON text) under `key`; a key already kept raises the unique violation."""
    await conn.execute(_REMEMBER, key, fingerprint, outcome)


def remember_if(name: str, written: str, first: int) -> str:
    """A CTE `name` that keeps the record of parameters $first (key), $first+1 (fingerprint) and
    $first+2 (outcome) only if the CTE `written` returned a row."""
    return (
        f"{name} AS (INSERT INTO bus.idempotency_keys (key, fingerprint, outcome)"
        f" SELECT ${first}::text, ${first + 1}::text, ${first + 2}::jsonb WHERE EXISTS (SELECT FROM {written}))"
    )


def key_taken(exc: asyncpg.UniqueViolationError) -> bool:
    """The violation is a second record under one key: a request with that key ran meanwhile."""
    return exc.table_name == _TABLE


async def recall(
    pool_or_conn: asyncpg.Pool | asyncpg.Connection, key: str, fingerprint: str
) -> Outcome | None:
    """The outcome kept under `key`, None if there is none yet; a key kept for another request (another
    fingerprint) is refused (422)."""
    row = await pool_or_conn.fetchrow(_RECALL, key)
    if row is None:
        return None
    if row["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request")
    return _outcome_decoder.decode(row["outcome"])


async def purge(conn: asyncpg.Connection, kept_hours: int = KEPT_HOURS) -> None:
    """Forget the records older than `kept_hours`."""
    await conn.execute(_PURGE, kept_hours)
