"""ShopStream behind a real PgBouncer in transaction pooling mode, the usual front of a shared
PostgreSQL: the pooled URL goes through PgBouncer (statement cache off), the direct URL reaches
PostgreSQL for what needs a session (LISTEN, session advisory locks, migrations).

The test starts its own `pgbouncer` (an ini in a temporary directory, a free port, `auth_type = trust`)
in front of the test PostgreSQL. Without the binary the tests skip, unless
`SHOPSTREAM_REQUIRE_PGBOUNCER=1` (CI) turns that into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import msgspec
import pytest

from bus.rebuild import Rebuild, RebuildBusy
from contexts.identity.registration import RegisterCustomer
from shopstream.bootstrap import Messaging, Resources, modules_of, prepare
from shopstream.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("SHOPSTREAM_REQUIRE_PGBOUNCER") == "1"
PROBE = "transaction_probe"  # a PgBouncer database of one server connection, to see the pooling mode
DIRECT = "shopstream-direct"  # the application_name of every connection made through the direct URL
CARDS = "identity.customer_card"
NEVER = 3600.0  # a relay poll interval no test waits out: what a relay publishes, a NOTIFY woke it for
WITHIN = 60.0  # seconds before a test gives up waiting for something that should come
HOLDER = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
"""


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")


@dataclass(frozen=True)
class Bouncer:
    port: int
    log: Path

    def pooled(self, direct_url: str) -> str:
        """The URL of the same database through PgBouncer."""
        parts = urlsplit(direct_url)
        user = parts.username or "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}{parts.path}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bouncer_ini(server_url: str, port: int, directory: Path) -> str:
    parts = urlsplit(server_url)
    host = parts.hostname or parse_qs(parts.query).get("host", ["/tmp"])[0]
    login = f" user={parts.username}" if parts.username else ""
    login += f" password={parts.password}" if parts.password else ""
    upstream = f"host={host} port={parts.port or 5432}{login}"
    return f"""\
[databases]
{PROBE} = {upstream} dbname={parts.path.lstrip("/") or "postgres"} pool_size=1
* = {upstream}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "userlist.txt"}
pool_mode = transaction
default_pool_size = 20
max_client_conn = 500
"""


@pytest.fixture(scope="module")
def bouncer(server_database_url: str) -> Iterator[Bouncer]:
    binary = pgbouncer_binary()
    if binary is None:
        reason = "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
        if REQUIRED:
            pytest.fail(f"{reason}, and SHOPSTREAM_REQUIRE_PGBOUNCER=1 requires it", pytrace=False)
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="shopstream-pgbouncer-"))
    directory.chmod(0o755)  # PgBouncer refuses to run as root: as another user it must read the ini
    port = free_port()
    user = urlsplit(server_database_url).username or "postgres"
    (directory / "userlist.txt").write_text(f'"{user}" ""\n')
    ini = directory / "pgbouncer.ini"
    ini.write_text(bouncer_ini(server_database_url, port, directory))
    log = directory / "pgbouncer.log"
    command = [binary, str(ini)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", _unprivileged_user()]
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_listening(proc, port, log)
        yield Bouncer(port, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    pytest.fail("running as root, and neither a postgres nor a nobody user exists to run PgBouncer as")


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            pytest.fail(f"pgbouncer exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"pgbouncer did not listen on {port}:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def with_application_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=f"{query}application_name={name}"))


@pytest.fixture(scope="module")
def bounced(
    bouncer: Bouncer,
    create_database,
    redis_url: str,
    redis_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """Settings of a fresh database: pooled through PgBouncer, direct to PostgreSQL (marked by its
    application_name, so the tests see which connections went where)."""
    direct = create_database("pgbouncer")
    return Settings(
        database_url=bouncer.pooled(direct),
        database_direct_url=with_application_name(direct, DIRECT),
        db_statement_cache_size=0,
        redis_url=redis_url,
        redis_prefix=f"{redis_prefix}-pgbouncer-{uuid.uuid4().hex[:6]}",
        data_dir=str(tmp_path_factory.mktemp("pgbouncer")),
    )


@pytest.fixture(scope="module")
async def migrated(bounced: Settings) -> Settings:
    await prepare(bounced)
    return bounced


@contextlib.asynccontextmanager
async def direct_connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    assert settings.database_direct_url is not None
    conn = await asyncpg.connect(settings.database_direct_url)
    try:
        yield conn
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def woken_only_by_notify(settings: Settings) -> AsyncIterator[Messaging]:
    """The messaging core, its relays polling too rarely for any test to see a poll."""
    modules = modules_of(settings)
    resources = Resources(settings)
    await resources.open(m.name for m in modules)
    messaging = Messaging(
        resources, modules, msgspec.structs.replace(settings.bus_config(), relay_poll_interval=NEVER)
    )
    try:
        yield messaging
    finally:
        await messaging.close()


def registration() -> RegisterCustomer:
    unique = uuid.uuid4().hex[:12]
    return RegisterCustomer(
        customer_id=str(uuid.uuid4()),
        external_id=f"crm-{unique}",
        email=f"ada.{unique}@example.com",
        first_name="Ada",
        last_name="Lovelace",
    )


async def until_row(db: asyncpg.Pool | asyncpg.Connection, sql: str, *args: object) -> asyncpg.Record:
    deadline = time.monotonic() + WITHIN
    while (row := await db.fetchrow(sql, *args)) is None:
        assert time.monotonic() < deadline, f"no row within {WITHIN}s for {sql} {args}"
        await asyncio.sleep(0.05)
    return row


async def advisory_locks(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        )
    )


async def test_pgbouncer_hands_every_transaction_any_server_connection(bouncer: Bouncer, bounced: Settings):
    """The probe database has one server connection: two clients both get it only in transaction mode
    (in session mode the second would wait for the first to disconnect)."""
    probe = urlunsplit(urlsplit(bounced.database_url or "")._replace(path=f"/{PROBE}"))
    first = await asyncpg.connect(probe, statement_cache_size=0)
    second = await asyncpg.connect(probe, statement_cache_size=0)
    try:
        pids = [await asyncio.wait_for(c.fetchval("SELECT pg_backend_pid()"), 20) for c in (first, second)]
    except TimeoutError:
        pytest.fail(f"PgBouncer is not pooling transactions:\n{bouncer.log.read_text(errors='replace')}")
    finally:
        await first.close()
        await second.close()
    assert pids[0] == pids[1]


async def test_migrations_run_on_the_direct_url(bounced: Settings):
    applied = await prepare(bounced)
    assert "bus/0001_bus_schema.sql" in applied and any(a.startswith("identity/") for a in applied)
    assert await prepare(bounced) == []  # each once
    async with direct_connection(bounced) as conn:
        assert await advisory_locks(conn) == 0  # the migration lock was released on its own session
        components = await conn.fetchval("SELECT count(DISTINCT component) FROM shopstream.schema_migrations")
    assert components == 3  # the bus, identity, catalogue


async def test_commands_reach_the_read_models_and_relays_wake_on_notify(migrated: Settings):
    async with woken_only_by_notify(migrated) as messaging:
        pool = messaging.pool_of("identity")
        before = registration()
        await messaging.bus.execute(before)  # committed before the relays listen: their first claim takes it
        supervisor = messaging.supervisor()
        running = asyncio.create_task(supervisor.run())
        try:
            card = "SELECT email, version FROM identity.customer_cards WHERE customer_id = $1"
            await until_row(pool, card, before.customer_id)
            # The relays' first claim is behind them; from here only a NOTIFY wakes them.
            after = registration()
            await messaging.bus.execute(after)
            assert (await until_row(pool, card, after.customer_id))["email"] == after.email
            tier = "SELECT tier FROM catalogue.customer_tiers WHERE customer_id = $1"
            assert (await until_row(pool, tier, after.customer_id))["tier"] == "Standard"
            async with direct_connection(migrated) as conn:
                listening = await conn.fetch(
                    "SELECT application_name FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            assert [r["application_name"] for r in listening] == [DIRECT, DIRECT]  # one per context's relay
        finally:
            supervisor.stop()
            await running


async def test_a_rebuild_holds_its_lock_on_the_direct_url(migrated: Settings):
    async with woken_only_by_notify(migrated) as messaging:
        await messaging.bus.execute(registration())
        pool = messaging.pool_of("identity")
        inbox = messaging.inboxes[CARDS]
        direct = messaging.direct_url_of("identity")
        async with direct_connection(migrated) as conn, direct_connection(migrated) as blocker:
            await conn.execute(
                "SELECT pg_advisory_lock(hashtextextended('shopstream.rebuild:' || $1, 0))", CARDS
            )
            with pytest.raises(RebuildBusy):
                await Rebuild(pool, inbox, lock_dsn=direct).run()
            await conn.execute("SELECT pg_advisory_unlock_all()")
            logged = await conn.fetchval("SELECT count(*) FROM identity.outbox")
            async with blocker.transaction():  # holds the rebuild at its first write, its lock taken
                await blocker.execute("LOCK TABLE bus.consumer_positions IN SHARE MODE")
                rebuilding = asyncio.create_task(Rebuild(pool, inbox, batch=2, lock_dsn=direct).run())
                holder = await until_row(conn, HOLDER)
            progress = await rebuilding
            assert holder["application_name"] == DIRECT
            assert progress.swapped and progress.done == logged
            assert await advisory_locks(conn) == 0
            cards = await conn.fetchval("SELECT count(*) FROM identity.customer_cards")
            assert cards == await conn.fetchval("SELECT count(*) FROM identity.customers")


async def test_a_rebuild_whose_lock_connection_dies_stops_and_a_later_one_resumes(migrated: Settings):
    async with woken_only_by_notify(migrated) as messaging:
        await messaging.bus.execute(registration())
        pool = messaging.pool_of("identity")
        inbox = messaging.inboxes[CARDS]
        direct = messaging.direct_url_of("identity")
        async with direct_connection(migrated) as conn, direct_connection(migrated) as blocker:
            async with blocker.transaction():
                await blocker.execute("LOCK TABLE bus.consumer_positions IN SHARE MODE")
                rebuilding = asyncio.create_task(Rebuild(pool, inbox, batch=2, lock_dsn=direct).run())
                holder = await until_row(conn, HOLDER.replace("a.application_name", "a.pid"))
                assert await conn.fetchval("SELECT pg_terminate_backend($1)", holder["pid"])
                gone = "SELECT 1 WHERE NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)"
                await until_row(conn, gone, holder["pid"])
            with pytest.raises(ConnectionError, match="rebuild lock"):
                await rebuilding  # not on without its lock, beside a rebuilder that took it meanwhile
            progress = await Rebuild(pool, inbox, lock_dsn=direct).run()
            assert progress.swapped
            assert await advisory_locks(conn) == 0


async def test_the_rebuild_command_behind_pgbouncer(migrated: Settings, bouncer: Bouncer):
    env = {k: v for k, v in os.environ.items() if "DATABASE" not in k and not k.startswith("SHOPSTREAM_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shopstream.cli", "projections", "rebuild", CARDS,
        cwd=ROOT, env=env | migrated.to_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode() + bouncer.log.read_text(errors="replace")[-3000:]
    assert out.decode().startswith(f"rebuilt {CARDS} v1: ")
