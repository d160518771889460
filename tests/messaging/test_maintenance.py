"""Housekeeping: idempotency records are kept at least 24 h, then forgotten; backlog gauges follow."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from bus.maintenance import Maintenance
from tests.messaging.counters.model import OpenCounter

pytestmark = pytest.mark.anyio


async def test_old_idempotency_records_go_and_the_backlog_is_measured(messaging):
    pool = messaging.pool_of("counters")
    await pool.execute(
        "INSERT INTO bus.idempotency_keys (key, fingerprint, outcome, created_at) VALUES"
        " ('fresh', 'f', '{}', now() - interval '25 hours'), ('stale', 'f', '{}', now() - interval '3 days')"
    )
    await messaging.bus.execute(OpenCounter(counter_id="c", name="c"))  # one unpublished event

    await Maintenance(pool, [messaging.outboxes["counters"]]).run_once()

    keys = {r["key"] for r in await pool.fetch("SELECT key FROM bus.idempotency_keys")}
    assert keys == {"fresh"}
    assert REGISTRY.get_sample_value("shopstream_outbox_pending", {"context": "counters"}) == 1
    assert (
        REGISTRY.get_sample_value("shopstream_outbox_oldest_pending_age_seconds", {"context": "counters"})
        >= 0
    )
    assert REGISTRY.get_sample_value("shopstream_dead_letters", {"context": "counters"}) == 0


async def test_consumer_groups_report_their_oldest_pending_entry(messaging):
    consumer = messaging.consumer("counters.totals")
    await consumer.ensure_groups()
    stream = consumer.stream(0)
    await messaging.redis.xadd(stream, {"e": b"{}"})
    await messaging.redis.xreadgroup(consumer.name, "p0", {stream: ">"}, count=1)  # delivered, not acked

    await Maintenance(
        messaging.pool_of("counters"), [], redis=messaging.redis, groups=[(stream, consumer.name)]
    ).run_once()

    labels = {"stream": stream, "group": consumer.name}
    assert REGISTRY.get_sample_value("shopstream_pending_entry_max_idle_seconds", labels) >= 0
