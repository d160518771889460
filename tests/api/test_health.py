"""Liveness and readiness."""

import signal

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from shopstream.app import create_app
from shopstream.health import Drain

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


async def test_ready_is_503_as_soon_as_shutdown_begins(settings):
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/ready")).status_code == 200
        app.state.drain.begin()
        response = await client.get("/ready")
        assert (await client.get("/health")).status_code == 200
    assert response.status_code == 503
    assert response.json()["type"] == "urn:shopstream:problem:draining"


def test_a_shutdown_signal_begins_the_drain_and_still_reaches_the_server():
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        drain = Drain()
        restore = drain.on_shutdown_signals()
        signal.raise_signal(signal.SIGTERM)
        assert drain.begun
        assert received == [signal.SIGTERM]
        restore()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
