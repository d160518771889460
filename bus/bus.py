"""The command bus: `await bus.execute(command)` runs exactly one handler and returns its result.

Commands for one aggregate run one at a time, in arrival order: each aggregate id has a mailbox
served by one task, which retires when the mailbox is empty. Mailboxes and their queues are bounded;
past the bound `execute` raises `Overloaded` instead of queueing without limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from bus import outages
from bus.config import BusConfig
from bus.errors import ConcurrencyError, Conflict, Overloaded, Unavailable
from bus.messages import Command
from bus.outbox import Outbox
from bus.uow import Meta, UnitOfWork
from observability import metrics, spans
from observability.logging import correlation_id
from observability.tracing import current_traceparent

if TYPE_CHECKING:
    from opentelemetry.trace import Span

Handler = Callable[[Any, UnitOfWork], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    context: str
    handler: Handler
    pool: asyncpg.Pool
    outbox: Outbox


class _Mailbox:
    __slots__ = ("queue", "task")

    def __init__(self) -> None:
        self.queue: deque[tuple[Route, Command, Meta, asyncio.Future[Any]]] = deque()
        self.task: asyncio.Task[None] | None = None


class Bus:
    def __init__(self, config: BusConfig | None = None) -> None:
        self.config = config or BusConfig()
        self._routes: dict[type[Command], Route] = {}
        self._mailboxes: dict[tuple[str, str], _Mailbox] = {}

    def register(self, command_type: type[Command], route: Route) -> None:
        if command_type in self._routes:
            raise ValueError(f"{command_type.__name__} already has a handler")
        self._routes[command_type] = route
        metrics.command_registered(route.context, command_type.__name__)

    def route_of(self, command_type: type[Command]) -> Route:
        return self._routes[command_type]

    async def execute(self, command: Command, meta: Meta | None = None) -> Any:
        route = self._routes.get(type(command))
        if route is None:
            raise LookupError(f"no handler for {type(command).__name__}")
        if meta is None:
            meta = Meta(correlation_id=correlation_id.get(), traceparent=current_traceparent())
        key = (route.context, command.aggregate_id)
        mailbox = self._mailboxes.get(key)
        if mailbox is None:
            if len(self._mailboxes) >= self.config.max_mailboxes:
                raise Overloaded("too many aggregates busy")
            mailbox = self._mailboxes[key] = _Mailbox()
        elif len(mailbox.queue) >= self.config.mailbox_capacity:
            raise Overloaded("too many commands queued for one aggregate")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        mailbox.queue.append((route, command, meta, future))
        if mailbox.task is None:
            mailbox.task = asyncio.create_task(self._serve(key, mailbox))
        return await future  # a caller that goes away cancels its wait, not the queued command

    async def _serve(self, key: tuple[str, str], mailbox: _Mailbox) -> None:
        try:
            while mailbox.queue:
                route, command, meta, future = mailbox.queue.popleft()
                try:
                    result = await self._run(route, command, meta)
                except Exception as exc:
                    if not future.cancelled():
                        future.set_exception(exc)
                else:
                    if not future.cancelled():
                        future.set_result(result)
        finally:
            del self._mailboxes[key]  # retire: the next command for this aggregate starts a new task

    async def _run(self, route: Route, command: Command, meta: Meta) -> Any:
        name = type(command).__name__
        with spans.commanding(route.context, name, meta.traceparent) as span:
            if span is not None:  # the events carry the command's span, a child of the request's
                meta = msgspec.structs.replace(meta, traceparent=current_traceparent())
            return await self._attempt(route, command, meta, span)

    async def _attempt(self, route: Route, command: Command, meta: Meta, span: Span | None) -> Any:
        name = type(command).__name__
        started = time.perf_counter()
        outcome = "error"
        try:
            for attempt in range(1, self.config.command_attempts + 1):
                try:
                    result = await route.handler(command, UnitOfWork(route.pool, route.outbox, meta))
                    outcome = "ok"
                    return result
                except ConcurrencyError:
                    if attempt == self.config.command_attempts:
                        outcome = "conflict"
                        raise Conflict(
                            f"{command.aggregate_id} kept changing; gave up after {attempt} attempts"
                        ) from None
            raise AssertionError("unreachable")
        except Exception as exc:
            if (service := outages.unavailable(exc)) is not None:
                outcome = Unavailable.__name__  # one label for every way PostgreSQL can be away
                raise Unavailable(service) from exc
            if outcome == "error":
                outcome = type(exc).__name__
            raise
        finally:
            metrics.command_finished(route.context, name, outcome, time.perf_counter() - started)
            if span is not None:
                span.set_attribute("shopstream.command.outcome", outcome)
