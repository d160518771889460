"""One anyio task group runs the relays and consumers; a task that crashes is restarted with backoff.

`stop()` asks every task to stop reading and finish what it holds; tasks still running after the
grace period are cancelled (work not committed by then is re-delivered later, never lost).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

import anyio

from bus.outages import unavailable
from observability import metrics, spans

log = logging.getLogger("shopstream.supervisor")

Task = Callable[[asyncio.Event], Awaitable[None]]


class Supervisor:
    def __init__(
        self,
        tasks: Mapping[str, Task],
        shutdown_grace: float = 8.0,
        max_backoff: float = 30.0,
        first_backoff: float = 0.5,
    ) -> None:
        self.tasks = dict(tasks)
        self.shutdown_grace = shutdown_grace
        self.max_backoff = max_backoff
        self.first_backoff = first_backoff
        self.stopping = asyncio.Event()
        self.restarts: dict[str, int] = dict.fromkeys(self.tasks, 0)
        self._restarted = {name: metrics.supervisor_restarts.labels(name) for name in self.tasks}
        self._running = 0
        self._idle = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        with spans.background():
            await self._run()

    async def _run(self) -> None:
        async with anyio.create_task_group() as tg:
            for name, task in self.tasks.items():
                self._running += 1
                tg.start_soon(self._supervise, name, task)
            await self.stopping.wait()
            with anyio.move_on_after(self.shutdown_grace):
                await self._idle.wait()
            tg.cancel_scope.cancel()
        log.info("supervisor stopped")

    async def _supervise(self, name: str, task: Task) -> None:
        delay = self.first_backoff
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                failure: Exception | None = None
                try:
                    await task(self.stopping)
                    if self.stopping.is_set():
                        return
                except Exception as exc:
                    failure = exc
                if time.monotonic() - started >= self.max_backoff:
                    delay = self.first_backoff  # it had recovered: a new failure starts the backoff anew
                if failure is None:
                    log.warning("%s returned unexpectedly; restarting in %.1fs", name, delay)
                elif service := unavailable(failure):  # an outage, not a bug: one line, no traceback
                    log.warning("%s stopped: %s unavailable (%s); restarting in %.1fs", name, service,
                                type(failure).__name__, delay)  # fmt: skip
                else:
                    log.error("%s crashed; restarting in %.1fs", name, delay, exc_info=failure)
                self.restarts[name] += 1
                self._restarted[name].inc()
                with anyio.move_on_after(delay):
                    await self.stopping.wait()
                delay = min(delay * 2, self.max_backoff)
        finally:
            self._running -= 1
            if self._running == 0:
                self._idle.set()
