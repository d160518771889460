"""Fixtures of the messaging suite: each test gets its own database and Redis key prefix, migrated for
the test-only counters context, with short timings so retries and leases play out in seconds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from shopstream.bootstrap import Messaging, migration_plan
from shopstream.migrate import migrate_all
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
async def counters_settings(create_database, redis_url: str, redis_prefix: str, tmp_path) -> Settings:
    settings = Settings(
        database_url=create_database("msg"),
        redis_url=redis_url,
        redis_prefix=f"{redis_prefix}-{uuid.uuid4().hex[:8]}",
        data_dir=str(tmp_path),
        **FAST,  # type: ignore[arg-type]
    )
    await migrate_all(migration_plan(settings, [counters]))
    return settings


@pytest.fixture
async def messaging(counters_settings: Settings) -> AsyncIterator[Messaging]:
    opened = await Messaging.open(counters_settings, [counters])
    yield opened
    await opened.close()
