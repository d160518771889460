"""The base of every repository: load with an optional expected version, save with the version
check in the same statement (`UPDATE … WHERE id = $1 AND version = $2`)."""

from __future__ import annotations

from typing import Generic, TypeVar

import asyncpg

from bus.aggregate import Aggregate
from bus.errors import ConcurrencyError, NotFound, VersionMismatch
from bus.uow import UnitOfWork

A = TypeVar("A", bound=Aggregate)


class Repository(Generic[A]):
    """Subclasses give the SQL and the row mapping; this class gives the optimistic lock."""

    select_sql: str  # $1 = id; returns the columns `load` reads
    insert_sql: str  # parameters from `insert_args`
    update_sql: str  # $1 = id, $2 = expected version, then `update_args`; must check the version

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def load(self, row: asyncpg.Record) -> A:
        raise NotImplementedError

    def insert_args(self, aggregate: A) -> tuple[object, ...]:
        raise NotImplementedError

    def update_args(self, aggregate: A) -> tuple[object, ...]:
        raise NotImplementedError

    async def get(self, aggregate_id: str, expected_version: int | None = None) -> A:
        row = await self.uow.conn.fetchrow(self.select_sql, aggregate_id)
        if row is None:
            raise NotFound(aggregate_id)
        aggregate = self.load(row)
        if expected_version is not None and expected_version != aggregate.version:
            raise VersionMismatch(expected_version, aggregate.version)
        self.uow.track(self, aggregate)
        return aggregate

    def add(self, aggregate: A) -> None:
        self.uow.track(self, aggregate)

    async def save(self, conn: asyncpg.Connection, aggregate: A) -> None:
        if aggregate.loaded_version == 0:
            await conn.execute(self.insert_sql, *self.insert_args(aggregate))
            return
        status = await conn.execute(
            self.update_sql, aggregate.id, aggregate.loaded_version, *self.update_args(aggregate)
        )
        if status == "UPDATE 0":
            raise ConcurrencyError(aggregate.id)
