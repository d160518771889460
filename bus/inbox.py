"""Effectively-once, in-order application of events to one projection.

Every apply runs inside the caller's transaction and moves the projection's tracked version of the
aggregate with a guarded statement, in the same transaction as the projection's own writes: a
duplicate finds the version already there, a concurrent applier finds the row locked and then moved,
and a version jump (Redis lost or reordered entries) is healed by reading the missing events from
the context's event log. An aggregate with a dead letter keeps its later events parked, in order.

A batch is applied wave by wave, a wave holding at most one event per aggregate (the first of each
aggregate in the batch, then the second, ...): one statement moves every tracked version the wave can
move, the projection writes the moved events (all at once when it offers `apply_batch`), and each event
the statement could not move (a duplicate, a gap, a parked aggregate) takes the per-event path. The
projections of one consumer group share that statement (`apply_together`).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any, Protocol

import asyncpg
import msgspec

from bus.errors import ConcurrencyError
from bus.messages import Envelope, Registry, encoder, envelope_decoder
from bus.outbox import Outbox
from observability import metrics


class Projection(Protocol):
    """A read model kept by a consumer: its name is the consumer group's. It may declare `version`
    (default 1), the version of what its tables hold; a change makes the next start rebuild it, and
    `source`, the context whose events it reads (default: the context it belongs to).

    It may also offer `apply_batch(conn, items)`, writing many `(envelope, event)` items at once, at
    most one per aggregate and in no particular order (see `bus.batch.BatchedWrites`), and declare
    `reads_sealed = True` when it needs the fields a context seals in its events (`bus.sealing`); any
    other projection sees them as erased, without a key."""

    @property
    def name(self) -> str: ...

    @property
    def tables(self) -> Sequence[str]: ...

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None: ...


_INSERT_FIRST = (
    "INSERT INTO bus.consumer_positions (consumer, aggregate_id, version) VALUES ($1, $2, $3)"
    " ON CONFLICT DO NOTHING RETURNING 1"
)
_MOVE = (
    "UPDATE bus.consumer_positions SET version = $3"
    " WHERE consumer = $1 AND aggregate_id = $2 AND version = $4 RETURNING 1"
)
# Moves, for each (projection, aggregate) of a wave, the tracked version that is the one before its
# event's; returns those moved. One statement serves every projection of a consumer group.
_MOVE_WAVE = """
WITH wave AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS w(consumer, aggregate_id, version)
), moved AS (
    UPDATE bus.consumer_positions p SET version = w.version FROM wave w
    WHERE p.consumer = w.consumer AND p.aggregate_id = w.aggregate_id AND p.version = w.version - 1
    RETURNING p.consumer, p.aggregate_id
), first AS (
    INSERT INTO bus.consumer_positions (consumer, aggregate_id, version)
    SELECT consumer, aggregate_id, version FROM wave WHERE version = 1
    ON CONFLICT DO NOTHING RETURNING consumer, aggregate_id
)
SELECT consumer, aggregate_id FROM moved UNION ALL SELECT consumer, aggregate_id FROM first
"""
_CURRENT = "SELECT version FROM bus.consumer_positions WHERE consumer = $1 AND aggregate_id = $2"
_DEAD_LETTERED = "SELECT 1 FROM bus.dead_letters WHERE consumer = $1 AND aggregate_id = $2 LIMIT 1 FOR SHARE"
_PARK = (
    "INSERT INTO bus.parked (consumer, aggregate_id, aggregate_version, envelope) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT DO NOTHING"
)
_PARKED = (
    "SELECT envelope::text FROM bus.parked"
    " WHERE consumer = $1 AND aggregate_id = $2 ORDER BY aggregate_version"
)
_UNPARK = "DELETE FROM bus.parked WHERE consumer = $1 AND aggregate_id = $2"

APPLIED, DUPLICATE, HEALED, PARKED = "ok", "duplicate", "healed", "parked"
Decoded = dict[bool, dict[int, Any]]  # sealed fields opened or not -> id(envelope) -> its event


class Inbox:
    def __init__(self, projection: Projection, outbox: Outbox, registry: Registry) -> None:
        self.projection = projection
        self.name = projection.name
        self.outbox = outbox
        self.registry = registry
        self._healed = metrics.gaps_healed.labels(self.name)
        self._apply_batch = getattr(projection, "apply_batch", None)
        self._sealing = outbox.sealing
        self.reads_sealed = bool(getattr(projection, "reads_sealed", False))

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope) -> str:
        """Apply one event (inside the caller's transaction); return what happened to it."""
        version = envelope.aggregate_version
        if await self._move(conn, envelope.aggregate_id, version - 1, version):
            await self._project(conn, envelope)
            return APPLIED
        return await self._settle(conn, envelope)

    async def apply_batch(
        self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], blocked: Container[str] = ()
    ) -> list[str]:
        """Apply a batch (inside the caller's transaction) as `apply` would one by one; return what
        happened to each. Aggregates in `blocked` go the way of `apply_unless_blocked`."""
        (outcomes,) = await apply_together(conn, [(self, envelopes, blocked)])
        return outcomes

    async def _settle(self, conn: asyncpg.Connection, envelope: Envelope) -> str:
        """An event whose version could not be moved to: a duplicate, parked, or healed and applied."""
        version = envelope.aggregate_version
        current = await conn.fetchval(_CURRENT, self.name, envelope.aggregate_id) or 0
        if current >= version:
            return DUPLICATE
        if await conn.fetchval(_DEAD_LETTERED, self.name, envelope.aggregate_id):
            await self.park(conn, envelope)
            return PARKED
        await self.catch_up(conn, envelope.aggregate_id, current, version)
        await self._advance(conn, envelope.aggregate_id, version - 1, version)
        await self._project(conn, envelope)
        return HEALED

    async def apply_unless_blocked(self, conn: asyncpg.Connection, envelope: Envelope) -> str:
        """For an aggregate believed blocked: park behind its dead letter if it still has one."""
        if await conn.fetchval(_DEAD_LETTERED, self.name, envelope.aggregate_id):
            current = await conn.fetchval(_CURRENT, self.name, envelope.aggregate_id) or 0
            if current >= envelope.aggregate_version:
                return DUPLICATE
            await self.park(conn, envelope)
            return PARKED
        return await self.apply(conn, envelope)

    async def skip(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        """Count the event as handled without projecting it (a dropped dead letter)."""
        current = await conn.fetchval(_CURRENT, self.name, envelope.aggregate_id) or 0
        if current >= envelope.aggregate_version:
            return
        await self.catch_up(conn, envelope.aggregate_id, current, envelope.aggregate_version)
        await self._advance(
            conn, envelope.aggregate_id, envelope.aggregate_version - 1, envelope.aggregate_version
        )

    async def release_parked(self, conn: asyncpg.Connection, aggregate_id: str) -> int:
        """Apply the aggregate's parked events in order and forget them."""
        rows = await conn.fetch(_PARKED, self.name, aggregate_id)
        await conn.execute(_UNPARK, self.name, aggregate_id)
        for row in rows:
            await self.apply(conn, envelope_decoder.decode(row["envelope"]))
        return len(rows)

    async def park(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        await conn.execute(
            _PARK,
            self.name,
            envelope.aggregate_id,
            envelope.aggregate_version,
            encoder.encode(envelope).decode(),
        )

    async def catch_up(self, conn: asyncpg.Connection, aggregate_id: str, current: int, before: int) -> None:
        """Apply versions current+1 … before-1 from the event log."""
        if before - current <= 1:
            return
        rows = await conn.fetch(self.outbox.select_versions, aggregate_id, current, before)
        if len(rows) != before - current - 1:
            raise LookupError(f"event log of {aggregate_id} lacks versions {current + 1}..{before - 1}")
        for row in rows:
            envelope = self.outbox.envelope(row)
            await self._advance(
                conn, aggregate_id, envelope.aggregate_version - 1, envelope.aggregate_version
            )
            await self._project(conn, envelope)
        self._healed.inc(len(rows))

    async def _project(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        (event,) = await self._decode(conn, [envelope])
        await self.projection.apply(conn, envelope, event)

    async def _project_all(
        self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], decoded: Decoded | None = None
    ) -> None:
        if not envelopes:
            return
        events = await self._decode(conn, envelopes, decoded)
        if self._apply_batch is None:
            for envelope, event in zip(envelopes, events, strict=True):
                await self.projection.apply(conn, envelope, event)
        else:
            await self._apply_batch(conn, list(zip(envelopes, events, strict=True)))

    async def _decode(
        self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], decoded: Decoded | None = None
    ) -> list[Any]:
        """The events in their current shape, whatever schema version they were stored with; sealed
        fields opened (keys read in this transaction) or shown as erased, as the projection needs.
        `decoded` keeps them for the other projections of a consumer group that read them alike."""
        if decoded is None:
            return await self._decode_now(conn, envelopes)
        known = decoded.setdefault(self.reads_sealed, {})
        missing = [e for e in envelopes if id(e) not in known]
        if missing:
            known.update(zip(map(id, missing), await self._decode_now(conn, missing), strict=True))
        return [known[id(e)] for e in envelopes]

    async def _decode_now(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> list[Any]:
        if self._sealing is None:
            payloads: Sequence[bytes | msgspec.Raw] = [e.payload for e in envelopes]
        else:
            payloads = await self._sealing.open(conn, envelopes, self.reads_sealed)
        decode = self.registry.decode
        return [
            decode(e.type, payload, e.schema_version) for e, payload in zip(envelopes, payloads, strict=True)
        ]

    async def _move(self, conn: asyncpg.Connection, aggregate_id: str, current: int, new: int) -> bool:
        if current == 0:
            return bool(await conn.fetchval(_INSERT_FIRST, self.name, aggregate_id, new))
        return bool(await conn.fetchval(_MOVE, self.name, aggregate_id, new, current))

    async def _advance(self, conn: asyncpg.Connection, aggregate_id: str, current: int, new: int) -> None:
        if not await self._move(conn, aggregate_id, current, new):
            raise ConcurrencyError(f"{self.name}: {aggregate_id} moved past version {current} meanwhile")


Batch = tuple[Inbox, Sequence[Envelope], Container[str]]  # an inbox, its events, its blocked aggregates


async def apply_together(conn: asyncpg.Connection, batches: Sequence[Batch]) -> list[list[str]]:
    """Apply each inbox's batch (inside the caller's transaction) as its `apply_batch` would, one
    statement moving the tracked versions of every inbox's wave at once; return each one's outcomes."""
    outcomes = [[""] * len(envelopes) for _, envelopes, _ in batches]
    waves = [_waves(envelopes) for _, envelopes, _ in batches]
    decoded: Decoded = {}  # the group's inboxes read one source: each event decoded once per reading
    for depth in range(max(map(len, waves), default=0)):
        free = [
            [envelopes[i] for i in wave[depth] if envelopes[i].aggregate_id not in blocked]
            if depth < len(wave)
            else []
            for (_, envelopes, blocked), wave in zip(batches, waves, strict=True)
        ]
        moved = await _move_wave(conn, [(inbox.name, free[n]) for n, (inbox, _, _) in enumerate(batches)])
        for n, (inbox, envelopes, blocked) in enumerate(batches):
            if depth >= len(waves[n]):
                continue
            applied = [e for e in free[n] if (inbox.name, e.aggregate_id) in moved]
            await inbox._project_all(conn, applied, decoded)
            for i in waves[n][depth]:
                envelope = envelopes[i]
                if envelope.aggregate_id in blocked:
                    outcomes[n][i] = await inbox.apply_unless_blocked(conn, envelope)
                elif (inbox.name, envelope.aggregate_id) in moved:
                    outcomes[n][i] = APPLIED
                else:
                    outcomes[n][i] = await inbox._settle(conn, envelope)
    return outcomes


async def _move_wave(
    conn: asyncpg.Connection, waves: Sequence[tuple[str, Sequence[Envelope]]]
) -> set[tuple[str, str]]:
    consumers, aggregate_ids, versions = [], [], []
    for name, envelopes in waves:
        for e in envelopes:
            consumers.append(name)
            aggregate_ids.append(e.aggregate_id)
            versions.append(e.aggregate_version)
    if not consumers:
        return set()
    rows = await conn.fetch(_MOVE_WAVE, consumers, aggregate_ids, versions)
    return {(row["consumer"], row["aggregate_id"]) for row in rows}


def _waves(envelopes: Sequence[Envelope]) -> list[list[int]]:
    """Indexes of the batch's events: each aggregate's first event, then each one's second, ..."""
    waves: list[list[int]] = []
    seen: dict[str, int] = {}
    for index, envelope in enumerate(envelopes):
        depth = seen[envelope.aggregate_id] = seen.get(envelope.aggregate_id, -1) + 1
        if depth == len(waves):
            waves.append([])
        waves[depth].append(index)
    return waves
