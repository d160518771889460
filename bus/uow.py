"""The unit of work: one asyncpg transaction per command — aggregate rows with their version check,
outbox rows, and the idempotency record, committed together or not at all."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from bus.aggregate import Aggregate
from bus.errors import IdempotencyKeyInFlight
from bus.messages import encoder
from bus.outbox import Headers, Outbox

if TYPE_CHECKING:
    from bus.repository import Repository


class Outcome(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a command did: the aggregate, its version after the command, and any id it created."""

    aggregate_id: str
    version: int
    created_id: str | None = None


class Meta(msgspec.Struct, frozen=True, kw_only=True):
    """Where a command came from: carried into every event it raises."""

    correlation_id: str
    command_id: str = msgspec.field(default_factory=lambda: str(uuid.uuid4()))
    traceparent: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None


_REMEMBER = "INSERT INTO bus.idempotency_keys (key, fingerprint, outcome) VALUES ($1, $2, $3)"


class UnitOfWork:
    """`async with uow:` opens the transaction; `await uow.commit()` writes and commits; anything
    else rolls back."""

    def __init__(self, pool: asyncpg.Pool, outbox: Outbox, meta: Meta) -> None:
        self.pool = pool
        self.outbox = outbox
        self.meta = meta
        self._tracked: list[tuple[Repository[Any], Aggregate]] = []
        self._committed = False

    async def __aenter__(self) -> UnitOfWork:
        self.conn: asyncpg.Connection = await self.pool.acquire()
        self._tx = self.conn.transaction()
        await self._tx.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._committed:
                await self._tx.rollback()
        finally:
            await self.pool.release(self.conn)

    def track(self, repository: Repository[Any], aggregate: Aggregate) -> None:
        self._tracked.append((repository, aggregate))

    async def commit(self, created_id: str | None = None) -> Outcome:
        headers = Headers(
            correlation_id=self.meta.correlation_id,
            causation_id=self.meta.command_id,
            traceparent=self.meta.traceparent,
        )
        changed = [(repo, agg) for repo, agg in self._tracked if agg.pending_events]
        for repository, aggregate in changed:
            await repository.save(self.conn, aggregate)
            await self.outbox.append(self.conn, aggregate, headers)
        # What the command only read to decide (a product's category, a child's parent) must still
        # hold at commit: checked after the writes, so a clash re-runs the command on fresh state.
        for repository, aggregate in self._tracked:
            if not aggregate.pending_events and aggregate.loaded_version and changed:
                await repository.ensure_unchanged(self.conn, aggregate)
        subject = (changed or self._tracked)[0][1]
        outcome = Outcome(aggregate_id=subject.id, version=subject.version, created_id=created_id)
        if self.meta.idempotency_key is not None:
            try:
                await self.conn.execute(
                    _REMEMBER,
                    self.meta.idempotency_key,
                    self.meta.fingerprint,
                    encoder.encode(outcome).decode(),
                )
            except asyncpg.UniqueViolationError:
                raise IdempotencyKeyInFlight(self.meta.idempotency_key) from None
        await self._tx.commit()
        self._committed = True
        for _, aggregate in changed:
            aggregate.mark_saved()
        return outcome
