"""Helpers of the projection tests: one aggregate's envelopes with increasing versions and instants, a
database migrated for one context alone, and envelopes applied to a context's projections."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import asyncpg
import msgspec

from bus.messages import Envelope, Event, encoder, registry
from shopstream.bootstrap import BUS
from shopstream.migrate import Component, migrate_all

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
_tick = itertools.count(1)


def moment() -> datetime:
    """A fresh instant, later than every earlier one."""
    return T0 + timedelta(milliseconds=next(_tick))


class Aggregate:
    """One aggregate's envelopes with increasing versions, as the outbox writes them."""

    def __init__(self, aggregate_type: str, context: str) -> None:
        self.type = aggregate_type
        self.context = context
        self.id = str(uuid.uuid4())
        self.version = 0
        self.last_at = T0

    def __call__(self, event: Event, at: datetime | None = None) -> Envelope:
        self.version += 1
        self.last_at = at or moment()
        return Envelope(
            event_id=uuid.uuid4(),
            type=event.tag(),
            schema_version=event.schema_version,
            context=self.context,
            aggregate_type=self.type,
            aggregate_id=self.id,
            aggregate_version=self.version,
            occurred_at=self.last_at,
            correlation_id=str(uuid.uuid4()),
            causation_id=str(uuid.uuid4()),
            traceparent=None,
            payload=msgspec.Raw(encoder.encode(event)),
        )


async def migrated_for(create_database: Any, context: str) -> str:
    """A fresh database holding the bus's tables and one context's, migrated; no messaging runs on it."""
    url: str = create_database(f"{context}_projections")
    await migrate_all({url: [BUS, Component(context, files(f"contexts.{context}") / "migrations")]})
    return url


async def apply(pool: asyncpg.Pool, projections: Sequence[Any], *envelopes: Envelope) -> None:
    """Each envelope applied by every projection, one transaction per envelope, in the order given."""
    for envelope in envelopes:
        event = registry.decode(envelope.type, envelope.payload)
        async with pool.acquire() as conn, conn.transaction():
            for projection in projections:
                await projection.apply(conn, envelope, event)
