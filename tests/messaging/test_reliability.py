"""Processes and servers die at awkward moments; no event is lost and none is applied twice.

Killed processes are real subprocesses (`tests/messaging/proc.py`) sharing this test's database and
Redis key prefix. Where a test needs the consumer to be busy, the test publishes the events itself
before the worker starts, so the worker's first read is a whole partition, applied slowly (`delay`
knob) in one transaction that stays pending in Redis until it commits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import msgspec
import pytest

from bus.supervisor import Supervisor
from shopstream.bootstrap import Messaging
from shopstream.embedded import EmbeddedServers
from shopstream.settings import Settings
from tests.messaging.counters import module as counters
from tests.messaging.counters.model import Increment
from tests.messaging.helpers import make_counters, running, totals, unpublished, wait_until
from tests.messaging.proc import CRASH_EXIT_CODE

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
GROUP = "counters.totals"


def proc_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `Settings.from_env()` in the subprocess equal `settings`."""
    env = dict(os.environ)
    for field in msgspec.structs.fields(Settings):
        env.pop(field.encode_name, None)
    return env | settings.to_env()


@asynccontextmanager
async def spawned(settings: Settings, mode: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.messaging.proc", mode, cwd=ROOT, env=proc_env(settings)
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def publish_all(messaging: Messaging) -> None:
    relay = messaging.relay("counters")
    while await relay.relay_once():
        pass


async def set_delay(messaging: Messaging, seconds: float | None) -> None:
    pool = messaging.pool_of("counters")
    await pool.execute("DELETE FROM counters.knobs WHERE name = 'delay'")
    if seconds is not None:
        await pool.execute("INSERT INTO counters.knobs (name, value) VALUES ('delay', $1)", seconds)


def streams(messaging: Messaging) -> list[str]:
    return [messaging.config.stream("counters", p) for p in range(messaging.config.partitions)]


async def stream_length(messaging: Messaging) -> int:
    return sum([await messaging.redis.xlen(stream) for stream in streams(messaging)])


async def pending(messaging: Messaging) -> int:
    return sum([(await messaging.redis.xpending(s, GROUP))["pending"] for s in streams(messaging)])


async def increment_all(messaging: Messaging, expected: dict[str, int], rounds: int) -> None:
    for _ in range(rounds):
        await asyncio.gather(*(messaging.bus.execute(Increment(counter_id=c)) for c in expected))
        for counter_id in expected:
            expected[counter_id] += 1
        await asyncio.sleep(0.05)


async def settled(messaging: Messaging, expected: dict[str, int]) -> bool:
    """Every counter's last version is applied and the outbox is fully published."""
    pool = messaging.pool_of("counters")
    got = await totals(pool)
    reached = all(got.get(c, (0, []))[1][-1:] == [v] for c, v in expected.items())
    return reached and await unpublished(pool) == 0


async def assert_applied_once(messaging: Messaging, expected: dict[str, int]) -> None:
    """Each counter holds every version exactly once, in order (and the total of its increments)."""
    got = await totals(messaging.pool_of("counters"))
    want = {c: (v - 1, list(range(1, v + 1))) for c, v in expected.items()}
    assert {c: got.get(c) for c in expected} == want
    assert await unpublished(messaging.pool_of("counters")) == 0


async def test_relay_killed_between_xadd_and_commit_delivers_twice_but_applies_once(
    messaging, counters_settings
):
    expected = await make_counters(messaging.bus, 10, 3)
    events = sum(expected.values())

    async with spawned(counters_settings, "crash-relay") as proc:
        assert await asyncio.wait_for(proc.wait(), 20) == CRASH_EXIT_CODE
    assert await unpublished(messaging.pool_of("counters")) == events  # the mark never committed
    assert await stream_length(messaging) == events  # but the entries were added

    async with running(messaging.supervisor()):
        await wait_until(lambda: settled(messaging, expected))
    await assert_applied_once(messaging, expected)
    assert await stream_length(messaging) >= 2 * events  # every event was delivered at least twice


async def test_consumer_killed_with_pending_entries_is_taken_over_and_applied_once(
    messaging, counters_settings
):
    expected = await make_counters(messaging.bus, 30, 7)
    await publish_all(messaging)
    await messaging.consumer(GROUP).ensure_groups()
    await set_delay(messaging, 0.02)

    async with spawned(counters_settings, "worker") as proc:
        await wait_until(lambda: _has_pending(messaging))  # the worker is inside a batch
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
    assert await pending(messaging) > 0  # delivered to the dead worker, never acknowledged

    await set_delay(messaging, None)
    async with running(messaging.supervisor()):  # takes the leases over once they expire
        await wait_until(lambda: settled(messaging, expected))
    await assert_applied_once(messaging, expected)
    assert await pending(messaging) == 0


async def _has_pending(messaging: Messaging) -> bool:
    return await pending(messaging) > 0


async def test_redis_stopped_while_relaying_and_restarted_loses_nothing_and_applies_nothing_twice(
    counters_settings, tmp_path
):
    servers = [EmbeddedServers(tmp_path)]
    try:
        url = servers[0].redis_url()  # redis-server with its append-only file on, in tmp_path
        settings = msgspec.structs.replace(counters_settings, redis_url=url)
        messaging = await Messaging.open(settings, [counters])
        try:
            built = messaging.supervisor()
            # Consumers crash while Redis is down; restart them within a second, not 30.
            supervisor = Supervisor(built.tasks, built.shutdown_grace, max_backoff=1.0)
            async with running(supervisor):
                expected = await make_counters(messaging.bus, 8, 2)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(increment_all, messaging, expected, 5)  # relaying while Redis stops
                    await anyio.to_thread.run_sync(servers[0].stop_redis)
                await increment_all(messaging, expected, 3)  # commands need PostgreSQL only
                assert await unpublished(messaging.pool_of("counters")) >= 3 * len(expected)

                servers.append(EmbeddedServers(tmp_path))  # the same directory: its append-only file
                assert await anyio.to_thread.run_sync(servers[1].redis_url) == url
                await wait_until(lambda: settled(messaging, expected), timeout=40)
            await assert_applied_once(messaging, expected)
        finally:
            await messaging.close()
    finally:
        for server in servers:
            server.stop_redis()


async def test_sigterm_while_busy_exits_0_within_10s_and_nothing_is_lost_or_applied_twice(
    messaging, counters_settings
):
    expected = await make_counters(messaging.bus, 40, 11)  # ~120 a partition: more than one read
    await publish_all(messaging)
    await messaging.consumer(GROUP).ensure_groups()
    await set_delay(messaging, 0.01)

    async with spawned(counters_settings, "worker") as proc:
        await wait_until(lambda: _has_pending(messaging))  # the worker is inside a batch
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0

    await set_delay(messaging, None)
    async with running(messaging.supervisor()):
        await wait_until(lambda: settled(messaging, expected))
    await assert_applied_once(messaging, expected)
