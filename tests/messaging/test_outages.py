"""Which failures are outages of PostgreSQL or Redis (503, retried later) and which stay faults (500);
and how an outage is logged: once, then a reminder a minute, not a line per failed request."""

from __future__ import annotations

import asyncio
import logging
import socket

import asyncpg
import msgspec
import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from bus.outages import POSTGRESQL, REDIS, OutageLog, unavailable
from bus.supervisor import Supervisor
from shopstream.bootstrap import Messaging
from tests.messaging.counters import module as counters
from tests.messaging.helpers import make_counters, running, totals, wait_until
from tests.outage import CuttableRelay

pytestmark = pytest.mark.anyio


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe closes


def postgres_error(cls: type[asyncpg.PostgresError], message: str = "gone") -> asyncpg.PostgresError:
    return cls.new({"M": message, "C": cls.sqlstate, "S": "FATAL"})  # as asyncpg builds them


@pytest.mark.parametrize(
    "exc",
    [
        postgres_error(asyncpg.AdminShutdownError),
        postgres_error(asyncpg.CrashShutdownError),
        postgres_error(asyncpg.CannotConnectNowError),
        postgres_error(asyncpg.TooManyConnectionsError),
        postgres_error(asyncpg.ConnectionFailureError),
        postgres_error(asyncpg.ConnectionDoesNotExistError),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
        asyncpg.InterfaceError("pool is closing"),
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_postgresql_going_away_is_an_outage(exc):
    assert unavailable(exc) == POSTGRESQL


@pytest.mark.parametrize(
    "exc",
    [
        postgres_error(asyncpg.ProtocolViolationError),  # a fault of the client, not of the server
        postgres_error(asyncpg.QueryCanceledError),
        postgres_error(asyncpg.UniqueViolationError),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.InternalClientError("unexpected message"),
        ConnectionRefusedError(111, "refused by something else"),  # raised by neither client
        TimeoutError(),
        RuntimeError("boom"),
    ],
    ids=lambda exc: f"{type(exc).__name__}:{exc}"[:40],
)
def test_faults_are_no_outage(exc):
    assert unavailable(exc) is None


@pytest.mark.parametrize(
    "exc",
    [redis_errors.ConnectionError("refused"), redis_errors.TimeoutError(), redis_errors.BusyLoadingError()],
)
def test_redis_going_away_is_an_outage(exc):
    assert unavailable(exc) == REDIS


def test_a_redis_reply_error_is_no_outage():
    assert unavailable(redis_errors.ResponseError("WRONGTYPE")) is None


async def test_a_refused_connection_is_the_outage_of_the_client_that_made_it():
    port = closed_port()
    with pytest.raises(OSError) as refused:
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", timeout=5)
    assert unavailable(refused.value) == POSTGRESQL
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=5)
    try:
        with pytest.raises(redis_errors.ConnectionError) as refused_too:
            await client.ping()
    finally:
        await client.aclose()
    assert unavailable(refused_too.value) == REDIS


async def test_a_query_that_runs_out_of_time_is_an_outage(pool):
    with pytest.raises(asyncio.TimeoutError) as slow:
        await pool.fetchval("SELECT pg_sleep(5)", timeout=0.05)
    assert unavailable(slow.value) == POSTGRESQL


async def test_waiting_too_long_for_a_pooled_connection_is_an_outage(settings):
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire():  # the only connection, taken
            with pytest.raises(asyncio.TimeoutError) as starved:
                await pool.acquire(timeout=0.05)
    finally:
        await pool.close()
    assert unavailable(starved.value) == POSTGRESQL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestOutageLog:
    def lines(self, caplog) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "test.outages"]

    def test_one_line_when_an_outage_begins_however_many_requests_it_fails(self, caplog):
        clock = Clock()
        log = OutageLog(logging.getLogger("test.outages"), clock=clock)
        with caplog.at_level(logging.WARNING, "test.outages"):
            for _ in range(50):
                log.failed(POSTGRESQL, ConnectionRefusedError(111, "Connection refused"))
                clock.now += 0.5
        assert self.lines(caplog) == [
            "PostgreSQL unavailable (ConnectionRefusedError: [Errno 111] Connection refused);"
            " answering 503 while it lasts"
        ]

    def test_a_reminder_a_minute_while_it_lasts_counting_the_failures_between(self, caplog):
        clock = Clock()
        log = OutageLog(logging.getLogger("test.outages"), clock=clock)
        with caplog.at_level(logging.WARNING, "test.outages"):
            for _ in range(61):
                log.failed(REDIS, redis_errors.ConnectionError("refused"))
                clock.now += 1
        lines = self.lines(caplog)
        assert len(lines) == 2
        assert lines[1].startswith("Redis still unavailable: 60 more requests answered 503 in the last 60 s")

    def test_a_service_quiet_for_a_while_is_back_and_its_next_failure_is_a_new_outage(self, caplog):
        clock = Clock()
        log = OutageLog(logging.getLogger("test.outages"), clock=clock, quiet=10)
        with caplog.at_level(logging.WARNING, "test.outages"):
            log.failed(POSTGRESQL, None)
            log.failed(REDIS, None)  # another service: its own outage
            clock.now += 11
            log.failed(POSTGRESQL, None)
        assert len(self.lines(caplog)) == 3


async def test_a_consumer_waits_out_a_postgresql_outage_longer_than_its_retries_and_dead_letters_nothing(
    messaging, counters_settings, caplog
):
    """Events that fail only because PostgreSQL is away are not the events' fault: they wait for it
    (one log line), use up none of their retries, and are applied once it is back."""
    relay = CuttableRelay(counters_settings.database_url).start()
    try:
        behind_relay = msgspec.structs.replace(counters_settings, database_url=relay.url())
        cut_off = await Messaging.open(behind_relay, [counters])
        try:
            async with running(Supervisor({"consumer": cut_off.consumer("counters.totals").run})):
                await asyncio.sleep(0.5)  # the consumer has created its groups and read its dead letters
                with relay.down():
                    expected = await make_counters(messaging.bus, 6, 2)  # straight to the database
                    while await messaging.relay("counters").relay_once():
                        pass
                    # Far longer than the retries take (4 attempts, at most 0.4 s apart).
                    await asyncio.sleep(3 * messaging.config.retry_attempts * messaging.config.retry_cap)
                pool = messaging.pool_of("counters")
                want = {c: list(range(1, v + 1)) for c, v in expected.items()}

                async def applied() -> bool:
                    got = await totals(pool)
                    return {c: got.get(c, (0, []))[1] for c in want} == want

                await wait_until(applied, timeout=30)
        finally:
            await cut_off.close()
    finally:
        relay.stop()
    assert await pool.fetchval("SELECT count(*) FROM bus.dead_letters") == 0
    assert not [r for r in caplog.records if "failed (attempt" in r.getMessage()]  # no retry used up
    waits = [r for r in caplog.records if "unavailable; events wait for it" in r.getMessage()]
    assert 1 <= len(waits) <= messaging.config.partitions  # a line per partition worker, not per event
