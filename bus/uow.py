"""The unit of work: one asyncpg transaction per command — aggregate rows with their version check,
outbox rows, and the idempotency record, committed together or not at all."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any, Protocol, TypeVar

import asyncpg
import msgspec

from bus import idempotency, outages
from bus.aggregate import Aggregate
from bus.errors import ConcurrencyError, IdempotencyKeyInFlight, OutcomeUnknown, Refusal
from bus.messages import Event, Outcome, encoder
from bus.outbox import Headers, Outbox

__all__ = ["AggregateStore", "Meta", "Outcome", "Recheck", "UnitOfWork"]

A_contra = TypeVar("A_contra", bound=Aggregate, contravariant=True)


class AggregateStore(Protocol[A_contra]):
    """What the unit of work asks of a repository: save an aggregate it tracks, or check one that was
    only read."""

    @property
    def saves_alone(self) -> bool:
        """True when saving is the one statement of `write`, with no rows beside it."""
        ...

    def write(self, aggregate: A_contra) -> tuple[str, tuple[object, ...]]: ...

    def encode_event(self, aggregate: A_contra, event: Event) -> str:
        """The event's payload as stored in the outbox (JSON text)."""
        ...

    async def save(self, conn: asyncpg.Connection, aggregate: A_contra) -> None: ...

    async def ensure_unchanged(self, conn: asyncpg.Connection, aggregate: A_contra) -> None: ...

    def refusal(self, exc: asyncpg.UniqueViolationError, aggregate: A_contra) -> Refusal | None:
        """The refusal a unique violation of the store's rows stands for; None if it stands for none."""
        ...


class Meta(msgspec.Struct, frozen=True, kw_only=True):
    """Where a command came from: carried into every event it raises."""

    correlation_id: str
    command_id: str = msgspec.field(default_factory=lambda: str(uuid.uuid4()))
    traceparent: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None


Tracked = tuple[AggregateStore[Any], Aggregate]


class Recheck(Protocol):
    """A read that is more than rows a command tracks (e.g. which rows lie below a node): it must still
    read the same at commit, after the command's writes."""

    async def ensure_unchanged(self, conn: asyncpg.Connection) -> None: ...


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
        self._tracked: list[Tracked] = []
        self._rechecks: list[Recheck] = []

    async def __aenter__(self) -> UnitOfWork:
        self.conn: asyncpg.Connection = await self.pool.acquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.pool.release(self.conn)

    def track(self, store: AggregateStore[Any], aggregate: Aggregate) -> None:
        self._tracked.append((store, aggregate))

    def recheck(self, read: Recheck) -> None:
        """Have `read` checked at commit, after the writes, beside the aggregates only read."""
        self._rechecks.append(read)

    async def commit(self, created_id: str | None = None) -> Outcome:
        headers = Headers(
            correlation_id=self.meta.correlation_id,
            causation_id=self.meta.command_id,
            traceparent=self.meta.traceparent,
        )
        changed = [(store, agg) for store, agg in self._tracked if agg.pending_events]
        # What the command only read to decide (a product's category, a child's parent) must still
        # hold at commit: checked after the writes, so a clash re-runs the command on fresh state.
        read = [(store, agg) for store, agg in self._tracked if not agg.pending_events and agg.loaded_version]
        subject = (changed or self._tracked)[0][1]
        outcome = Outcome(aggregate_id=subject.id, version=subject.version, created_id=created_id)
        remember = None
        if self.meta.idempotency_key is not None:
            remember = (self.meta.idempotency_key, self.meta.fingerprint, encoder.encode(outcome).decode())
        if len(changed) == 1 and not read and not self._rechecks and changed[0][0].saves_alone:
            await self._commit_in_one_statement(changed[0], headers, remember)
        else:
            await self._commit_in_transaction(changed, read, headers, remember)
        for _, aggregate in changed:
            aggregate.mark_saved()
        return outcome

    async def _commit_in_one_statement(
        self, tracked: Tracked, headers: Headers, remember: tuple[str, str | None, str] | None
    ) -> None:
        store, aggregate = tracked
        write, args = store.write(aggregate)
        rows = self.outbox.rows(aggregate, headers, store.encode_event)
        statement = self.outbox.insert_after(write, len(args) + 1, len(rows), remember is not None)
        arguments = [*args, *(value for row in rows for value in row), *(remember or ())]
        try:
            status = await self.conn.execute(statement, *arguments)
        except asyncpg.UniqueViolationError as exc:
            raise self.refusal(exc, tracked) from None
        except Exception as exc:
            _raise_unknown_if_outage(exc)
            raise
        if status == "INSERT 0 0":  # the versioned UPDATE found its row changed
            raise ConcurrencyError(aggregate.id)

    async def _commit_in_transaction(
        self,
        changed: list[Tracked],
        read: list[Tracked],
        headers: Headers,
        remember: tuple[str, str | None, str] | None,
    ) -> None:
        committing = False
        try:
            async with self.conn.transaction():
                await self._write_then_check(changed, read, headers, remember)
                committing = True  # leaving the block sends COMMIT
        except asyncpg.DeadlockDetectedError:
            # Two commands each checking what the other wrote: PostgreSQL rolls one back; it re-runs.
            raise ConcurrencyError(changed[0][1].id if changed else "") from None
        except Exception as exc:
            if committing:
                _raise_unknown_if_outage(exc)
            raise

    async def _write_then_check(
        self,
        changed: list[Tracked],
        read: list[Tracked],
        headers: Headers,
        remember: tuple[str, str | None, str] | None,
    ) -> None:
        for tracked in changed:
            store, aggregate = tracked
            try:
                await store.save(self.conn, aggregate)
            except asyncpg.UniqueViolationError as exc:
                raise self.refusal(exc, tracked) from None
            await self.outbox.append(self.conn, aggregate, headers, store.encode_event)
        if changed:
            for store, aggregate in read:
                await store.ensure_unchanged(self.conn, aggregate)
            for check in self._rechecks:
                await check.ensure_unchanged(self.conn)
        if remember is not None:
            try:
                await idempotency.remember(self.conn, *remember)
            except asyncpg.UniqueViolationError as exc:
                raise self.refusal(exc) from None

    def refusal(self, exc: asyncpg.UniqueViolationError, saving: Tracked | None = None) -> Exception:
        """What a unique violation at commit tells the client: a request with the same idempotency key
        committed meanwhile (409; the edge then answers with that request's outcome), or the rule of the
        store whose row clashed (a taken e-mail, a taken SKU). Any other violation stays what it is."""
        if idempotency.key_taken(exc):
            return IdempotencyKeyInFlight(self.meta.idempotency_key or "")
        refusal = None if saving is None else saving[0].refusal(exc, saving[1])
        return exc if refusal is None else refusal


def _raise_unknown_if_outage(exc: Exception) -> None:
    """A commit the connection broke under may have been applied before the answer was lost: the
    caller learns that its outcome is unknown, not that it failed. The idempotency record, written in
    the same commit, tells a retry with the same key which it was. An `InterfaceError` or
    `InternalClientError` is asyncpg refusing to send on a connection it knows broken: nothing was
    committed."""
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return
    if (service := outages.unavailable(exc)) is not None:
        raise OutcomeUnknown(service) from exc
