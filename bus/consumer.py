"""Named consumers over a context's partition streams: leases, delivery, retries, dead letters.

Each consumer is one Redis consumer group. Each partition stream is leased to one process at a time
and read under the group-consumer name `p<partition>`, so whoever holds the lease first re-reads the
partition's pending entries — including those a dead holder left behind. Entries are applied in
batches, set-based (see `bus.inbox`), one transaction per batch (one per event when a batch fails), and
acknowledged only after commit. A failing event is retried with backoff while only its aggregate's later events wait; after
the last attempt it is stored as a dead letter, then acknowledged.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import asyncpg
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bus import deadletters
from bus.config import BusConfig
from bus.inbox import PARKED, Inbox
from bus.lease import Lease
from bus.messages import Envelope, envelope_decoder
from bus.reconciler import Reconciler
from bus.retry import backoff
from observability import metrics
from observability.logging import correlation_id
from observability.spans import processing

log = logging.getLogger("shopstream.consumer")


@dataclass
class _Waiting:
    """An aggregate whose head event is being retried; its later entries queue behind it."""

    entries: deque[tuple[bytes, Envelope]]
    attempts: int = 0
    first_failure: datetime | None = None
    error: str = ""
    delays: list[float] = field(default_factory=list)


class Consumer:
    """One projection's consumer in this process: a worker per partition it holds the lease of."""

    def __init__(
        self, inbox: Inbox, pool: asyncpg.Pool, redis: Redis, config: BusConfig, owner: str | None = None
    ) -> None:
        self.inbox = inbox
        self.name = inbox.name
        self.context = inbox.outbox.context  # whose streams it reads
        self.pool = pool
        self.redis = redis
        self.config = config
        self.owner = owner or uuid.uuid4().hex
        self.blocked: set[str] = set()
        self.workers: dict[int, PartitionWorker] = {}
        self._counters = {
            outcome: metrics.events_processed.labels(self.name, outcome)
            for outcome in ("ok", "duplicate", "healed", "parked", "retried", "dead_lettered")
        }
        self._lag = metrics.end_to_end_lag.labels(self.name)
        self.reclaimed = metrics.reclaimed.labels(self.name)
        metrics.redelivered.labels(self.name)  # at zero until the reconciler delivers again

    def stream(self, partition: int) -> str:
        return self.config.stream(self.context, partition)

    async def ensure_groups(self) -> None:
        for partition in range(self.config.partitions):
            try:
                await self.redis.xgroup_create(self.stream(partition), self.name, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self, stopping: asyncio.Event) -> None:
        await self.ensure_groups()
        self.blocked = await deadletters.blocked_aggregates(self.pool, self.name)
        async with anyio.create_task_group() as tg:
            for partition in range(self.config.partitions):
                tg.start_soon(self._hold, partition, stopping)

    async def _hold(self, partition: int, stopping: asyncio.Event) -> None:
        """Take the partition's lease whenever it is free, and work it while held."""
        lease = Lease(
            self.redis,
            f"{self.config.redis_prefix}.lease.{self.name}.{partition}",
            self.owner,
            self.config.lease_ttl,
        )
        while not stopping.is_set():
            if await lease.acquire():
                worker = self.workers[partition] = PartitionWorker(self, partition, lease)
                try:
                    await worker.run(stopping)
                finally:
                    del self.workers[partition]
                    await lease.release()
            else:
                with anyio.move_on_after(self.config.lease_ttl / 3):
                    await stopping.wait()

    def count(self, outcome: str, envelope: Envelope | None = None) -> None:
        self._counters[outcome].inc()
        if envelope is not None and outcome != "duplicate":
            self._lag.observe(max(0.0, (datetime.now(UTC) - envelope.occurred_at).total_seconds()))


class PartitionWorker:
    def __init__(self, consumer: Consumer, partition: int, lease: Lease) -> None:
        self.consumer = consumer
        self.inbox = consumer.inbox
        self.config = consumer.config
        self.redis = consumer.redis
        self.pool = consumer.pool
        self.stream = consumer.stream(partition)
        self.group = consumer.name
        self.name = f"p{partition}"
        self.partition = partition
        self.lease = lease
        self.waiting: dict[str, _Waiting] = {}
        self._due: list[tuple[float, str]] = []  # (monotonic time, aggregate id) heap
        self._in_flight: set[bytes] = set()
        self._to_ack: list[bytes] = []
        self.reconciler = (
            Reconciler(consumer.inbox, consumer.pool, consumer.redis, consumer.config)
            if partition == 0
            else None
        )

    async def run(self, stopping: asyncio.Event) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_lease, tg.cancel_scope)
            await self._work(stopping)
            tg.cancel_scope.cancel()

    async def _keep_lease(self, scope: anyio.CancelScope) -> None:
        """Renew in the background, so that a long batch cannot outlive the lease unnoticed."""
        while True:
            await anyio.sleep(self.config.lease_ttl / 3)
            if not await self.lease.renew():
                log.warning("%s/%s: lease lost; leaving the partition", self.group, self.name)
                scope.cancel()  # what did not commit is re-delivered to the next holder
                return

    async def _work(self, stopping: asyncio.Event) -> None:
        next_reclaim = time.monotonic() + self.config.reclaim_idle / 2
        # Only partition 0 reconciles; the others must not wake for a chore they never run.
        next_reconcile = time.monotonic() + self.config.reconcile_interval if self.reconciler else math.inf
        await self._read_own_pending()
        while not stopping.is_set():
            now = time.monotonic()
            await self._retry_due()
            if now >= next_reclaim:
                await self._reclaim()
                next_reclaim = now + self.config.reclaim_idle / 2
            if self.reconciler is not None and now >= next_reconcile:
                await self.reconciler.run_once()
                next_reconcile = now + self.config.reconcile_interval
            block_ms = self._block_ms(min(next_reclaim, next_reconcile))
            reply: Any = await self.redis.xreadgroup(
                self.group, self.name, {self.stream: ">"}, count=self.config.read_batch, block=block_ms
            )
            if reply:
                await self.handle(reply[0][1])

    def _block_ms(self, next_chore: float) -> int:
        wake = min([next_chore, *(due for due, _ in self._due[:1])])
        return max(1, min(1000, int((wake - time.monotonic()) * 1000)))

    async def _read_own_pending(self) -> None:
        """Entries delivered to this partition's name but never acknowledged (a holder died)."""
        last = "0"
        while True:
            reply: Any = await self.redis.xreadgroup(
                self.group, self.name, {self.stream: last}, count=self.config.read_batch
            )
            entries = reply[0][1] if reply else []
            if not entries:
                return
            last = entries[-1][0]
            await self.handle(entries)

    async def _reclaim(self) -> None:
        """Re-deliver entries idle past the threshold (a handler that hung, a lost in-memory retry)."""
        idle_ms = int(self.config.reclaim_idle * 1000)
        start = "0-0"
        while True:
            claimed: Any = await self.redis.xautoclaim(
                self.stream, self.group, self.name, idle_ms, start_id=start, count=self.config.read_batch
            )
            # Redis 7 adds the ids of entries deleted meanwhile; 6.2 does not.
            start, entries, *rest = claimed
            deleted = rest[0] if rest else []
            fresh = [e for e in entries if e[0] not in self._in_flight]
            if fresh:
                self.consumer.reclaimed.inc(len(fresh))
                await self.handle(fresh)
            if deleted:
                await self.redis.xack(self.stream, self.group, *deleted)
            if start in (b"0-0", "0-0"):
                return

    async def handle(self, entries: list[Any]) -> None:
        """Apply a batch of stream entries; acknowledge what committed."""
        ready: list[tuple[bytes, Envelope]] = []
        for entry_id, fields in entries:
            if not fields or b"e" not in fields:
                self._to_ack.append(entry_id)  # trimmed or foreign entry: nothing to apply
                continue
            envelope = envelope_decoder.decode(fields[b"e"])
            waiting = self.waiting.get(envelope.aggregate_id)
            if waiting is not None:
                waiting.entries.append((entry_id, envelope))
                self._in_flight.add(entry_id)
            else:
                ready.append((entry_id, envelope))
        if ready:
            await self._apply_batch(ready)
        await self._flush_acks()

    async def _apply_batch(self, batch: list[tuple[bytes, Envelope]]) -> None:
        if len(batch) > 1:
            envelopes = [envelope for _, envelope in batch]
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    with self._processing_all(envelopes):
                        outcomes = await self.inbox.apply_batch(conn, envelopes, self.consumer.blocked)
            except Exception:
                pass  # one of them fails: apply one by one to find it
            else:
                for (entry_id, envelope), outcome in zip(batch, outcomes, strict=True):
                    if outcome != PARKED:
                        self.consumer.blocked.discard(envelope.aggregate_id)
                    self._done(entry_id, envelope, outcome)
                return
        for entry_id, envelope in batch:
            if envelope.aggregate_id in self.waiting:
                self.waiting[envelope.aggregate_id].entries.append((entry_id, envelope))
                self._in_flight.add(entry_id)
            else:
                await self._apply_one(entry_id, envelope)

    @contextmanager
    def _processing_all(self, envelopes: list[Envelope]) -> Iterator[None]:
        """Each event's span, open for the whole batch: its events are applied together, set-based."""
        with ExitStack() as spans:
            for e in envelopes:
                spans.enter_context(processing(self.stream, self.group, e.event_id, e.traceparent))
            yield

    async def _apply_one(self, entry_id: bytes, envelope: Envelope, waiting: _Waiting | None = None) -> bool:
        token = correlation_id.set(envelope.correlation_id)
        try:
            with processing(self.stream, self.group, envelope.event_id, envelope.traceparent):
                async with self.pool.acquire() as conn, conn.transaction():
                    if envelope.aggregate_id in self.consumer.blocked:
                        outcome = await self.inbox.apply_unless_blocked(conn, envelope)
                    else:
                        outcome = await self.inbox.apply(conn, envelope)
        except Exception as exc:
            self._failed(entry_id, envelope, exc, waiting)
            return False
        finally:
            correlation_id.reset(token)
        if outcome != PARKED:
            self.consumer.blocked.discard(envelope.aggregate_id)
        self._done(entry_id, envelope, outcome)
        return True

    def _done(self, entry_id: bytes, envelope: Envelope, outcome: str) -> None:
        self._to_ack.append(entry_id)
        self._in_flight.discard(entry_id)
        self.consumer.count(outcome, envelope)

    def _failed(self, entry_id: bytes, envelope: Envelope, exc: Exception, waiting: _Waiting | None) -> None:
        aggregate_id = envelope.aggregate_id
        if waiting is None:
            waiting = self.waiting[aggregate_id] = _Waiting(entries=deque([(entry_id, envelope)]))
            self._in_flight.add(entry_id)
        waiting.attempts += 1
        waiting.first_failure = waiting.first_failure or datetime.now(UTC)
        waiting.error = f"{type(exc).__name__}: {exc}"
        exhausted = waiting.attempts >= self.config.retry_attempts
        delay = 0.0 if exhausted else backoff(waiting.attempts, self.config.retry_base, self.config.retry_cap)
        waiting.delays.append(delay)
        heapq.heappush(self._due, (time.monotonic() + delay, aggregate_id))
        self.consumer.count("retried")
        log.warning(
            "%s: %s v%d failed (attempt %d/%d), retrying in %.2fs: %s",
            self.group, aggregate_id, envelope.aggregate_version, waiting.attempts,
            self.config.retry_attempts, delay, waiting.error,
        )  # fmt: skip

    async def _retry_due(self) -> None:
        now = time.monotonic()
        while self._due and self._due[0][0] <= now:
            _, aggregate_id = heapq.heappop(self._due)
            waiting = self.waiting.get(aggregate_id)
            if waiting is None:
                continue
            entry_id, envelope = waiting.entries[0]
            if waiting.attempts >= self.config.retry_attempts:
                await self._dead_letter(aggregate_id, waiting)
            elif await self._apply_one(entry_id, envelope, waiting):
                await self._release(aggregate_id, waiting)
        await self._flush_acks()

    async def _release(self, aggregate_id: str, waiting: _Waiting) -> None:
        """The head succeeded: its followers go on, in order, until one fails and waits again."""
        waiting.entries.popleft()
        del self.waiting[aggregate_id]
        followers = waiting.entries
        while followers:
            entry_id, envelope = followers.popleft()
            if not await self._apply_one(entry_id, envelope):
                self.waiting[aggregate_id].entries.extend(followers)
                return

    async def _dead_letter(self, aggregate_id: str, waiting: _Waiting) -> None:
        entry_id, envelope = waiting.entries.popleft()
        assert waiting.first_failure is not None
        async with self.pool.acquire() as conn, conn.transaction():
            await deadletters.store(
                conn, self.group, envelope, waiting.error, waiting.attempts, waiting.first_failure
            )
            for _, follower in waiting.entries:
                await self.inbox.park(conn, follower)
        # Stored first, acknowledged after: a crash in between re-delivers, never loses.
        del self.waiting[aggregate_id]
        self.consumer.blocked.add(aggregate_id)
        self._done(entry_id, envelope, "dead_lettered")
        for follower_id, follower in waiting.entries:
            self._done(follower_id, follower, PARKED)
        log.error("%s: %s v%d dead-lettered after %d attempts: %s", self.group, aggregate_id,
                  envelope.aggregate_version, waiting.attempts, waiting.error)  # fmt: skip

    async def _flush_acks(self) -> None:
        if self._to_ack:
            ids, self._to_ack = self._to_ack, []
            await self.redis.xack(self.stream, self.group, *ids)
