"""The supervisor restarts a crashed task with backoff and stops every task on request."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bus.supervisor import Supervisor

pytestmark = pytest.mark.anyio


async def test_a_crashed_task_is_restarted_with_backoff_and_logged(caplog):
    runs: list[float] = []
    third_run = asyncio.Event()

    async def flaky(stopping: asyncio.Event) -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) <= 2:
            raise RuntimeError(f"crash {len(runs)}")
        third_run.set()
        await stopping.wait()

    supervisor = Supervisor({"flaky": flaky}, shutdown_grace=1.0, first_backoff=0.05, max_backoff=0.2)
    with caplog.at_level(logging.ERROR, logger="shopstream.supervisor"):
        task = asyncio.create_task(supervisor.run())
        await asyncio.wait_for(third_run.wait(), 5)
        supervisor.stop()
        await asyncio.wait_for(task, 5)
    assert supervisor.restarts["flaky"] == 2
    assert runs[2] - runs[1] >= runs[1] - runs[0] > 0  # the delay doubles
    assert [r.getMessage().split(";")[0] for r in caplog.records] == ["flaky crashed", "flaky crashed"]


async def test_a_task_that_ignores_stop_is_cancelled_after_the_grace_period():
    async def stubborn(stopping: asyncio.Event) -> None:
        await asyncio.sleep(3600)

    supervisor = Supervisor({"stubborn": stubborn}, shutdown_grace=0.2)
    task = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0.05)
    supervisor.stop()
    await asyncio.wait_for(task, 5)


async def test_a_task_that_ran_well_for_a_while_restarts_from_the_first_backoff(caplog):
    """Backoff is for a task that keeps crashing; one that had recovered starts again at the first delay."""
    runs = 0
    fifth_run = asyncio.Event()

    async def healthy_then_crashing(stopping: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs > 4:
            fifth_run.set()
            await stopping.wait()
            return
        await asyncio.sleep(0.25)  # longer than the longest backoff: it had recovered
        raise RuntimeError("crash")

    supervisor = Supervisor(
        {"task": healthy_then_crashing}, shutdown_grace=1.0, first_backoff=0.01, max_backoff=0.2
    )
    with caplog.at_level(logging.ERROR, logger="shopstream.supervisor"):
        task = asyncio.create_task(supervisor.run())
        await asyncio.wait_for(fifth_run.wait(), 10)
        supervisor.stop()
        await asyncio.wait_for(task, 5)
    assert [r.getMessage() for r in caplog.records] == ["task crashed; restarting in 0.0s"] * 4
