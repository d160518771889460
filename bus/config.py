"""Tunables of the messaging core, filled from the application's settings."""

from __future__ import annotations

import msgspec


class BusConfig(msgspec.Struct, frozen=True, kw_only=True):
    redis_prefix: str = "shopstream"
    partitions: int = 4
    relay_batch: int = 2000  # rows a relay claims and XADDs in one pipeline
    relay_poll_interval: float = 5.0
    stream_maxlen: int = 1_000_000
    command_attempts: int = 3
    max_mailboxes: int = 10_000
    mailbox_capacity: int = 100
    retry_base: float = 0.2
    retry_cap: float = 30.0
    retry_attempts: int = 8
    read_batch: int = 100
    linger: float = (
        0.005  # after a relay claim or consumer read short of a batch, pause (seconds) before the next
    )
    reclaim_idle: float = 60.0
    isolated: tuple[str, ...] = ()  # projections with a consumer group of their own
    reconcile_grace: float = 30.0
    reconcile_interval: float = 10.0
    lease_ttl: float = 10.0
    shutdown_grace: float = 8.0

    def stream(self, context: str, partition: int) -> str:
        return f"{self.redis_prefix}.{context}.{partition}"
