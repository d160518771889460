"""Which failures mean a backing service is away (PostgreSQL or Redis down, restarting, unreachable,
out of connections, too slow) rather than a fault of the request or of the code.

An outage answers 503 with `Retry-After` and heals by itself once the service is back; anything else
stays an unexpected error (500) so that a bug is never mistaken for a passing outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import asyncpg
from redis import exceptions as redis_errors

POSTGRESQL = "PostgreSQL"
REDIS = "Redis"

# 08: the connection failed or broke (08P01, a protocol violation, is a fault of the client, not an
# outage); 53300: no connection slot left; 57P01..57P05: the server shut down, crashed, is starting up
# or dropped the session. 57014 (a cancelled statement) is not among them.
_POSTGRES_DOWN = (asyncpg.PostgresConnectionError, asyncpg.TooManyConnectionsError)
_POSTGRES_NOT_DOWN = (asyncpg.ProtocolViolationError,)
_REDIS_DOWN = (redis_errors.ConnectionError, redis_errors.TimeoutError)
# asyncpg's own words for a connection or pool that closed under it (other InterfaceErrors are bugs).
_CLOSED = ("connection is closed", "pool is closing", "pool is closed")
# A server shutting down tells its idle clients so (FATAL 57P01) before closing; asyncpg reads that
# into the connection's state, and the next statement on it is refused before anything is sent.
_LEFT_MIDWAY = ("another operation (2) is in progress", "not connected")


def unavailable(exc: BaseException) -> str | None:
    """The service (`POSTGRESQL` or `REDIS`) whose outage `exc` is, or None when it is no outage."""
    if isinstance(exc, _POSTGRES_DOWN) and not isinstance(exc, _POSTGRES_NOT_DOWN):
        return POSTGRESQL
    if isinstance(exc, asyncpg.PostgresError):
        return POSTGRESQL if (exc.sqlstate or "").startswith("57P") else None
    if isinstance(exc, asyncpg.InterfaceError):
        return POSTGRESQL if str(exc).endswith(_CLOSED) else None
    if isinstance(exc, asyncpg.InternalClientError):  # a server's last words read before it hung up
        return POSTGRESQL if str(exc).endswith(_LEFT_MIDWAY) else None
    if isinstance(exc, _REDIS_DOWN):
        return REDIS
    if isinstance(exc, OSError):  # refused, reset, socket gone, timed out: whose socket was it?
        return _raised_by(exc.__traceback__)
    return None


def _raised_by(tb: TracebackType | None) -> str | None:
    """The client library nearest to where the traceback's exception was raised."""
    found = None
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith("asyncpg"):
            found = POSTGRESQL
        elif module.startswith("redis"):
            found = REDIS
        tb = tb.tb_next
    return found


class OutageLog:
    """Logs an outage, not every request it fails: one warning when a service starts failing, then one
    every `remind` seconds while it lasts, counting the failures between. A service that failed nothing
    for `quiet` seconds is taken to be back, and its next failure starts a new outage."""

    def __init__(
        self,
        log: logging.Logger,
        *,
        quiet: float = 10.0,
        remind: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.quiet = quiet
        self.remind = remind
        self.clock = clock
        self._outages: dict[str, _Outage] = {}

    def failed(self, service: str, cause: BaseException | None) -> None:
        now = self.clock()
        outage = self._outages.get(service)
        if outage is None or now - outage.last_failure > self.quiet:
            self._outages[service] = _Outage(last_failure=now, last_logged=now)
            self.log.warning("%s unavailable (%s); answering 503 while it lasts", service, _described(cause))
            return
        outage.last_failure = now
        outage.unlogged += 1
        if now - outage.last_logged >= self.remind:
            self.log.warning(
                "%s still unavailable: %d more requests answered 503 in the last %.0f s (%s)",
                service, outage.unlogged, now - outage.last_logged, _described(cause),
            )  # fmt: skip
            outage.last_logged = now
            outage.unlogged = 0


@dataclass
class _Outage:
    last_failure: float
    last_logged: float
    unlogged: int = 0


def _described(cause: BaseException | None) -> str:
    return "no cause given" if cause is None else f"{type(cause).__name__}: {cause}".rstrip(": ")
