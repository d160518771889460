"""Requests per caller, counted in Redis so that every API process shares one limit.

The caller is its verified token's role and `sub`, else its client address. Reads and writes
(POST/PUT/PATCH/DELETE) count against limits of their own (`SHOPSTREAM_RATE_LIMIT_READS`,
`SHOPSTREAM_RATE_LIMIT_WRITES`). Each check is one atomic script in Redis: the generic cell rate
algorithm (GCRA), which keeps one timestamp per caller — the "theoretical arrival time" — on Redis's
own clock, so processes on several machines agree. `N/period` lets a burst of N through, then one
request every period/N; no window boundary lets 2N through. Past it: 429 with `Retry-After`.

Litestar's own `RateLimitMiddleware` reads and rewrites a list of timestamps under a lock of one
process, so two processes sharing a store would overwrite each other's counts, and the lock makes a
process's requests wait for each other's round trips: hence this script.

Redis down (or slower than `ANSWER_WITHIN`) lets requests through, logged once a minute and counted
as `unchecked`: the commands keep flowing into PostgreSQL's outbox while Redis is away, and a limiter
must not turn a Redis outage into an API outage. The mailbox bounds (503) still hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bus.errors import Refusal
from contexts.edge.access import Principal
from observability import metrics

log = logging.getLogger("shopstream.ratelimit")

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANSWER_WITHIN = 0.5  # seconds; then the request goes through unchecked
_PAUSE = 1.0  # seconds without asking Redis after it failed to answer
_LOG_EVERY = 60.0
_UNLIMITED = frozenset({"/health", "/ready", "/metrics"})  # probes and scrapes

# KEYS[1]: the caller's key; ARGV: period (s), requests per period. Returns {1, 0} to allow, else
# {0, seconds to wait} (as a string: Lua numbers would come back truncated to integers).
_GCRA = """
if redis.replicate_commands then redis.replicate_commands() end
local period = tonumber(ARGV[1])
local interval = period / tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - period - now
if wait > 0 then return {0, string.format('%.6f', wait)} end
redis.call('SET', KEYS[1], string.format('%.6f', next_tat), 'PX', math.max(1, math.ceil((next_tat - now) * 1000)))
return {1, '0'}
"""


@dataclass(frozen=True)
class Rate:
    requests: int
    period: int  # seconds

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """`100/second` → Rate(100, 1); `off` → None (the settings' pattern has checked the form)."""
        if text.strip().lower() == "off":
            return None
        count, _, unit = text.lower().partition("/")
        return cls(int(count), PERIODS[unit.strip()])

    def __str__(self) -> str:
        unit = next(name for name, seconds in PERIODS.items() if seconds == self.period)
        return f"{self.requests}/{unit}"


class RateLimited(Refusal):
    """The caller sent more requests than its limit allows (429 + Retry-After)."""

    status: ClassVar[int] = 429
    kind: ClassVar[str] = "rate-limited"

    def __init__(self, rate: Rate, wait: float) -> None:
        self.wait = max(1, math.ceil(wait))
        super().__init__(f"More than {rate} requests from this caller; retry after {self.wait} s.")

    @property
    def problem_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.wait)}


def caller_of(scope: Scope) -> str:
    """Whom a request counts against: a verified token's role and subject, else the client address."""
    principal = scope.get("user")
    if isinstance(principal, Principal) and principal.verified and principal.subject:
        return f"sub:{principal.role or '-'}:{principal.subject}"
    client = scope.get("client")
    return f"ip:{client[0] if client else '-'}"


class Limiter:
    """Asks Redis, once per request, whether the caller may go on. `redis` is set while the app runs."""

    def __init__(self, prefix: str, reads: Rate | None, writes: Rate | None) -> None:
        self.prefix = prefix
        self.rates = {"read": reads, "write": writes}
        self.redis: Redis | None = None
        self._script: Any = None
        self._paused_until = 0.0
        self._logged_at = -math.inf
        self._counted = {
            (kind, outcome): metrics.rate_limit_decisions.labels(kind, outcome)
            for kind in self.rates
            for outcome in metrics.RATE_LIMIT_OUTCOMES
        }

    @property
    def enabled(self) -> bool:
        return any(self.rates.values())

    def attach(self, redis: Redis | None) -> None:
        self.redis = redis
        self._script = redis.register_script(_GCRA) if redis is not None else None

    async def check(self, kind: str, caller: str) -> None:
        """Raises `RateLimited` when the caller has used up its `kind` (read or write) limit."""
        rate = self.rates[kind]
        if rate is None:
            return
        wait = await self._wait(kind, rate, caller)
        if wait is None:
            self._counted[kind, "unchecked"].inc()
        elif wait > 0:
            self._counted[kind, "limited"].inc()
            raise RateLimited(rate, wait)
        else:
            self._counted[kind, "allowed"].inc()

    async def _wait(self, kind: str, rate: Rate, caller: str) -> float | None:
        """Seconds the caller must wait (0: go on); None when Redis did not answer."""
        if self._script is None or time.monotonic() < self._paused_until:
            return None
        # Hashed: a key bounded in size that names no customer, seller or address in Redis.
        digest = hashlib.blake2b(caller.encode(), digest_size=12).hexdigest()
        try:
            async with asyncio.timeout(ANSWER_WITHIN):
                allowed, wait = await self._script(
                    keys=[f"{self.prefix}:ratelimit:{kind}:{digest}"], args=[rate.period, rate.requests]
                )
        except (RedisError, OSError, TimeoutError) as exc:
            self._paused_until = time.monotonic() + _PAUSE
            if time.monotonic() - self._logged_at >= _LOG_EVERY:
                self._logged_at = time.monotonic()
                log.warning("rate limits are not checked while Redis does not answer as expected: %r", exc)
            return None
        return 0.0 if int(allowed) else float(wait)


class RateLimit(ASGIMiddleware):
    """Checks the caller's limit before its request goes further; probes and scrapes are never limited."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["path"] in _UNLIMITED:
            await next_app(scope, receive, send)
            return
        kind = "write" if scope.get("method") in WRITES else "read"
        await self.limiter.check(kind, caller_of(scope))
        await next_app(scope, receive, send)
