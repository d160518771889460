"""Which failures are outages of PostgreSQL or Redis (503, retried later) and which stay faults (500);
and how an outage is logged: once, then a reminder a minute, not a line per failed request."""

from __future__ import annotations

import asyncio
import logging
import socket

import asyncpg
import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from bus.outages import POSTGRESQL, REDIS, OutageLog, unavailable

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
