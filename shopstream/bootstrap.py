"""Composition root: which components live in which database, the connections a process holds, and
the messaging (bus, relays, consumers) wired over them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib.resources import files

import asyncpg
from redis.asyncio import Redis

from bus.bus import Bus, Route
from bus.config import BusConfig
from bus.conformance import NonConformingContext, check_tables
from bus.consumer import Consumer, groups
from bus.inbox import Inbox
from bus.maintenance import Maintenance
from bus.messages import registry
from bus.module import ContextModule
from bus.outbox import Outbox, Relay
from bus.sealing import KeyringMismatch, Sealing
from bus.supervisor import Supervisor, Task
from bus.versions import VersionKeeper
from observability import metrics
from shopstream.contexts import CONTEXTS, load
from shopstream.migrate import Component, migrate_all
from shopstream.settings import ConfigurationError, Settings

BUS = Component("bus", files("bus") / "migrations")


def product_modules() -> tuple[ContextModule, ...]:
    """The product's own contexts, loaded and checked."""
    return load(CONTEXTS)


def modules_of(settings: Settings) -> tuple[ContextModule, ...]:
    """The contexts the settings name, loaded and checked."""
    return load(settings.contexts)


async def prepare(settings: Settings, modules: Sequence[ContextModule] | None = None) -> list[str]:
    """Apply pending migrations, then check each context's tables are as its code needs them (both on
    the direct connection: a migration holds a session advisory lock), and that the keys of personal
    data open what the database holds."""
    modules = modules or modules_of(settings)
    applied = await migrate_all(migration_plan(settings, modules))
    sealings = sealings_of(settings, modules)
    for module in modules:
        url = settings.direct_database_url_for(module.name)
        conn = await asyncpg.connect(url)
        try:
            await check_tables(conn, module)
            if module.name in sealings:
                await prepare_sealing(sealings[module.name], conn)
        finally:
            await conn.close()
    return applied


def sealings_of(settings: Settings, modules: Sequence[ContextModule]) -> dict[str, Sealing]:
    """The sealing of each context that seals fields of its events, over the process's keyring."""
    sealed = [m for m in modules if m.sealing is not None]
    if not sealed:
        return {}
    from shopstream.datakeys import keyring_of

    keyring = keyring_of(settings)
    return {m.name: m.sealing(keyring) for m in sealed if m.sealing is not None}


async def prepare_sealing(sealing: Sealing, conn: asyncpg.Connection) -> None:
    try:
        await sealing.prepare(conn)
    except KeyringMismatch as exc:
        raise ConfigurationError(f"configuration error: SHOPSTREAM_DATA_KEY: {exc}") from None


def migration_plan(
    settings: Settings, modules: Sequence[ContextModule] | None = None
) -> dict[str, list[Component]]:
    """Components per database (its direct URL): the bus's tables in every database, each context in its
    own."""
    plan: dict[str, list[Component]] = {}
    for module in modules or modules_of(settings):
        url = settings.direct_database_url_for(module.name)
        if url is None:
            raise ValueError(f"no database configured for context {module.name!r}")
        plan.setdefault(url, [BUS]).append(Component(module.name, module.migrations))
    return plan


class PooledConnection(asyncpg.Connection):
    """Pooled connections never change session state (LISTEN and session advisory locks use connections
    of their own, to the direct URL; settings are only ever `SET LOCAL`), so returning one to the pool
    needs no reset query: one round trip less per command. The same holds them safe behind a pooler in
    transaction mode, which may hand each transaction another server connection."""

    def get_reset_query(self) -> str:
        return ""


@dataclass
class Resources:
    """The pools and clients of one process, opened once and shared by every request."""

    settings: Settings
    pools: dict[str, asyncpg.Pool] = field(default_factory=dict)  # context -> pool
    redis: Redis | None = None

    async def open(self, contexts: Iterable[str]) -> None:
        by_url: dict[str, asyncpg.Pool] = {}
        for context in contexts:
            url = self.settings.database_url_for(context)
            assert url is not None, "settings must be resolved before opening resources"
            if url not in by_url:
                by_url[url] = await asyncpg.create_pool(
                    url,
                    min_size=1,
                    max_size=self.settings.db_pool_size,
                    command_timeout=30,
                    connection_class=PooledConnection,
                    statement_cache_size=self.settings.db_statement_cache_size,
                )
            self.pools[context] = by_url[url]
        metrics.db_pools.watch(self.pools)
        assert self.settings.redis_url is not None
        self.redis = Redis.from_url(
            self.settings.redis_url,
            socket_connect_timeout=self.settings.ready_timeout,
            health_check_interval=30,
        )

    async def close(self) -> None:
        metrics.db_pools.unwatch(self.pools)
        for pool in {id(p): p for p in self.pools.values()}.values():
            await pool.close()
        self.pools.clear()
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None


class Messaging:
    """The bus, outboxes and inboxes of one process; `supervisor()` builds its background work.

    A projection's consumer writes in the database of the context it belongs to (its `owners` entry) and
    reads the stream and event log of the context whose events it keeps (its inbox's outbox): the same
    context, or another one sharing that database."""

    def __init__(self, resources: Resources, modules: Sequence[ContextModule], config: BusConfig) -> None:
        self.resources = resources
        self.modules = {m.name: m for m in modules}
        self.config = config
        self.bus = Bus(config)
        sealings = sealings_of(resources.settings, modules)
        self.outboxes = {m.name: Outbox(m.name, sealing=sealings.get(m.name)) for m in modules}
        for module in modules:
            for command_type, handler in module.handlers.items():
                route = Route(module.name, handler, resources.pools[module.name], self.outboxes[module.name])
                self.bus.register(command_type, route)
        self.inboxes: dict[str, Inbox] = {}
        self.owners: dict[str, str] = {}  # projection → the context whose database holds it
        for module in modules:
            for projection in module.projections:
                source = module.source_of(projection)
                _check_source(module.name, projection.name, source, resources.pools)
                self.inboxes[projection.name] = Inbox(projection, self.outboxes[source], registry)
                self.owners[projection.name] = module.name
        unknown = sorted(set(config.isolated) - set(self.inboxes))
        if unknown:
            raise ConfigurationError(
                f"SHOPSTREAM_ISOLATED_PROJECTIONS names no projection: {', '.join(unknown)};"
                f" known: {', '.join(self.inboxes)}"
            )
        # consumer group -> the projections it keeps (`bus.consumer.groups`)
        self.groups = {
            name: [inbox.name for inbox in members]
            for name, members in groups(self.inboxes, self.owners, config.isolated).items()
        }
        self.group_of = {projection: name for name, kept in self.groups.items() for projection in kept}

    @classmethod
    async def open(cls, settings: Settings, modules: Sequence[ContextModule] | None = None) -> Messaging:
        modules = modules or modules_of(settings)
        resources = Resources(settings)
        await resources.open(m.name for m in modules)
        return cls(resources, modules, settings.bus_config())

    async def close(self) -> None:
        await self.resources.close()

    def pool_of(self, context: str) -> asyncpg.Pool:
        return self.resources.pools[context]

    def direct_url_of(self, context: str) -> str:
        """Where the context's session state lives (LISTEN, session advisory locks): its direct URL."""
        url = self.resources.settings.direct_database_url_for(context)
        assert url is not None, "settings must be resolved before opening resources"
        return url

    @property
    def redis(self) -> Redis:
        assert self.resources.redis is not None
        return self.resources.redis

    def relay(self, context: str) -> Relay:
        return Relay(self.outboxes[context], self.pool_of(context), self.redis, self.config)

    def consumer(self, name: str) -> Consumer:
        """The consumer of a group, or of the group that keeps the projection `name`."""
        group = name if name in self.groups else self.group_of[name]
        kept = self.groups[group]
        inboxes = [self.inboxes[projection] for projection in kept]
        return Consumer(inboxes, self.pool_of(self.owners[kept[0]]), self.redis, self.config, name=group)

    def inboxes_of(self, contexts: Iterable[str]) -> dict[str, Inbox]:
        """The inboxes of the projections the given contexts keep."""
        chosen = set(contexts)
        return {name: inbox for name, inbox in self.inboxes.items() if self.owners[name] in chosen}

    def groups_of(self, contexts: Iterable[str]) -> list[str]:
        """The consumer groups that keep the projections of the given contexts."""
        kept = self.inboxes_of(contexts)
        return [name for name, projections in self.groups.items() if projections[0] in kept]

    def groups_reading(self, source: str) -> list[str]:
        """The consumer groups that read the streams of `source`."""
        return [name for name, kept in self.groups.items() if self.inboxes[kept[0]].outbox.context == source]

    def supervisor(self, contexts: Iterable[str] | None = None) -> Supervisor:
        """Relays and consumers of the given contexts (default: all)."""
        chosen = set(self.modules if contexts is None else contexts)
        tasks: dict[str, Task] = {}
        for context in sorted(chosen):
            listen_dsn = self.direct_url_of(context)
            tasks[f"relay:{context}"] = partial(_run_relay, self.relay(context), listen_dsn)
        for name in self.groups_of(chosen):
            tasks[f"consumer:{name}"] = self.consumer(name).run
        for context in sorted(chosen):
            kept = list(self.inboxes_of([context]).values())
            if kept:  # rebuilds, in the background, each projection whose code changed its version
                keeper = VersionKeeper(self.pool_of(context), kept, lock_dsn=self.direct_url_of(context))
                tasks[f"versions:{context}"] = keeper.run
        by_pool: dict[int, tuple[asyncpg.Pool, list[Outbox]]] = {}
        for context in sorted(chosen):
            pool = self.pool_of(context)
            by_pool.setdefault(id(pool), (pool, []))[1].append(self.outboxes[context])
        measured_groups = [
            (self.config.stream(self.inboxes[self.groups[name][0]].outbox.context, partition), name)
            for name in self.groups_of(chosen)
            for partition in range(self.config.partitions)
        ]
        for index, (pool, outboxes) in enumerate(by_pool.values()):
            redis, measured = (self.redis, measured_groups) if index == 0 else (None, ())
            tasks[f"maintenance:{index}"] = Maintenance(pool, outboxes, redis=redis, groups=measured).run
        return Supervisor(tasks, self.config.shutdown_grace)


def _check_source(context: str, projection: str, source: str, pools: dict[str, asyncpg.Pool]) -> None:
    """A projection of another context's events heals gaps, reconciles and rebuilds from that context's
    event log inside its own transactions: the two contexts must share a database."""
    where = f"context {context}: projection {projection} reads {source}'s events"
    if source not in pools:
        raise NonConformingContext(f"{where}, but {source} is not among the contexts served")
    if pools[source] is not pools[context]:
        raise NonConformingContext(
            f"{where}, so {context.upper()}_DATABASE_URL and {source.upper()}_DATABASE_URL must name one database"
        )


async def _run_relay(relay: Relay, listen_dsn: str | None, stopping) -> None:  # type: ignore[no-untyped-def]
    await relay.run(listen_dsn, stopping)
