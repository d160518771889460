"""Composition root: which components live in which database, and the connections a process holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files

import asyncpg
from redis.asyncio import Redis

from shopstream.migrate import Component
from shopstream.settings import Settings

CONTEXTS = ("identity", "catalogue")
BUS = Component("bus", files("bus") / "migrations")


def context_component(context: str) -> Component:
    return Component(context, files(f"contexts.{context}") / "migrations")


def migration_plan(settings: Settings, contexts: tuple[str, ...] = CONTEXTS) -> dict[str, list[Component]]:
    """Components per database URL: the bus's tables in every database, each context in its own."""
    plan: dict[str, list[Component]] = {}
    for context in contexts:
        url = settings.database_url_for(context)
        if url is None:
            raise ValueError(f"no database configured for context {context!r}")
        plan.setdefault(url, [BUS]).append(context_component(context))
    return plan


@dataclass
class Resources:
    """The pools and clients of one process, opened once and shared by every request."""

    settings: Settings
    pools: dict[str, asyncpg.Pool] = field(default_factory=dict)  # context -> pool
    redis: Redis | None = None

    async def open(self, contexts: tuple[str, ...] = CONTEXTS) -> None:
        by_url: dict[str, asyncpg.Pool] = {}
        for context in contexts:
            url = self.settings.database_url_for(context)
            assert url is not None, "settings must be resolved before opening resources"
            if url not in by_url:
                by_url[url] = await asyncpg.create_pool(
                    url, min_size=1, max_size=self.settings.db_pool_size, command_timeout=30
                )
            self.pools[context] = by_url[url]
        assert self.settings.redis_url is not None
        self.redis = Redis.from_url(
            self.settings.redis_url,
            socket_connect_timeout=self.settings.ready_timeout,
            health_check_interval=30,
        )

    async def close(self) -> None:
        for pool in {id(p): p for p in self.pools.values()}.values():
            await pool.close()
        self.pools.clear()
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
