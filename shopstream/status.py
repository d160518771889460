"""`shopstream status`: outbox backlog, streams and consumer groups, and dead letters, as readable
tables or as JSON. It only reads (no migrations run), and exits 1 with a one-line message naming
PostgreSQL or Redis when either does not answer."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import asyncpg
import msgspec
from redis.exceptions import RedisError

from bus.module import ContextModule
from shopstream import eventloop
from shopstream.bootstrap import Messaging
from shopstream.monitor import Monitor, Overview
from shopstream.settings import Settings

CONNECT_TIMEOUT = 5.0


class Unavailable(Exception):
    """A backing service does not answer, or not as expected; the message names it."""

    def __init__(self, service: str, reason: BaseException | str) -> None:
        why = reason if isinstance(reason, str) else f"unreachable ({type(reason).__name__}: {reason})"
        super().__init__(f"{service} {why}")


def status(settings: Settings, as_json: bool = False) -> int:
    return eventloop.run(report(settings, as_json))


async def report(
    settings: Settings,
    as_json: bool = False,
    modules: Sequence[ContextModule] | None = None,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    try:
        overview = await gather(settings, modules)
    except Unavailable as exc:
        print(f"shopstream status: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(msgspec.json.format(msgspec.json.encode(overview), indent=2).decode(), file=out)
    else:
        print(render(overview), file=out)
    return 0


async def gather(settings: Settings, modules: Sequence[ContextModule] | None = None) -> Overview:
    try:
        messaging = await asyncio.wait_for(Messaging.open(settings, modules), CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unavailable("PostgreSQL", exc) from None
    try:
        try:
            await asyncio.wait_for(messaging.redis.ping(), CONNECT_TIMEOUT)
        except (OSError, TimeoutError, RedisError) as exc:
            raise Unavailable("Redis", exc) from None
        try:
            return await Monitor(messaging).overview()
        except asyncpg.UndefinedTableError:
            raise Unavailable("PostgreSQL", "has no ShopStream tables: run `shopstream migrate`") from None
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            raise Unavailable("PostgreSQL", exc) from None
        except RedisError as exc:
            raise Unavailable("Redis", exc) from None
    finally:
        await messaging.close()


def render(overview: Overview) -> str:
    outbox = _table(
        ["context", "pending", "oldest pending", "last position", "last published at"],
        [
            [o.context, o.pending, _seconds(o.oldest_pending_age_seconds), o.last_position,
             o.last_published_at.isoformat(timespec="seconds") if o.last_published_at else "-"]
            for o in overview.outbox
        ],
    )  # fmt: skip
    streams = _table(
        ["stream", "length", "group", "consumers", "pending", "lag", "oldest pending idle"],
        [
            [s.stream if first else "", s.length if first else "",
             g.group if g.exists else f"{g.group} (not created)", g.consumers, g.pending, g.lag,
             _seconds(g.oldest_pending_idle_seconds)]
            for s in overview.streams
            for first, g in _first_marked(s.groups or [_NO_GROUP])
        ],
    )  # fmt: skip
    letters = (
        _table(
            ["consumer", "context", "dead letters", "oldest failed at"],
            [
                [d.consumer, d.context, d.count, d.oldest_failed_at.isoformat(timespec="seconds")]
                for d in overview.dead_letters
            ],
        )
        if overview.dead_letters
        else "none"
    )
    return f"OUTBOX\n{outbox}\n\nSTREAMS\n{streams}\n\nDEAD LETTERS\n{letters}"


class _NoGroup:
    group, exists, consumers, pending, lag, oldest_pending_idle_seconds = "-", True, "-", "-", "-", 0.0


_NO_GROUP: Any = _NoGroup()


def _first_marked(items: Sequence[Any]) -> list[tuple[bool, Any]]:
    return [(index == 0, item) for index, item in enumerate(items)]


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value else "-"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    """Columns padded to their widest cell; numbers aligned right."""
    cells = [headers, *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        bool(rows) and all(isinstance(row[i], int | float) or row[i] == "" for row in rows)
        for i in range(len(headers))
    ]
    lines = [
        "  ".join(
            c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, widths, numeric, strict=True)
        ).rstrip()
        for row in cells
    ]
    return "\n".join(lines)
