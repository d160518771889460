"""The base of every repository: an aggregate row of `id`, its state as JSON, `version`, and the
columns kept for lookups and uniqueness; load with an optional expected version, save with the version
check in the same statement (`UPDATE … WHERE id = $1 AND version = $2`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

import asyncpg

from bus.aggregate import Aggregate
from bus.errors import ConcurrencyError, NotFound, Refusal, ensure_version
from bus.messages import Event, encoder
from bus.uow import Outcome, UnitOfWork

A = TypeVar("A", bound=Aggregate)


class Repository(Generic[A]):
    """Subclasses name the table, the lookup columns and how state maps to JSON; this class writes
    the SQL once and gives the optimistic lock. Lookup columns are written on insert and on every
    update, so a changeable unique value (a SKU, a slug) never goes stale."""

    table: ClassVar[str]  # columns: id, state (jsonb), version, then `lookups`
    what: ClassVar[str]  # the aggregate as a client names it: "customer", "product"
    lookups: ClassVar[tuple[str, ...]] = ()
    unique: ClassVar[Mapping[str, Callable[[Any], Refusal]]] = {}  # constraint → refusal, given the aggregate

    _select: ClassVar[str]
    _insert: ClassVar[str]
    _update: ClassVar[str]
    _still: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not hasattr(cls, "table"):
            return
        columns = ("id", "state", "version", *cls.lookups)
        cls._select = f"SELECT state::text AS state, version FROM {cls.table} WHERE id = $1"
        cls._insert = (
            f"INSERT INTO {cls.table} ({', '.join(columns)})"
            f" VALUES ({', '.join(f'${n}' for n in range(1, len(columns) + 1))})"
        )
        sets = ", ".join(f"{column} = ${n}" for n, column in enumerate(columns[1:], start=3))
        cls._update = f"UPDATE {cls.table} SET {sets} WHERE id = $1 AND version = $2"
        cls._still = f"SELECT 1 FROM {cls.table} WHERE id = $1 AND version = $2 FOR SHARE"

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def load(self, state: str, version: int) -> A:
        raise NotImplementedError

    def dump(self, aggregate: A) -> str:
        """The aggregate's state as JSON text."""
        raise NotImplementedError

    def lookup_values(self, aggregate: A) -> tuple[object, ...]:
        return ()

    def encode_event(self, aggregate: A, event: Event) -> str:
        """The event's payload as stored in the outbox: its JSON, unless the repository seals fields."""
        return encoder.encode(event).decode()

    async def find(self, aggregate_id: str) -> A | None:
        """The aggregate, tracked by the unit of work; None if it does not exist."""
        row = await self.uow.conn.fetchrow(self._select, aggregate_id)
        if row is None:
            return None
        aggregate = self.load(row["state"], row["version"])
        self.uow.track(self, aggregate)
        return aggregate

    async def get(
        self,
        aggregate_id: str,
        expected_version: int | tuple[int, ...] | None = None,
        owner_check: Callable[[A | None], object] | None = None,
    ) -> A:
        """The aggregate, tracked by the unit of work. Checked in this order: `owner_check` (it raises
        to refuse, and sees None for a missing aggregate, so that a caller acting for itself can be
        refused alike for another's aggregate and for none), existence (404), `expected_version` (412)."""
        aggregate = await self.find(aggregate_id)
        if owner_check is not None:
            owner_check(aggregate)
        if aggregate is None:
            raise NotFound(self.what, aggregate_id)
        ensure_version(expected_version, aggregate.version)
        return aggregate

    def add(self, aggregate: A) -> None:
        self.uow.track(self, aggregate)

    async def save(self, conn: asyncpg.Connection, aggregate: A) -> None:
        """Write the aggregate's row with its version check, and the rows beside it; a unique clash
        raises the violation, which the unit of work turns into the refusal `unique` maps it to."""
        await self._write(conn, aggregate)
        await self.save_more(conn, aggregate)

    async def save_more(self, conn: asyncpg.Connection, aggregate: A) -> None:
        """Rows beside the aggregate's own, written in the same transaction (e.g. unique child keys)."""

    async def ensure_unchanged(self, conn: asyncpg.Connection, aggregate: A) -> None:
        """For an aggregate a command only read to decide: it must still be at the version read, and
        stays so until commit (a share lock makes a concurrent change wait, or fail its own check)."""
        if await conn.fetchval(self._still, aggregate.id, aggregate.loaded_version) is None:
            raise ConcurrencyError(aggregate.id)

    def write(self, aggregate: A) -> tuple[str, tuple[object, ...]]:
        """The statement that saves the aggregate, and its arguments: an INSERT for a new one, else
        the UPDATE with its version check."""
        lookups = self.lookup_values(aggregate)
        if aggregate.loaded_version == 0:
            return self._insert, (aggregate.id, self.dump(aggregate), aggregate.version, *lookups)
        return self._update, (
            aggregate.id,
            aggregate.loaded_version,
            self.dump(aggregate),
            aggregate.version,
            *lookups,
        )

    @property
    def saves_alone(self) -> bool:
        """True when saving is the one statement of `write`, with no rows beside it."""
        return type(self).save_more is Repository.save_more

    def refusal(self, exc: asyncpg.UniqueViolationError, aggregate: A) -> Refusal | None:
        refusal = self.unique.get(exc.constraint_name or "")
        return None if refusal is None else refusal(aggregate)

    async def _write(self, conn: asyncpg.Connection, aggregate: A) -> None:
        statement, args = self.write(aggregate)
        if await conn.execute(statement, *args) == "UPDATE 0":
            raise ConcurrencyError(aggregate.id)


async def change(
    repository: Repository[A],
    aggregate_id: str,
    expected_version: int | tuple[int, ...] | None,
    action: Callable[[A], object],
    owner_check: Callable[[A | None], object] | None = None,
    created_id: str | None = None,
) -> Outcome:
    """The shape of every command on one existing aggregate: load (with the checks of `get`), act,
    commit."""
    async with repository.uow:
        action(await repository.get(aggregate_id, expected_version, owner_check))
        return await repository.uow.commit(created_id)
