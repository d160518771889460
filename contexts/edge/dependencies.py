"""What a context's routes receive from Litestar: its read pool, the command runner and `If-Match`.
(Contexts never import `shopstream`: the composition root provides `bus` and `pools`.)"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import asyncpg
from litestar.di import NamedDependency, Provide

from contexts.edge.conditional import Versions, expected_version
from contexts.edge.idempotency import Commands, provide_commands

# What routes declare to receive the dependencies of `command_dependencies`.
ReadPool = NamedDependency[asyncpg.Pool]
CommandRunner = NamedDependency[Commands]
ExpectedVersion = NamedDependency[Versions]


def context_pool(context: str) -> Callable[[Mapping[str, asyncpg.Pool]], asyncpg.Pool]:
    def pool(pools: NamedDependency[Mapping[str, asyncpg.Pool]]) -> asyncpg.Pool:
        return pools[context]

    return pool


def command_dependencies(context: str) -> dict[str, Provide]:
    """A context controller's dependencies: its read pool, the command runner and `If-Match`."""
    return {
        "pool": Provide(context_pool(context), sync_to_thread=False),
        "commands": Provide(provide_commands, sync_to_thread=False),
        "expected_version": Provide(expected_version, sync_to_thread=False),
    }
