"""Consumers over a context's partition streams: leases, delivery, retries, dead letters.

Each consumer is one Redis consumer group keeping one or more projections (its members: by default
every projection a context keeps of one source's events, see `groups`). Each partition stream is
leased to one process at a time and read under the group-consumer name `p<partition>`, so whoever holds
the lease first re-reads the partition's pending entries — including those a dead holder left behind.

A read is applied to every member in one transaction, each member set-based (see `bus.inbox`) and
keeping its own tracking, so that any one can be rebuilt, replayed or dead-lettered alone. When that
transaction fails, each member applies the read in a transaction of its own, and a member whose batch
fails again applies it event by event: a failing projection holds back only its own work, never its
siblings'. A failing event is retried with backoff while only that member's later events of its
aggregate wait; after the last attempt it is stored as a dead letter of that member. An entry is
acknowledged once every member is done with it, after the commits (sent with the next read). Under
moderate load a worker whose read returned less than a batch pauses `linger` before reading again, so
that the next read finds a batch: moderate load is applied in batches as a backlog is, while the first
event after a quiet spell is applied at once.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Container, Iterator, Mapping, Sequence
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
from bus.inbox import PARKED, Inbox, apply_together
from bus.lease import Lease
from bus.messages import Envelope, envelope_decoder
from bus.outages import unavailable
from bus.reconciler import Reconciler
from bus.retry import backoff
from observability import metrics
from observability.logging import correlation_id
from observability.spans import processing

log = logging.getLogger("shopstream.consumer")


Entry = tuple[bytes, Envelope]


def groups(
    inboxes: Mapping[str, Inbox], owners: Mapping[str, str], isolated: Container[str] = ()
) -> dict[str, list[Inbox]]:
    """The consumer groups that keep the given projections: one per context and source of events,
    named `<context>.projections` (`<context>.projections.<source>` for another context's events); a
    projection alone in its group, or `isolated` (by setting, or its own `isolated = True`), is a group
    of its own named after it."""
    shared: dict[tuple[str, str], list[Inbox]] = {}
    alone: dict[str, list[Inbox]] = {}
    for name, inbox in inboxes.items():
        if name in isolated or getattr(inbox.projection, "isolated", False):
            alone[name] = [inbox]
        else:
            shared.setdefault((owners[name], inbox.outbox.context), []).append(inbox)
    found = dict(alone)
    for (owner, source), members in shared.items():
        if len(members) == 1:
            found[members[0].name] = members
        else:
            found[f"{owner}.projections" + ("" if source == owner else f".{source}")] = members
    return dict(sorted(found.items()))


@dataclass
class _Waiting:
    """An aggregate whose head event is being retried by one member; its later entries queue behind it."""

    entries: deque[Entry]
    attempts: int = 0  # failures of the event itself; outages of PostgreSQL or Redis do not count
    outages: int = 0
    first_failure: datetime | None = None
    error: str = ""
    delays: list[float] = field(default_factory=list)


class Member:
    """One projection kept by a consumer group: its inbox, the aggregates it holds back, its metrics."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.name = inbox.name
        self.blocked: set[str] = set()  # aggregates with a dead letter of this projection
        self.counters = {
            outcome: metrics.events_processed.labels(self.name, outcome)
            for outcome in ("ok", "duplicate", "healed", "parked", "retried", "dead_lettered")
        }
        self.lag = metrics.end_to_end_lag.labels(self.name)
        metrics.redelivered.labels(self.name)  # at zero until the reconciler delivers again


class Consumer:
    """One consumer group in this process: a worker per partition it holds the lease of."""

    def __init__(
        self,
        inboxes: Inbox | Sequence[Inbox],
        pool: asyncpg.Pool,
        redis: Redis,
        config: BusConfig,
        owner: str | None = None,
        name: str | None = None,
    ) -> None:
        members = [inboxes] if isinstance(inboxes, Inbox) else list(inboxes)
        sources = {inbox.outbox.context for inbox in members}
        if len(sources) != 1:
            raise ValueError(f"a consumer group reads one context's streams, not {sorted(sources)}")
        self.members = [Member(inbox) for inbox in members]
        self.name = name or members[0].name
        self.context = sources.pop()  # whose streams it reads
        self.pool = pool
        self.redis = redis
        self.config = config
        self.owner = owner or uuid.uuid4().hex
        self.workers: dict[int, PartitionWorker] = {}
        self.reclaimed = metrics.reclaimed.labels(self.name)

    @property
    def inbox(self) -> Inbox:
        """The projection of a consumer that keeps one."""
        (member,) = self.members
        return member.inbox

    def stream(self, partition: int) -> str:
        return self.config.stream(self.context, partition)

    async def ensure_groups(self) -> None:
        """Create the group on every partition stream, reading from the start; drop the groups its
        members had of their own before they were kept together (the new group re-delivers all, and
        every member's tracking drops what it already applied)."""
        former = [m.name for m in self.members if m.name != self.name]
        for partition in range(self.config.partitions):
            stream = self.stream(partition)
            try:
                await self.redis.xgroup_create(stream, self.name, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            for name in former:
                await self.redis.xgroup_destroy(stream, name)

    async def run(self, stopping: asyncio.Event) -> None:
        await self.ensure_groups()
        for member in self.members:
            member.blocked = await deadletters.blocked_aggregates(self.pool, member.name)
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

    def count(self, outcome: str, envelope: Envelope | None = None, member: Member | None = None) -> None:
        member = member or self.members[0]
        member.counters[outcome].inc()
        if envelope is not None and outcome != "duplicate":
            member.lag.observe(max(0.0, (datetime.now(UTC) - envelope.occurred_at).total_seconds()))


class _Track:
    """What one partition worker holds back for one member: aggregates waiting on a retry."""

    def __init__(self, member: Member) -> None:
        self.member = member
        self.waiting: dict[str, _Waiting] = {}


class PartitionWorker:
    def __init__(self, consumer: Consumer, partition: int, lease: Lease) -> None:
        self.consumer = consumer
        self.config = consumer.config
        self.redis = consumer.redis
        self.pool = consumer.pool
        self.stream = consumer.stream(partition)
        self.group = consumer.name
        self.name = f"p{partition}"
        self.partition = partition
        self.lease = lease
        self.tracks = [_Track(member) for member in consumer.members]
        self._due: list[tuple[float, int, str]] = []  # (monotonic time, track index, aggregate id) heap
        self._open: dict[bytes, int] = {}  # entry id -> members not yet done with it
        self._to_ack: list[bytes] = []
        self._outage_logged = -math.inf
        self.reconcilers = (
            [
                Reconciler(m.inbox, consumer.pool, consumer.redis, consumer.config, group=consumer.name)
                for m in consumer.members
            ]
            if partition == 0
            else []
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
        next_reconcile = time.monotonic() + self.config.reconcile_interval if self.reconcilers else math.inf
        await self._read_own_pending()
        while not stopping.is_set():
            now = time.monotonic()
            await self._retry_due()
            if now >= next_reclaim:
                await self._reclaim()
                next_reclaim = now + self.config.reclaim_idle / 2
            if self.reconcilers and now >= next_reconcile:
                for reconciler in self.reconcilers:
                    await reconciler.run_once()
                next_reconcile = now + self.config.reconcile_interval
            entries = await self._read(self._block_ms(min(next_reclaim, next_reconcile)))
            if entries:
                await self.handle(entries)
                if len(entries) < self.config.read_batch and self.config.linger > 0:
                    await anyio.sleep(self.config.linger)  # let the next read find a batch
        await self._flush_acks()

    async def _read(self, block_ms: int) -> list[Any]:
        """New entries, up to a batch; the acknowledgements due go out in the same round trip."""
        streams: Any = {self.stream: ">"}
        if not self._to_ack:
            reply: Any = await self.redis.xreadgroup(
                self.group, self.name, streams, count=self.config.read_batch, block=block_ms
            )
        else:
            ids, self._to_ack = self._to_ack, []
            pipe = self.redis.pipeline(transaction=False)
            pipe.xack(self.stream, self.group, *ids)
            pipe.xreadgroup(self.group, self.name, streams, count=self.config.read_batch, block=block_ms)
            _, reply = await pipe.execute()
        return reply[0][1] if reply else []

    def _block_ms(self, next_chore: float) -> int:
        wake = min([next_chore, *(due for due, _, _ in self._due[:1])])
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
            await self._flush_acks()

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
            fresh = [e for e in entries if e[0] not in self._open]
            if fresh:
                self.consumer.reclaimed.inc(len(fresh))
                await self.handle(fresh)
                await self._flush_acks()
            if deleted:
                await self.redis.xack(self.stream, self.group, *deleted)
            if start in (b"0-0", "0-0"):
                return

    async def handle(self, entries: list[Any]) -> None:
        """Apply a batch of stream entries to every member; what all of them committed is due for
        acknowledgement (`_flush_acks`, or the next read)."""
        ready: list[list[Entry]] = [[] for _ in self.tracks]
        for entry_id, fields in entries:
            if not fields or b"e" not in fields:
                self._to_ack.append(entry_id)  # trimmed or foreign entry: nothing to apply
                continue
            envelope = envelope_decoder.decode(fields[b"e"])
            self._open[entry_id] = len(self.tracks)
            for track, queue in zip(self.tracks, ready, strict=True):
                waiting = track.waiting.get(envelope.aggregate_id)
                if waiting is not None:
                    waiting.entries.append((entry_id, envelope))
                else:
                    queue.append((entry_id, envelope))
        work = [(track, batch) for track, batch in zip(self.tracks, ready, strict=True) if batch]
        if work:
            await self._apply(work)

    async def _apply(self, work: list[tuple[_Track, list[Entry]]]) -> None:
        """Every member's share of a read in one transaction; on failure, each member on its own."""
        if len(work) > 1 or len(work[0][1]) > 1:
            batches = [(t.member.inbox, [envelope for _, envelope in b], t.member.blocked) for t, b in work]
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    with ExitStack() as spans:
                        for inbox, envelopes, _ in batches:
                            spans.enter_context(self._processing_all(inbox.name, envelopes))
                        outcomes = await apply_together(conn, batches)
            except Exception:
                pass  # one of them fails: each member on its own, to find which
            else:
                for (track, batch), done in zip(work, outcomes, strict=True):
                    self._settled(track, batch, done)
                return
        for track, batch in work:
            await self._apply_member(track, batch)

    async def _apply_member(self, track: _Track, batch: list[Entry]) -> None:
        member = track.member
        if len(batch) > 1:
            envelopes = [envelope for _, envelope in batch]
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    with self._processing_all(member.name, envelopes):
                        outcomes = await member.inbox.apply_batch(conn, envelopes, member.blocked)
            except Exception:
                pass  # one of them fails: apply one by one to find it
            else:
                self._settled(track, batch, outcomes)
                return
        for entry_id, envelope in batch:
            if envelope.aggregate_id in track.waiting:
                track.waiting[envelope.aggregate_id].entries.append((entry_id, envelope))
            else:
                await self._apply_one(track, entry_id, envelope)

    def _settled(self, track: _Track, batch: list[Entry], outcomes: list[str]) -> None:
        for (entry_id, envelope), outcome in zip(batch, outcomes, strict=True):
            if outcome != PARKED:
                track.member.blocked.discard(envelope.aggregate_id)
            self._done(track.member, entry_id, envelope, outcome)

    @contextmanager
    def _processing_all(self, projection: str, envelopes: list[Envelope]) -> Iterator[None]:
        """Each event's span, open for the whole batch: its events are applied together, set-based."""
        with ExitStack() as spans:
            for e in envelopes:
                spans.enter_context(processing(self.stream, projection, e.event_id, e.traceparent))
            yield

    async def _apply_one(
        self, track: _Track, entry_id: bytes, envelope: Envelope, waiting: _Waiting | None = None
    ) -> bool:
        member = track.member
        token = correlation_id.set(envelope.correlation_id)
        try:
            with processing(self.stream, member.name, envelope.event_id, envelope.traceparent):
                async with self.pool.acquire() as conn, conn.transaction():
                    if envelope.aggregate_id in member.blocked:
                        outcome = await member.inbox.apply_unless_blocked(conn, envelope)
                    else:
                        outcome = await member.inbox.apply(conn, envelope)
        except Exception as exc:
            self._failed(track, entry_id, envelope, exc, waiting)
            return False
        finally:
            correlation_id.reset(token)
        if outcome != PARKED:
            member.blocked.discard(envelope.aggregate_id)
        self._done(member, entry_id, envelope, outcome)
        return True

    def _done(self, member: Member, entry_id: bytes, envelope: Envelope, outcome: str) -> None:
        left = self._open.pop(entry_id, 1) - 1
        if left > 0:
            self._open[entry_id] = left
        else:
            self._to_ack.append(entry_id)
        self.consumer.count(outcome, envelope, member)

    def _failed(
        self, track: _Track, entry_id: bytes, envelope: Envelope, exc: Exception, waiting: _Waiting | None
    ) -> None:
        aggregate_id = envelope.aggregate_id
        if waiting is None:
            waiting = track.waiting[aggregate_id] = _Waiting(entries=deque([(entry_id, envelope)]))
        service = unavailable(exc)
        waiting.first_failure = waiting.first_failure or datetime.now(UTC)
        if service is not None:  # not the event's fault: wait for the service, never dead-letter for it
            waiting.outages += 1
            delay = backoff(min(waiting.outages, 10), self.config.retry_base, self.config.retry_cap)
            heapq.heappush(self._due, (time.monotonic() + delay, self.tracks.index(track), aggregate_id))
            if time.monotonic() - self._outage_logged >= 60:  # a line a minute, not one per event
                self._outage_logged = time.monotonic()
                log.warning("%s/%s: %s unavailable; events wait for it, none is dead-lettered for it (%s)",
                            self.group, self.name, service, exc)  # fmt: skip
            return
        waiting.attempts += 1
        waiting.error = f"{type(exc).__name__}: {exc}"
        exhausted = waiting.attempts >= self.config.retry_attempts
        delay = 0.0 if exhausted else backoff(waiting.attempts, self.config.retry_base, self.config.retry_cap)
        waiting.delays.append(delay)
        heapq.heappush(self._due, (time.monotonic() + delay, self.tracks.index(track), aggregate_id))
        self.consumer.count("retried", member=track.member)
        log.warning(
            "%s: %s v%d failed (attempt %d/%d), retrying in %.2fs: %s",
            track.member.name, aggregate_id, envelope.aggregate_version, waiting.attempts,
            self.config.retry_attempts, delay, waiting.error,
        )  # fmt: skip

    async def _retry_due(self) -> None:
        now = time.monotonic()
        retried = False
        while self._due and self._due[0][0] <= now:
            retried = True
            _, index, aggregate_id = heapq.heappop(self._due)
            track = self.tracks[index]
            waiting = track.waiting.get(aggregate_id)
            if waiting is None:
                continue
            entry_id, envelope = waiting.entries[0]
            if waiting.attempts >= self.config.retry_attempts:
                await self._dead_letter(track, aggregate_id, waiting)
            elif await self._apply_one(track, entry_id, envelope, waiting):
                await self._release(track, aggregate_id, waiting)
        if retried:
            await self._flush_acks()

    async def _release(self, track: _Track, aggregate_id: str, waiting: _Waiting) -> None:
        """The head succeeded: its followers go on, in order, until one fails and waits again."""
        waiting.entries.popleft()
        del track.waiting[aggregate_id]
        followers = waiting.entries
        while followers:
            entry_id, envelope = followers.popleft()
            if not await self._apply_one(track, entry_id, envelope):
                track.waiting[aggregate_id].entries.extend(followers)
                return

    async def _dead_letter(self, track: _Track, aggregate_id: str, waiting: _Waiting) -> None:
        member = track.member
        entry_id, envelope = waiting.entries.popleft()
        assert waiting.first_failure is not None
        async with self.pool.acquire() as conn, conn.transaction():
            await deadletters.store(
                conn, member.name, envelope, waiting.error, waiting.attempts, waiting.first_failure
            )
            for _, follower in waiting.entries:
                await member.inbox.park(conn, follower)
        # Stored first, acknowledged after: a crash in between re-delivers, never loses.
        del track.waiting[aggregate_id]
        member.blocked.add(aggregate_id)
        self._done(member, entry_id, envelope, "dead_lettered")
        for follower_id, follower in waiting.entries:
            self._done(member, follower_id, follower, PARKED)
        log.error("%s: %s v%d dead-lettered after %d attempts: %s", member.name, aggregate_id,
                  envelope.aggregate_version, waiting.attempts, waiting.error)  # fmt: skip

    async def _flush_acks(self) -> None:
        if self._to_ack:
            ids, self._to_ack = self._to_ack, []
            await self.redis.xack(self.stream, self.group, *ids)
