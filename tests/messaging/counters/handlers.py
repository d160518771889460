"""Handlers and repository of the counters context."""

from __future__ import annotations

import asyncpg

from bus.repository import Repository
from bus.uow import Outcome, UnitOfWork
from tests.messaging.counters.model import Counter, Increment, OpenCounter


class Counters(Repository[Counter]):
    select_sql = "SELECT id, name, total, version FROM counters.counters WHERE id = $1"
    insert_sql = "INSERT INTO counters.counters (id, name, total, version) VALUES ($1, $2, $3, $4)"
    update_sql = "UPDATE counters.counters SET total = $3, version = $4 WHERE id = $1 AND version = $2"

    def load(self, row: asyncpg.Record) -> Counter:
        return Counter(row["id"], row["name"], row["total"], row["version"])

    def insert_args(self, counter: Counter) -> tuple[object, ...]:
        return counter.id, counter.name, counter.total, counter.version

    def update_args(self, counter: Counter) -> tuple[object, ...]:
        return counter.total, counter.version


async def open_counter(command: OpenCounter, uow: UnitOfWork) -> Outcome:
    async with uow:
        Counters(uow).add(Counter.open(command.counter_id, command.name))
        return await uow.commit(created_id=command.counter_id)


async def increment(command: Increment, uow: UnitOfWork) -> Outcome:
    async with uow:
        counter = await Counters(uow).get(command.counter_id, command.expected_version)
        counter.increment(command.by)
        return await uow.commit()


HANDLERS = {OpenCounter: open_counter, Increment: increment}
