"""Subprocess entry of the reliability tests: `python -m tests.messaging.proc MODE` from the repo root.

Settings come from the environment (`Settings.from_env`: DATABASE_URL, REDIS_URL, SHOPSTREAM_*); both
URLs must be given, so no embedded server is ever started here. Modes:

- `crash-relay`: relay one batch of the counters outbox, and die with exit code 9 right after the XADD
  pipeline, before the rows are marked published and the transaction commits.
- `worker`: relays and consumers of the counters context under the Supervisor until SIGTERM/SIGINT,
  like `shopstream worker`; exits 0 after a clean stop.
- `rebuild`: rebuild the counters totals in small batches (`REBUILD_BATCH`, default 10), for a test to
  kill halfway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

import asyncpg

from bus.outbox import Relay
from shopstream.bootstrap import Messaging
from shopstream.settings import Settings
from tests.messaging.counters import module as counters

CRASH_EXIT_CODE = 9


class CrashingRelay(Relay):
    """Publishes, then dies before marking published: the rows stay claimable, the entries stay."""

    async def _publish(self, rows: Sequence[asyncpg.Record]) -> None:
        await super()._publish(rows)
        os._exit(CRASH_EXIT_CODE)


async def crash_relay(messaging: Messaging) -> None:
    relay = CrashingRelay(
        messaging.outboxes["counters"], messaging.pool_of("counters"), messaging.redis, messaging.config
    )
    await relay.relay_once()
    raise SystemExit("crash-relay: the outbox had nothing to relay")


async def worker(messaging: Messaging) -> None:
    supervisor = messaging.supervisor()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, supervisor.stop)
    await supervisor.run()


async def rebuild(messaging: Messaging) -> None:
    from bus.rebuild import Rebuild

    inbox = messaging.inboxes["counters.totals"]
    batch = int(os.environ.get("REBUILD_BATCH", "10"))
    await Rebuild(messaging.pool_of("counters"), inbox, batch=batch).run()


async def main(mode: str) -> None:
    settings = Settings.from_env()
    if settings.database_url is None or settings.redis_url is None:
        raise SystemExit("proc: DATABASE_URL and REDIS_URL are required")
    messaging = await Messaging.open(settings, [counters])
    try:
        await {"crash-relay": crash_relay, "worker": worker, "rebuild": rebuild}[mode](messaging)
    finally:
        await messaging.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="proc %(process)d %(levelname)s %(name)s %(message)s")
    asyncio.run(main(sys.argv[1]))
