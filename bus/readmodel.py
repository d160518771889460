"""The base of every read model: project an event, then stamp the root row of the aggregate it serves.

A read model has one root row per aggregate (the first of its `tables`, keyed by `key`) carrying the
`version` — and, where it has one, the `updated_at` — of the last event it reflects. The stamp runs after
every event in `stamps`, so no event can forget to, and a read's version (and ETag) is always the
aggregate's version. An event that creates the root row writes both itself and is left out of `stamps`
where one statement less per event matters. It only writes, so a consumer's batch is sent as one
pipelined round trip per statement (`BatchedWrites`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import asyncpg

from bus.batch import BatchedWrites
from bus.messages import Envelope


class ReadModel(BatchedWrites):
    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]  # the first is the root: one row per aggregate, keyed by `key`
    key: ClassVar[str]
    stamps: ClassVar[tuple[type, ...]] = (object,)  # the events after which the root row is stamped
    creates: ClassVar[tuple[type, ...]] = ()  # ... except these, which write the root row's version
    timestamped: ClassVar[bool] = True  # the root row has `updated_at`, set to the event's time
    derived: ClassVar[str] = ""  # more assignments for the stamp, recomputed from the model's own rows

    def __init__(self) -> None:
        at = ", updated_at = $3" if self.timestamped else ""
        self._stamp = f"UPDATE {self.tables[0]} SET version = $2{at}{self.derived} WHERE {self.key} = $1"
        self._stamp_args = (
            (lambda e: (e.aggregate_id, e.aggregate_version, e.occurred_at))
            if self.timestamped
            else (lambda e: (e.aggregate_id, e.aggregate_version))
        )

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        await self.project(conn, envelope, event)
        if isinstance(event, self.stamps) and not isinstance(event, self.creates):
            await conn.execute(self._stamp, *self._stamp_args(envelope))

    async def project(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        raise NotImplementedError
