"""Handlers and repository of the counters context."""

from __future__ import annotations

import json

from bus.repository import Repository
from bus.uow import Outcome, UnitOfWork
from tests.messaging.counters.model import Counter, Increment, OpenCounter


class Counters(Repository[Counter]):
    table = "counters.counters"
    what = "counter"

    def load(self, state: str, version: int) -> Counter:
        fields = json.loads(state)
        return Counter(fields["id"], fields["name"], fields["total"], version)

    def dump(self, counter: Counter) -> str:
        return json.dumps({"id": counter.id, "name": counter.name, "total": counter.total})


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
