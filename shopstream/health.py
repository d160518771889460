"""Liveness and readiness probes, and the drain that turns readiness off as soon as shutdown begins."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, get

from shopstream.bootstrap import Resources
from shopstream.problems import Problem

_SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Drain:
    """Set once the process starts to shut down: `/ready` then answers 503, so a load balancer stops
    sending new requests while the server finishes the ones in hand."""

    def __init__(self) -> None:
        self.begun = False

    def begin(self) -> None:
        self.begun = True

    def on_shutdown_signals(self) -> Callable[[], None]:
        """Chain in front of the server's own SIGTERM/SIGINT handlers (uvicorn installs them before
        the lifespan starts), so the drain begins the moment the signal arrives, not after the
        server has stopped listening. Returns what puts the previous handlers back. Only the main
        thread may install signal handlers; elsewhere this does nothing."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in _SHUTDOWN_SIGNALS}

        def handler(signum: int, frame: Any) -> None:
            self.begin()
            chained = previous[signal.Signals(signum)]
            if callable(chained):
                chained(signum, frame)
            elif chained == signal.SIG_DFL:
                signal.default_int_handler(signum, frame)

        for sig in _SHUTDOWN_SIGNALS:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, chained in previous.items():
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, chained)

        return restore


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


@get("/health", operation_id="health", tags=["operations"], summary="Liveness")
async def health() -> Health:
    """The process is up; touches no backing service."""
    return Health(status="ok")


async def _answers(check: Awaitable[object], within: float) -> bool:
    try:
        await asyncio.wait_for(check, within)
    except Exception:
        return False
    return True


@get("/ready", operation_id="ready", tags=["operations"], summary="Readiness")
async def ready(request: Request[Any, Any, Any]) -> Readiness:
    """PostgreSQL and Redis both answer (checked together, within `SHOPSTREAM_READY_TIMEOUT`, 1 s by
    default); otherwise 503 naming the one that does not. 503 as well once shutdown has begun."""
    if request.app.state.drain.begun:
        raise Problem(503, "Shutting down.", kind="draining", headers={"Retry-After": "5"}, failing=[])
    resources: Resources = request.app.state.resources
    timeout = resources.settings.ready_timeout
    assert resources.redis is not None
    pools = {id(p): p for p in resources.pools.values()}.values()
    postgres_ok, redis_ok = await asyncio.gather(
        _answers(asyncio.gather(*(pool.fetchval("SELECT 1") for pool in pools)), timeout),
        _answers(resources.redis.ping(), timeout),
    )
    failing = [name for name, ok in (("PostgreSQL", postgres_ok), ("Redis", redis_ok)) if not ok]
    if failing:
        raise Problem(
            503,
            f"{' and '.join(failing)} unreachable.",
            kind="not-ready",
            headers={"Retry-After": "5"},
            failing=failing,
        )
    return Readiness(status="ready", checks={"postgresql": "ok", "redis": "ok"})
