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
