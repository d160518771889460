"""The pipeline end to end: how many commands/s the read models keep up with, how soon a write shows in
them, and how fast a backlog drains. Driven by bench/paced.py over HTTP against the real CLI processes.

- sustained rate: open-loop `POST /customers` in steps of `step` seconds, doubling from `start_rate`
  until a step fails, then bisecting. A step holds when at least 99% of the commands got a 2xx
  answer, the answers kept pace (2xx/s >= 95% of the rate, p99 from when a request was due under
  `MAX_P99`), and the read models stayed caught up: the backlog — identity outbox rows not yet
  published plus, for the identity consumer group furthest behind, stream entries not yet delivered
  or not yet acknowledged (the consumer acknowledges after its commit) — stayed under
  `max(MIN_BACKLOG, rate x BACKLOG_SECONDS)` over the step's second half and was gone within
  `DRAIN_TIMEOUT` after it. The bare endpoint is searched the same way, on its answers alone.
- lag: from a command's commit to the commit of the last read model of identity's events applying
  its event, at fractions of the sustained rate. Measured in the database, with deferred triggers
  (run at commit) noting `clock_timestamp()` for each identity outbox row and each move of a
  projection's tracked version (`bus.consumer_positions`); installed only for these steps.
- backlog: `shopstream api` alone takes `BACKLOG` registrations, then `shopstream worker` starts;
  timed from its first publication to the moment every identity consumer group has acknowledged all.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import datetime

import msgspec

from bench.commands import Server
from bench.paced import Body, LoadResult, closed_loop, paced, total
from shopstream.bootstrap import Messaging
from shopstream.monitor import Monitor
from shopstream.settings import Settings

CONTEXT = "identity"
MAX_FAILED = 0.01
MIN_PACE = 0.95
MAX_P99 = 0.5  # s
MIN_BACKLOG = 50
BACKLOG_SECONDS = 0.5
DRAIN_TIMEOUT = 5.0
SAMPLE_EVERY = 0.25
BACKLOG = 10_000

LAG_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS bench_lag;
CREATE UNLOGGED TABLE IF NOT EXISTS bench_lag.committed (aggregate_id text, at timestamptz);
CREATE UNLOGGED TABLE IF NOT EXISTS bench_lag.applied (consumer text, aggregate_id text, at timestamptz);
CREATE OR REPLACE FUNCTION bench_lag.note_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO bench_lag.committed VALUES (NEW.aggregate_id, clock_timestamp()); RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION bench_lag.note_apply() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO bench_lag.applied VALUES (NEW.consumer, NEW.aggregate_id, clock_timestamp()); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER bench_lag_commit AFTER INSERT ON identity.outbox
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bench_lag.note_commit();
CREATE CONSTRAINT TRIGGER bench_lag_apply AFTER INSERT OR UPDATE ON bus.consumer_positions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bench_lag.note_apply();
"""
DROP_LAG = """
DROP TRIGGER IF EXISTS bench_lag_commit ON identity.outbox;
DROP TRIGGER IF EXISTS bench_lag_apply ON bus.consumer_positions;
DROP SCHEMA IF EXISTS bench_lag CASCADE;
"""
# Per event: its commit, and the commit of the last identity projection to apply it.
LAG = """
WITH per_event AS (
    SELECT c.aggregate_id, extract(epoch FROM max(a.at) - c.at) AS lag, count(a.at) AS consumers
    FROM bench_lag.committed c JOIN bench_lag.applied a ON a.aggregate_id = c.aggregate_id
    GROUP BY c.aggregate_id, c.at
)
SELECT (SELECT count(*) FROM bench_lag.committed) AS events,
       count(*) FILTER (WHERE consumers = $1) AS complete,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99,
       max(lag) AS worst
FROM per_event
"""


class Step(msgspec.Struct, frozen=True):
    """One paced step of the search and whether it held."""

    rate: float
    load: LoadResult
    max_backlog: int | None  # over the step's second half (None: answers only)
    drained_after: float | None  # s after the step until nothing was behind (None: not within the timeout)
    held: bool


class Lag(msgspec.Struct, frozen=True):
    fraction: float
    rate: float
    load: LoadResult
    events: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class Backlog(msgspec.Struct, frozen=True):
    events: int
    fill_rate: float  # registrations/s while the worker was off
    seconds: float  # first publication -> every identity group has acknowledged all
    with_start_seconds: float  # worker process start -> the same

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def registrations(tag: str) -> Body:
    def body(number: int) -> bytes:
        key = f"{tag}-{number}"
        return (
            f'{{"external_id":"ext-{key}","email":"user-{key}@bench.example",'
            f'"first_name":"Ada","last_name":"Lovelace"}}'
        ).encode()

    return body


class Observer:
    """Reads, from the bench process, how far the read models of identity's events are behind the commands."""

    def __init__(self, messaging: Messaging) -> None:
        self.messaging = messaging
        self.monitor = Monitor(messaging)
        self.pool = messaging.pool_of(CONTEXT)
        # every read model of identity's events, the catalogue's replica of tiers included
        self.consumers = sorted(n for n, i in messaging.inboxes.items() if i.outbox.context == CONTEXT)
        self.groups = messaging.groups_reading(CONTEXT)  # the Redis consumer groups that keep them

    @classmethod
    async def open(cls, settings: Settings) -> Observer:
        return cls(await Messaging.open(settings))

    async def close(self) -> None:
        await self.messaging.close()

    async def backlog(self) -> int:
        """Outbox rows not yet published, plus the stream entries the furthest-behind identity group
        has not yet acknowledged."""
        outbox = next(o for o in await self.monitor.outbox() if o.context == CONTEXT)
        behind: dict[str, int] = {name: 0 for name in self.groups}
        for stream in await self.monitor.streams():
            if stream.context == CONTEXT:
                for group in stream.groups:
                    if group.group in behind:
                        behind[group.group] += group.lag + group.pending
        return outbox.pending + max(behind.values())

    async def drained(self, within: float) -> float | None:
        started = time.perf_counter()
        while time.perf_counter() - started < within:
            if await self.backlog() == 0:
                return time.perf_counter() - started
            await asyncio.sleep(0.02)
        return None


async def sample_backlog(observer: Observer, samples: list[tuple[float, int]]) -> None:
    while True:
        samples.append((time.perf_counter(), await observer.backlog()))
        await asyncio.sleep(SAMPLE_EVERY)


def answers_kept_pace(load: LoadResult, rate: float) -> bool:
    return (
        load.failed <= MAX_FAILED * max(load.sent, 1)
        and load.rate >= MIN_PACE * rate
        and load.p99_ms <= MAX_P99 * 1000
    )


async def step(server: Server, rate: float, seconds: float, observer: Observer | None) -> Step:
    body = registrations(uuid.uuid4().hex[:8])
    if observer is None:
        load = await paced("127.0.0.1", server.port, "/customers", body, rate, seconds)
        return Step(rate, load, None, None, answers_kept_pace(load, rate))
    samples: list[tuple[float, int]] = []
    sampler = asyncio.create_task(sample_backlog(observer, samples))
    started = time.perf_counter()
    try:
        load = await paced("127.0.0.1", server.port, "/customers", body, rate, seconds)
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    second_half = [b for at, b in samples if at >= started + seconds / 2] or [0]
    drained_after = await observer.drained(DRAIN_TIMEOUT)
    bound = max(MIN_BACKLOG, rate * BACKLOG_SECONDS)
    held = answers_kept_pace(load, rate) and max(second_half) <= bound and drained_after is not None
    return Step(rate, load, max(second_half), drained_after, held)


def describe_step(name: str, s: Step) -> str:
    text = (
        f"{name:<10} {s.rate:>7,.0f}/s  {'held  ' if s.held else 'missed'}  answers {s.load.rate:>7,.0f}/s"
        f"  p50 {s.load.p50_ms:6.1f} ms  p99 {s.load.p99_ms:7.1f} ms"
    )
    if s.load.failed:
        text += f"  {s.load.failed:,} failed"
    if s.max_backlog is not None:
        drained = "not drained" if s.drained_after is None else f"drained in {s.drained_after:.2f}s"
        text += f"  backlog <= {s.max_backlog:,}  {drained}"
    return text


async def sustained(
    name: str,
    server: Server,
    observer: Observer | None,
    *,
    start_rate: float,
    seconds: float,
    bisections: int,
    log: Callable[[str], None],
) -> tuple[float, list[Step]]:
    """The highest rate that held: doubling from `start_rate`, then bisecting (0 if none held)."""
    steps: list[Step] = []
    # Unreported warm-up: a worker just started has yet to create its groups and fill its pools.
    await paced(
        "127.0.0.1", server.port, "/customers", registrations(uuid.uuid4().hex[:8]), start_rate / 2, 2
    )
    if observer is not None:
        await observer.drained(DRAIN_TIMEOUT)

    async def holds(rate: float) -> bool:
        steps.append(await step(server, rate, seconds, observer))
        log(describe_step(name, steps[-1]))
        return steps[-1].held

    good, bad = 0.0, start_rate
    while await holds(bad):
        good, bad = bad, bad * 2
    for _ in range(bisections):
        middle = round((good + bad) / 2, -1) if good else round(bad / 2, -1)
        if middle in (good, bad) or middle <= 0:
            break
        if await holds(middle):
            good = middle
        else:
            bad = middle
    return good, steps


async def lags(
    name: str,
    server: Server,
    observer: Observer,
    sustained_rate: float,
    fractions: tuple[float, ...],
    seconds: float,
    log: Callable[[str], None],
) -> list[Lag]:
    pool = observer.pool
    await pool.execute(LAG_SCHEMA)
    found: list[Lag] = []
    try:
        for fraction in fractions:
            rate = max(1.0, sustained_rate * fraction)
            await pool.execute("TRUNCATE bench_lag.committed, bench_lag.applied")
            load = await paced(
                "127.0.0.1", server.port, "/customers", registrations(uuid.uuid4().hex[:8]), rate, seconds
            )
            await observer.drained(DRAIN_TIMEOUT * 2)
            row = await pool.fetchrow(LAG, len(observer.consumers))
            assert row is not None
            events, complete = int(row["events"]), int(row["complete"])
            if complete < events:
                log(
                    f"{name:<10} lag: only {complete:,} of {events:,} events reached every read model of identity's events"
                )
            found.append(
                Lag(
                    fraction=fraction,
                    rate=rate,
                    load=load,
                    events=complete,
                    p50_ms=float(row["p50"] or 0) * 1000,
                    p99_ms=float(row["p99"] or 0) * 1000,
                    max_ms=float(row["worst"] or 0) * 1000,
                )
            )
            f = found[-1]
            log(
                f"{name:<10} lag at {fraction:.0%} ({rate:,.0f}/s): p50 {f.p50_ms:.1f} ms  p99 {f.p99_ms:.1f} ms"
                f"  max {f.max_ms:.1f} ms  over {f.events:,} events  (answers p99 {load.p99_ms:.1f} ms)"
            )
    finally:
        await pool.execute(DROP_LAG)
    return found


async def fill_backlog(api: Server, observer: Observer, events: int) -> LoadResult:
    load = await total("127.0.0.1", api.port, "/customers", registrations(uuid.uuid4().hex[:8]), events, 32)
    pending = await observer.backlog()
    if load.ok != events or pending < events:
        raise RuntimeError(f"backlog: {load.ok:,} of {events:,} registered, {pending:,} pending")
    return load


async def last_position(observer: Observer) -> int:
    return int(await observer.pool.fetchval("SELECT coalesce(max(position), 0) FROM identity.outbox"))


async def drain_backlog(
    observer: Observer, after_position: int, started_at: float, within: float = 120.0
) -> tuple[float, float]:
    """(first publication of the backlog -> all acknowledged, worker start -> the same), in seconds."""
    if await observer.drained(within) is None:
        raise RuntimeError(f"backlog: not drained within {within:.0f}s")
    done_wall, done = time.time(), time.perf_counter()
    first: datetime | None = await observer.pool.fetchval(
        "SELECT min(published_at) FROM identity.outbox WHERE position > $1", after_position
    )
    assert first is not None
    return done_wall - first.timestamp(), done - started_at


async def generator_capacity(server: Server, seconds: float) -> LoadResult:
    """The generator's closed-loop rate on a trivial endpoint (GET /health)."""
    return await closed_loop("127.0.0.1", server.port, "/health", None, 32, seconds)
