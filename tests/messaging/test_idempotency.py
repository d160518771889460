"""Idempotency records: what a command kept under its key is recalled for the same request, refused for
another, and absent until the command commits."""

from __future__ import annotations

import uuid

import pytest

from bus import idempotency
from bus.errors import IdempotencyKeyReused
from bus.messages import Outcome, encoder
from bus.uow import Meta
from tests.messaging.counters.model import OpenCounter

pytestmark = pytest.mark.anyio


async def test_the_same_request_recalls_the_outcome_its_command_kept(messaging):
    pool = messaging.pool_of("counters")
    key, counter_id = uuid.uuid4().hex, uuid.uuid4().hex
    assert await idempotency.recall(pool, key, "request") is None

    meta = Meta(correlation_id="t", idempotency_key=key, fingerprint="request")
    outcome = await messaging.bus.execute(OpenCounter(counter_id=counter_id, name="c"), meta)

    assert await idempotency.recall(pool, key, "request") == outcome
    assert outcome == Outcome(aggregate_id=counter_id, version=1, created_id=counter_id)


async def test_another_request_under_a_kept_key_is_refused(messaging):
    pool = messaging.pool_of("counters")
    key = uuid.uuid4().hex
    async with pool.acquire() as conn:
        kept = encoder.encode(Outcome(aggregate_id="a", version=1)).decode()
        await idempotency.remember(conn, key, "first request", kept)
    with pytest.raises(IdempotencyKeyReused):
        await idempotency.recall(pool, key, "another request")
