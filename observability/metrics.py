"""Every Prometheus instrument of ShopStream, defined once; call sites stay one line.

Labels are bounded: context, command or consumer name, outcome, stream — never ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

commands_total = Counter(
    "shopstream_commands_total", "Commands executed, by outcome.", ["context", "command", "outcome"]
)
command_duration = Histogram(
    "shopstream_command_duration_seconds",
    "Time from a command leaving its mailbox to its commit.",
    ["context", "command"],
    buckets=_LATENCY_BUCKETS,
)
outbox_pending = Gauge("shopstream_outbox_pending", "Outbox rows not yet published.", ["context"])
outbox_oldest_pending_age = Gauge(
    "shopstream_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row.", ["context"]
)
relay_published = Counter("shopstream_relay_published_total", "Events published to Redis.", ["context"])
events_processed = Counter(
    "shopstream_events_processed_total",
    "Events handled by consumers: ok, duplicate, retried, dead_lettered, parked.",
    ["consumer", "outcome"],
)
end_to_end_lag = Histogram(
    "shopstream_event_end_to_end_lag_seconds",
    "From an event's occurred_at to its application by a consumer.",
    ["consumer"],
    buckets=_LAG_BUCKETS,
)
consumer_lag = Gauge(
    "shopstream_consumer_lag", "Stream entries not yet delivered to a group.", ["stream", "group"]
)
dead_letters = Gauge("shopstream_dead_letters", "Dead letters waiting for an operator.", ["context"])
pending_idle = Gauge(
    "shopstream_pending_entry_max_idle_seconds",
    "Longest idle time of a pending stream entry.",
    ["stream", "group"],
)
gaps_healed = Counter(
    "shopstream_gaps_healed_total", "Events read from the event log to close a gap.", ["consumer"]
)
reclaimed = Counter("shopstream_reclaimed_total", "Pending entries reclaimed with XAUTOCLAIM.", ["consumer"])
redelivered = Counter(
    "shopstream_reconciler_redelivered_total", "Events the reconciler delivered again.", ["consumer"]
)


def command_finished(context: str, command: str, outcome: str, seconds: float) -> None:
    commands_total.labels(context, command, outcome).inc()
    command_duration.labels(context, command).observe(seconds)
