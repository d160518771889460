"""`shopstream status`: readable tables of the outbox, streams and dead letters; a non-zero exit
naming the backing service that does not answer."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import uuid

import msgspec
import pytest

from shopstream.settings import Settings
from shopstream.status import report
from tests.apps import own_connection

pytestmark = pytest.mark.anyio

_DEAD_LETTER = """
INSERT INTO bus.dead_letters (consumer, context, event_id, event_type, aggregate_id, aggregate_version,
                              envelope, error, attempts, first_failed_at, last_failed_at)
VALUES ('identity.segments', 'identity', $1, 'identity.TierUpgraded', 'c-1', 2, '{}', 'boom', 8, now(), now())
"""


async def test_tables_show_each_outbox_each_stream_and_dead_letters_by_consumer(context_settings):
    settings = await context_settings("status")
    async with own_connection(settings) as conn:
        await conn.execute(_DEAD_LETTER, uuid.uuid4())

    out = io.StringIO()
    assert await report(settings, out=out) == 0

    text = out.getvalue()
    outbox, streams, letters = text.split("\n\n")
    assert outbox.splitlines()[0] == "OUTBOX"
    assert [line.split()[0] for line in outbox.splitlines()[2:]] == ["identity", "catalogue"]
    assert "lag" in streams.splitlines()[1] and "oldest pending idle" in streams.splitlines()[1]
    assert f"{settings.redis_prefix}.catalogue.3" in streams
    assert "identity.projections (not created)" in streams  # the consumer group of every identity read model
    assert letters.splitlines()[0] == "DEAD LETTERS"
    assert letters.splitlines()[2].split()[:3] == ["identity.segments", "identity", "1"]


async def test_an_unreachable_postgresql_is_named_and_the_exit_is_non_zero(settings, capsys):
    down = msgspec.structs.replace(settings, database_url="postgresql://postgres@127.0.0.1:1/none")
    assert await report(down) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("shopstream status: PostgreSQL unreachable")


async def test_the_command_exits_non_zero_naming_redis_when_it_is_unreachable(settings: Settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_") and k != "REDIS_URL"}
    env |= {"DATABASE_URL": str(settings.database_url), "REDIS_URL": "redis://127.0.0.1:1/0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shopstream.cli", "status", "--json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 1
    assert out == b""
    [line] = err.decode().splitlines()
    assert line.startswith("shopstream status: Redis unreachable")
