"""A context keeps a read model of another context's events: the board context's counter board, fed by
the counters context's stream, with its own consumer group, tracking, rebuild and lag metric."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from bus.rebuild import Rebuild
from shopstream.bootstrap import Messaging
from tests.messaging.board import module as board
from tests.messaging.conftest import FAST
from tests.messaging.counters import module as counters
from tests.messaging.counters.model import Increment, OpenCounter

pytestmark = pytest.mark.anyio
MODULES = [counters, board]


@pytest.fixture
async def messaging(context_settings) -> AsyncIterator[Messaging]:
    settings = await context_settings("crossing", MODULES, **FAST)
    opened = await Messaging.open(settings, MODULES)
    yield opened
    await opened.close()


async def board_of(messaging: Messaging, counter_id: str) -> tuple[str, int, int] | None:
    row = await messaging.pool_of("board").fetchrow(
        "SELECT name, total, version FROM board.counter_totals WHERE counter_id = $1", counter_id
    )
    return None if row is None else (row["name"], row["total"], row["version"])


async def until_board(messaging: Messaging, counter_id: str, expected: tuple[str, int, int]) -> None:
    for _ in range(300):
        if await board_of(messaging, counter_id) == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"board shows {await board_of(messaging, counter_id)}, not {expected}")


async def test_a_context_keeps_a_read_model_of_another_contexts_stream(messaging: Messaging):
    inbox = messaging.inboxes["board.counter_board"]
    assert inbox.outbox.context == "counters" and messaging.owners["board.counter_board"] == "board"
    supervisor = messaging.supervisor()
    assert "consumer:board.counter_board" in supervisor.tasks
    running = asyncio.create_task(supervisor.run())
    try:
        counter_id = uuid.uuid4().hex
        await messaging.bus.execute(OpenCounter(counter_id=counter_id, name="visits"))
        for _ in range(3):
            await messaging.bus.execute(Increment(counter_id=counter_id, by=2))
        await until_board(messaging, counter_id, ("visits", 6, 4))
        tracked = await messaging.pool_of("board").fetchval(
            "SELECT version FROM bus.consumer_positions WHERE consumer = $1 AND aggregate_id = $2",
            "board.counter_board",
            counter_id,
        )
        assert tracked == 4  # tracked under its own name, like any projection
    finally:
        supervisor.stop()
        await running


async def test_the_other_contexts_read_model_rebuilds_from_that_contexts_event_log(messaging: Messaging):
    counter_id = uuid.uuid4().hex
    await messaging.bus.execute(OpenCounter(counter_id=counter_id, name="orders"))
    await messaging.bus.execute(Increment(counter_id=counter_id, by=5))
    inbox = messaging.inboxes["board.counter_board"]
    done = await Rebuild(messaging.pool_of("board"), inbox).run()
    assert done.swapped and done.done == 2
    assert await board_of(messaging, counter_id) == ("orders", 5, 2)
