"""How far a consumer group is behind its stream, on every Redis version ShopStream runs on.

Redis 7 reports `lag` in XINFO GROUPS (and leaves it empty when deletions make it unknowable);
Redis 6.2 does not. There the entries after the group's `last-delivered-id`
are counted by a script on the server, so no entry travels to the client; the count stops at
`COUNT_LIMIT` to keep Redis responsive, which is far past any alerting threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

COUNT_LIMIT = 10_000

_COUNT_AFTER = """
local counted, start, limit = 0, '(' .. ARGV[1], tonumber(ARGV[2])
while counted < limit do
  local batch = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', math.min(1000, limit - counted))
  if #batch == 0 then break end
  counted = counted + #batch
  start = '(' .. batch[#batch][1]
end
return counted
"""


async def group_info(redis: Redis, stream: str, group: str) -> Mapping[str, Any] | None:
    """The group's XINFO GROUPS entry; None while the stream or the group does not exist yet."""
    try:
        groups: Any = await redis.xinfo_groups(stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return None
        raise
    return next((g for g in groups if g["name"] in (group, group.encode())), None)


async def lag_of(redis: Redis, stream: str, info: Mapping[str, Any]) -> int:
    """Entries of `stream` not yet delivered to the group described by `info` (see `group_info`)."""
    reported = info.get("lag")
    if reported is not None:
        return int(reported)
    return int(await redis.eval(_COUNT_AFTER, 1, stream, _last_delivered(info), COUNT_LIMIT))  # type: ignore[misc]


async def behind(redis: Redis, stream: str, group: str) -> bool:
    """Whether `stream` holds entries not yet delivered to `group` (without counting them)."""
    info = await group_info(redis, stream, group)
    if info is None:
        return False
    reported = info.get("lag")
    if reported is not None:
        return int(reported) > 0
    return bool(await redis.xrange(stream, min=f"({_last_delivered(info)}", count=1))


def _last_delivered(info: Mapping[str, Any]) -> str:
    last = info["last-delivered-id"]
    return last.decode() if isinstance(last, bytes) else str(last)
