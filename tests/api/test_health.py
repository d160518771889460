"""Liveness and readiness."""

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from shopstream.app import create_app

pytestmark = pytest.mark.anyio


async def test_health_and_ready_answer_200_when_services_are_up(settings):
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"postgresql": "ok", "redis": "ok"}


async def test_ready_is_503_naming_redis_when_it_is_unreachable(settings):
    unreachable = msgspec.structs.replace(settings, redis_url="redis://127.0.0.1:1/0", ready_timeout=0.5)
    async with AsyncTestClient(app=create_app(unreachable)) as client:
        assert (await client.get("/health")).status_code == 200
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"]
    body = response.json()
    assert body["failing"] == ["Redis"]
    assert "Redis" in body["detail"]
