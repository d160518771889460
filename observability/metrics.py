"""Every Prometheus instrument of ShopStream, defined once; call sites stay one line.

Labels are bounded: context, command or consumer name, outcome, stream — never ids. Known label
combinations are created up front (at zero), so every family has series as soon as a process starts.
Gauges say how `api --workers N` combines its processes (`multiprocess_mode`).
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Protocol

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Metric
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


def _version() -> str:
    # Read from the installed distribution: this bottom layer imports nothing of the application.
    try:
        return metadata.version("shopstream")
    except metadata.PackageNotFoundError:
        return "unknown"


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


http_requests = Counter(
    "shopstream_http_requests_total",
    "HTTP requests answered, by route template (never the raw path).",
    ["method", "path", "status_code"],
)
http_request_duration = Histogram(
    "shopstream_http_request_duration_seconds",
    "From a request reaching its route to the end of its response.",
    ["method", "path", "status_code"],
    buckets=_LATENCY_BUCKETS,
)
http_requests_in_progress = Gauge(
    "shopstream_http_requests_in_progress", "HTTP requests being answered.", ["method", "path"],
    multiprocess_mode="livesum",
)  # fmt: skip
RATE_LIMIT_OUTCOMES = ("allowed", "limited", "unchecked")  # unchecked: Redis did not answer, let through
rate_limit_decisions = Counter(
    "shopstream_rate_limit_decisions_total",
    "Requests the per-caller rate limit checked, by kind (read, write) and outcome.",
    ["kind", "outcome"],
)
for _kind in ("read", "write"):
    for _outcome in RATE_LIMIT_OUTCOMES:
        rate_limit_decisions.labels(_kind, _outcome)
build_info = Gauge(
    "shopstream_build_info", "Always 1; the labels name the running build.", ["version", "python"],
    multiprocess_mode="livemax",
)  # fmt: skip
build_info.labels(_version(), platform.python_version()).set(1)
supervisor_restarts = Counter(
    "shopstream_supervisor_restarts_total", "Background tasks restarted after a crash.", ["task"]
)
rebuild_events = Counter(
    "shopstream_rebuild_events_total",
    "Events a projection rebuild replayed from the event log into its shadow tables.",
    ["projection"],
)


def _rebuild_gauge(name: str, doc: str) -> Gauge:
    """A gauge of one projection's rebuild, shown by the process running it while it lives."""
    return Gauge(name, doc, ["projection"], multiprocess_mode="livemax")


rebuild_in_progress = _rebuild_gauge(
    "shopstream_rebuild_in_progress", "1 while this process rebuilds the projection."
)
rebuild_done = _rebuild_gauge(
    "shopstream_rebuild_done_events", "Events of the log a rebuild has replayed so far."
)
rebuild_target = _rebuild_gauge(
    "shopstream_rebuild_target_events", "Events in the log a rebuild replays, as last counted."
)
rebuild_rate = _rebuild_gauge(
    "shopstream_rebuild_rate_events_per_second", "A rebuild's replay rate in its current run."
)
rebuild_remaining = _rebuild_gauge(
    "shopstream_rebuild_remaining_seconds", "A rebuild's estimated time left at its current rate."
)


class RebuildGauges:
    """One projection's rebuild progress, as the gauges above."""

    def __init__(self, projection: str) -> None:
        self._running = rebuild_in_progress.labels(projection)
        self._gauges = (
            rebuild_done.labels(projection),
            rebuild_target.labels(projection),
            rebuild_rate.labels(projection),
            rebuild_remaining.labels(projection),
        )

    def started(self) -> None:
        self._running.set(1)

    def stopped(self) -> None:
        self._running.set(0)

    def report(self, done: int, total: int, rate: float, remaining: float | None) -> None:
        for gauge, value in zip(self._gauges, (done, total, rate, remaining or 0.0), strict=True):
            gauge.set(value)


def rebuild_gauges(projection: str) -> RebuildGauges:
    return RebuildGauges(projection)


class Pool(Protocol):
    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...
    def get_max_size(self) -> int: ...


_POOL_FAMILIES: dict[str, tuple[str, Callable[[Pool], int]]] = {
    "shopstream_db_pool_connections": ("Open connections of a PostgreSQL pool.", lambda p: p.get_size()),
    "shopstream_db_pool_in_use_connections": (
        "Connections of a PostgreSQL pool lent out.",
        lambda p: p.get_size() - p.get_idle_size(),
    ),
    "shopstream_db_pool_max_connections": (
        "Connections a PostgreSQL pool may open.",
        lambda p: p.get_max_size(),
    ),
}


class _PoolGauges(Collector):
    """This process's PostgreSQL pools, read at scrape time; each pool is named by the contexts it
    serves (`catalogue+identity` when they share one database)."""

    def __init__(self) -> None:
        self.pools: dict[str, Pool] = {}
        # Several server processes expose files, not collectors: there each process writes these.
        self.shared = {
            name: Gauge(name, doc, ["pool"], multiprocess_mode="livesum", registry=None)
            for name, (doc, _) in _POOL_FAMILIES.items()
        }

    def watch(self, pools: Mapping[str, Pool]) -> None:
        served: dict[int, list[str]] = {}
        for context, pool in pools.items():
            served.setdefault(id(pool), []).append(context)
        self.pools.update({"+".join(sorted(served[id(p)])): p for p in pools.values()})

    def unwatch(self, pools: Mapping[str, Pool]) -> None:
        gone = {id(p) for p in pools.values()}
        self.pools = {name: p for name, p in self.pools.items() if id(p) not in gone}

    def record(self) -> None:
        """Write the current values to the multiprocess files (call every few seconds)."""
        for family, (_, read) in _POOL_FAMILIES.items():
            for name, pool in self.pools.items():
                self.shared[family].labels(name).set(read(pool))

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(name, doc, labels=["pool"]) for name, (doc, _) in _POOL_FAMILIES.items()]

    def collect(self) -> list[Metric]:
        families = self.describe()
        for family, (_, read) in zip(families, _POOL_FAMILIES.values(), strict=True):
            for name, pool in list(self.pools.items()):
                family.add_metric([name], read(pool))  # type: ignore[attr-defined]
        return families


db_pools = _PoolGauges()
REGISTRY.register(db_pools)


def command_registered(context: str, command: str) -> None:
    """Series of a command at zero before it first runs (its other outcomes appear as they happen)."""
    commands_total.labels(context, command, "ok")
    command_duration.labels(context, command)


def command_finished(context: str, command: str, outcome: str, seconds: float) -> None:
    commands_total.labels(context, command, outcome).inc()
    command_duration.labels(context, command).observe(seconds)
