"""Fixtures of the messaging suite: each test gets its own database and Redis key prefix, migrated for
the test-only counters context, with short timings so retries and leases play out in seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shopstream.bootstrap import Messaging
from shopstream.settings import Settings
from tests.messaging.counters import module as counters

FAST = {
    "partitions": 4,
    "retry_base": 0.05,
    "retry_cap": 0.4,
    "retry_attempts": 4,
    "reclaim_idle": 2.0,
    "reconcile_grace": 1.0,
    "lease_ttl": 2.0,
}


@pytest.fixture
async def counters_settings(context_settings) -> Settings:
    return await context_settings("msg", [counters], **FAST)


@pytest.fixture
async def messaging(counters_settings: Settings) -> AsyncIterator[Messaging]:
    opened = await Messaging.open(counters_settings, [counters])
    yield opened
    await opened.close()
