"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, get

from shopstream.bootstrap import Resources
from shopstream.problems import Problem


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


@get("/health", operation_id="health", tags=["operations"], summary="Liveness")
async def health() -> Health:
    """The process is up; touches no backing service."""
    return Health(status="ok")


@get("/ready", operation_id="ready", tags=["operations"], summary="Readiness")
async def ready(request: Request[Any, Any, Any]) -> Readiness:
    """PostgreSQL and Redis both answer; otherwise 503 naming the one that does not."""
    resources: Resources = request.app.state.resources
    timeout = resources.settings.ready_timeout
    failing = []
    try:
        for pool in {id(p): p for p in resources.pools.values()}.values():
            await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout)
    except Exception:
        failing.append("PostgreSQL")
    try:
        assert resources.redis is not None
        await asyncio.wait_for(resources.redis.ping(), timeout)
    except Exception:
        failing.append("Redis")
    if failing:
        raise Problem(
            503,
            f"{' and '.join(failing)} unreachable.",
            kind="not-ready",
            headers={"Retry-After": "5"},
            failing=failing,
        )
    return Readiness(status="ready", checks={"postgresql": "ok", "redis": "ok"})
