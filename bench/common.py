"""Helpers every benchmark shares: which PostgreSQL and Redis to use, scratch databases, machine facts."""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shopstream.embedded import EmbeddedServers


def with_database(url: str, name: str) -> str:
    """The same server URL, naming another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def admin(url: str, sql: str) -> None:
    """Run one statement on a connection of its own (CREATE/DROP DATABASE cannot run in a transaction)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for text in info:
                if text.startswith("model name"):
                    return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts(postgres_version: str, redis_version: str) -> str:
    return (
        f"machine   {os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()},"
        f" PostgreSQL {postgres_version}, Redis {redis_version}"
    )


@contextmanager
def backing_servers() -> Iterator[tuple[str, str]]:
    """(PostgreSQL server URL, Redis URL): BENCH_DATABASE_URL / BENCH_REDIS_URL, else
    SHOPSTREAM_TEST_DATABASE_URL / SHOPSTREAM_TEST_REDIS_URL, else embedded servers started in a
    temporary directory and stopped (and removed) on exit."""
    database_server = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("SHOPSTREAM_TEST_DATABASE_URL")
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("SHOPSTREAM_TEST_REDIS_URL")
    if database_server and redis_url:
        yield database_server, redis_url
        return
    with tempfile.TemporaryDirectory(prefix="bench-") as data_dir:
        servers = EmbeddedServers(data_dir)
        try:
            database_server = database_server or servers.postgres_url()
            redis_url = redis_url or servers.redis_url()
            print("servers   embedded (set BENCH_DATABASE_URL / BENCH_REDIS_URL to use others)")
            yield database_server, redis_url
        finally:
            servers.stop()
