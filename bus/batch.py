"""The batch form of a write-only projection: many events' statements, one pipelined send per statement.

A projection whose `apply` only writes (`conn.execute`, result unused) inherits `apply_batch` from
`BatchedWrites`: each event's statements are recorded, then every distinct statement is sent once with
all its argument lists through asyncpg's pipelined `executemany` (one round trip), in an order that
keeps each event's own statements in order. A batch holds at most one event per aggregate, so events
never need ordering among themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import Any, ClassVar, cast

import asyncpg

from bus.messages import Envelope

Statement = tuple[str, tuple[Any, ...]]


class _Recorder:
    """Stands in for the connection while `apply` runs: notes each statement instead of sending it."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []

    async def execute(self, query: str, *args: Any) -> str:
        self.statements.append((query, args))
        return ""


class BatchedWrites:
    # The read model's version: bump it when a change to `apply` alters what the tables hold for past
    # events; the next `serve` or `worker` rebuilds it blue/green (`bus.versions`).
    version: ClassVar[int] = 1

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        raise NotImplementedError

    async def apply_batch(self, conn: asyncpg.Connection, items: Sequence[tuple[Envelope, Any]]) -> None:
        """Apply events of distinct aggregates, each as `apply` would."""
        chains = []
        for envelope, event in items:
            recorder = _Recorder()
            await self.apply(cast(asyncpg.Connection, recorder), envelope, event)
            chains.append(recorder.statements)
        for query, arguments in schedule(chains):
            await conn.executemany(query, arguments)


def schedule(chains: Sequence[Sequence[Statement]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Group the statements by query, each group after every query that precedes it in some chain.

    Chains that order two queries both ways (or repeat one) are grouped round by round instead: every
    chain's first statement, then every chain's second, and so on."""
    precedes: dict[str, set[str]] = {}
    for chain in chains:
        for index, (query, _) in enumerate(chain):
            precedes.setdefault(query, set()).update(earlier for earlier, _ in chain[:index])
    try:
        order = list(TopologicalSorter(precedes).static_order())
    except CycleError:
        return [
            group
            for depth in range(max(map(len, chains), default=0))
            for group in _grouped(chain[depth] for chain in chains if depth < len(chain))
        ]
    groups = dict(_grouped(statement for chain in chains for statement in chain))
    return [(query, groups[query]) for query in order]


def _grouped(statements: Iterable[Statement]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for query, args in statements:
        groups.setdefault(query, []).append(args)
    return list(groups.items())
