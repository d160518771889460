"""The unit of work: one asyncpg transaction per command — aggregate rows with their version check,
outbox rows, and the idempotency record, committed together or not at all."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from bus import idempotency
from bus.aggregate import Aggregate
from bus.errors import ConcurrencyError, IdempotencyKeyInFlight
from bus.messages import Outcome, encoder
from bus.outbox import Headers, Outbox

if TYPE_CHECKING:
    from bus.repository import Repository

__all__ = ["Meta", "Outcome", "UnitOfWork"]


class Meta(msgspec.Struct, frozen=True, kw_only=True):
    """Where a command came from: carried into every event it raises."""

    correlation_id: str
    command_id: str = msgspec.field(default_factory=lambda: str(uuid.uuid4()))
    traceparent: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None


class UnitOfWork:
    """`async with uow:` takes a connection; loads read outside any transaction (each is one statement,
    and saving re-checks the version read); `await uow.commit()` writes everything at once; anything
    else writes nothing.

    A command that changed one aggregate and decided on nothing else commits in one statement (the
    aggregate's write, its events and the idempotency record; atomic without BEGIN and COMMIT). Any
    other commit runs in one transaction, where aggregates only read are checked after the writes."""

    def __init__(self, pool: asyncpg.Pool, outbox: Outbox, meta: Meta) -> None:
        self.pool = pool
        self.outbox = outbox
        self.meta = meta
        self._tracked: list[tuple[Repository[Any], Aggregate]] = []

    async def __aenter__(self) -> UnitOfWork:
        self.conn: asyncpg.Connection = await self.pool.acquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
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
        # What the command only read to decide (a product's category, a child's parent) must still
        # hold at commit: checked after the writes, so a clash re-runs the command on fresh state.
        read = [(repo, agg) for repo, agg in self._tracked if not agg.pending_events and agg.loaded_version]
        subject = (changed or self._tracked)[0][1]
        outcome = Outcome(aggregate_id=subject.id, version=subject.version, created_id=created_id)
        remember = None
        if self.meta.idempotency_key is not None:
            remember = (self.meta.idempotency_key, self.meta.fingerprint, encoder.encode(outcome).decode())
        if len(changed) == 1 and not read and changed[0][0].saves_alone:
            await self._commit_in_one_statement(*changed[0], headers, remember)
        else:
            async with self.conn.transaction():
                for repository, aggregate in changed:
                    await repository.save(self.conn, aggregate)
                    await self.outbox.append(self.conn, aggregate, headers)
                if changed:
                    for repository, aggregate in read:
                        await repository.ensure_unchanged(self.conn, aggregate)
                if remember is not None:
                    await self._remember(*remember)
        for _, aggregate in changed:
            aggregate.mark_saved()
        return outcome

    async def _commit_in_one_statement(
        self,
        repository: Repository[Any],
        aggregate: Aggregate,
        headers: Headers,
        remember: tuple[str, str | None, str] | None,
    ) -> None:
        write, args = repository.write(aggregate)
        rows = self.outbox.rows(aggregate, headers)
        statement = self.outbox.insert_after(write, len(args) + 1, len(rows), remember is not None)
        arguments = [*args, *(value for row in rows for value in row), *(remember or ())]
        try:
            status = await self.conn.execute(statement, *arguments)
        except asyncpg.UniqueViolationError as exc:
            if idempotency.key_taken(exc):
                raise IdempotencyKeyInFlight(self.meta.idempotency_key or "") from None
            refusal = repository.refusal(exc, aggregate)
            if refusal is None:
                raise
            raise refusal from None
        if status == "INSERT 0 0":  # the versioned UPDATE found its row changed
            raise ConcurrencyError(aggregate.id)

    async def _remember(self, key: str, fingerprint: str | None, outcome: str) -> None:
        try:
            await idempotency.remember(self.conn, key, fingerprint, outcome)
        except asyncpg.UniqueViolationError:
            raise IdempotencyKeyInFlight(key) from None
