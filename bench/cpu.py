"""CPU time per end-to-end command, by component, at fixed paced rates.

At each rate (100, 300 and 600/s by default) open-loop `POST /customers` runs for a few seconds
(bench/paced.py); for ShopStream the window closes once every read model of identity's events has
caught up (bench/pipeline.py's backlog), for the bare endpoint once every answer is in. Over the window
the CPU time (user + system) of each component is read before and after, and divided by the 2xx
answers:

- api: the HTTP server's process tree — under `shopstream serve --workers N` uvicorn's manager and
  every process holding the listening socket; under `shopstream api` its whole tree;
- supervisor: the relays and consumers — under `serve --workers N` the processes of serve's tree that
  do not hold the listening socket (the child `SupervisorProcess` spawns; multiprocessing's resource
  tracker is counted with the api), under `shopstream worker` its whole tree. `serve --workers 1`
  runs both in one process, which is then one component, "api + supervisor"; the api + worker split
  attributes them;
- postgres: a private cluster (initdb in a temporary directory, the machine's binaries): the
  postmaster's whole tree, so every backend and the background processes (checkpointer, WAL writer,
  autovacuum) that the commands cause. On the shared server (`--cpu-shared-servers`) only the
  backends connected to the run's scratch database count: their pids come from pg_stat_activity,
  sampled every 0.5 s; a backend that ends loses its CPU since its last sample, and the server's own
  background processes cannot be split between databases and are left out;
- redis: `INFO cpu` (used_cpu_user + used_cpu_sys) of the private redis-server; on the shared one the
  whole server's, other users' load included.

A process tree is read from /proc: each live process's utime + stime plus its cutime + cstime (the
CPU of children it has reaped), so a process that exits within the window still counts, through its
parent. The bench process itself (the load generator, the backlog poll) is not counted; the
PostgreSQL and Redis work of that poll (a few queries after each run) is. Each setup is also
measured for 2 s without commands: its idle CPU, reported as ms per second, is the fixed cost that
the figures per command at low rates carry. The relays and consumers pay per batch (a transaction,
a read, an acknowledgement), and their batches grow with the rate and with the machine's load, so
their CPU per command falls with both: compare the setups within one run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
import msgspec
from redis.asyncio import Redis

from bench.commands import BenchmarkError, Server
from bench.paced import LoadResult, paced
from bench.pipeline import DRAIN_TIMEOUT, Observer, registrations

RATES = (100.0, 300.0, 600.0)
SECONDS = 4.0
WARM_UP = 2.0
IDLE = 2.0  # s without commands: the fixed cost, beside the cost per command
SAMPLE_EVERY = 0.5  # s, pg_stat_activity on the shared server
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
COMPONENTS = ("api", "api + supervisor", "supervisor", "postgres", "redis")


class CpuFigure(msgspec.Struct, frozen=True):
    """One setup at one paced rate: its answers and the CPU of each component per command."""

    setup: str
    rate: float
    load: LoadResult
    seconds: float  # the window: the paced run, plus the wait for the read models
    cpu_seconds: dict[str, float]  # component -> CPU seconds over the window

    def ms_per_command(self, component: str) -> float:
        return self.cpu_seconds.get(component, 0.0) / max(self.load.ok, 1) * 1000

    @property
    def total_ms(self) -> float:
        return sum(self.cpu_seconds.values()) / max(self.load.ok, 1) * 1000


class Idle(msgspec.Struct, frozen=True):
    """One setup without commands: what each component spends per second anyway."""

    setup: str
    seconds: float
    cpu_seconds: dict[str, float]

    def ms_per_second(self, component: str) -> float:
        return self.cpu_seconds.get(component, 0.0) / self.seconds * 1000

    @property
    def total_ms_per_second(self) -> float:
        return sum(self.cpu_seconds.values()) / self.seconds * 1000


class _Stat(msgspec.Struct, frozen=True):
    ppid: int
    own: float  # s: utime + stime
    reaped: float  # s: cutime + cstime


def _stat(pid: int) -> _Stat | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # exited meanwhile
    return _Stat(
        int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK
    )


def process_table() -> dict[int, _Stat]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            table[int(entry)] = stat
    return table


def descendants(root: int, table: dict[int, _Stat]) -> list[int]:
    """`root` and every process below it, if `root` is alive."""
    if root not in table:
        return []
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(stat.ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _listening_inode(port: int) -> str | None:
    wanted = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":  # LISTEN
            return fields[9]
    return None


def _holds(pid: int, target: str) -> bool:
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
            except OSError:
                continue
    except OSError:
        return False
    return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


Sample = Callable[[], Awaitable[dict[str, float]]]
T = TypeVar("T")


def process_tree(component: str, root: int) -> Sample:
    """Cumulative CPU seconds of `root`'s tree, as one component."""

    async def sample() -> dict[str, float]:
        table = process_table()
        return {component: sum(table[p].own + table[p].reaped for p in descendants(root, table))}

    return sample


def serve_tree(root: int, port: int) -> Sample:
    """`shopstream serve`: the processes holding the listening socket (and uvicorn's manager, the
    root, and multiprocessing's resource tracker) are the api; the others run the relays and
    consumers. One process alone holds both."""

    async def sample() -> dict[str, float]:
        table = process_table()
        tree = descendants(root, table)
        inode = _listening_inode(port)
        target = f"socket:[{inode}]"
        split: dict[str, float] = {"api": 0.0, "supervisor": 0.0}
        for pid in tree:
            serving = pid == root or _holds(pid, target) or "resource_tracker" in _cmdline(pid)
            split["api" if serving else "supervisor"] += table[pid].own + table[pid].reaped
        if len(tree) == 1:
            return {"api + supervisor": split["api"]}
        return split

    return sample


async def postmaster_pid(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        stat = _stat(int(await conn.fetchval("SELECT pg_backend_pid()")))  # while it lives
    finally:
        await conn.close()
    if stat is None:
        raise RuntimeError("cpu: PostgreSQL's processes are not readable in /proc (is it on this machine?)")
    return stat.ppid


class DatabaseBackends:
    """The shared server: CPU of the backends connected to one database, sampled every 0.5 s."""

    def __init__(self, database_url: str, database: str) -> None:
        self.database_url = database_url
        self.database = database
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def _pids(self, conn: asyncpg.Connection) -> list[int]:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", self.database)
        return [int(r["pid"]) for r in rows]

    def _note(self, pids: list[int], *, at_start: bool) -> None:
        for pid in pids:
            stat = _stat(pid)
            if stat is None:
                continue
            # A backend first seen after the start was born in the window: all its CPU counts.
            self.first.setdefault(pid, stat.own if at_start else 0.0)
            self.last[pid] = stat.own

    async def _watch(self, conn: asyncpg.Connection) -> None:
        while True:
            await asyncio.sleep(SAMPLE_EVERY)
            self._note(await self._pids(conn), at_start=False)

    async def begin(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.database_url)
        self.first, self.last = {}, {}
        self._note(await self._pids(conn), at_start=True)
        self.task = asyncio.create_task(self._watch(conn))
        return conn

    async def end(self, conn: asyncpg.Connection) -> float:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self._note(await self._pids(conn), at_start=False)
        await conn.close()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


async def redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class Meters:
    """Every component's CPU over a window: the server processes', PostgreSQL's and Redis's."""

    def __init__(
        self, database_url: str, redis: Redis, *, postmaster: int | None, backends: DatabaseBackends | None
    ) -> None:
        self.database_url = database_url
        self.redis = redis
        self.postmaster = postmaster
        self.backends = backends

    async def _postgres(self) -> float:
        assert self.postmaster is not None
        return (await process_tree("postgres", self.postmaster)())["postgres"]

    async def measure(
        self, servers: list[Sample], run: Callable[[], Awaitable[T]]
    ) -> tuple[T, float, dict[str, float]]:
        async def sample() -> dict[str, float]:
            found: dict[str, float] = {}
            for server in servers:
                found |= await server()
            if self.postmaster is not None:
                found["postgres"] = await self._postgres()
            found["redis"] = await redis_cpu(self.redis)
            return found

        conn = await self.backends.begin() if self.backends is not None else None
        before, started = await sample(), time.perf_counter()
        load = await run()
        after, seconds = await sample(), time.perf_counter() - started
        used = {name: max(0.0, after.get(name, 0.0) - value) for name, value in before.items()}
        if self.backends is not None and conn is not None:
            used["postgres"] = await self.backends.end(conn)
        return load, seconds, used


async def at_rates(
    setup: str,
    port: int,
    servers: list[Sample],
    meters: Meters,
    observer: Observer | None,
    rates: tuple[float, ...],
    seconds: float,
    log: Callable[[str], None],
) -> tuple[Idle, list[CpuFigure]]:
    """Idle for a moment, then each rate in turn: paced `POST /customers`, then (with an observer) the
    read models' catch-up."""
    await paced("127.0.0.1", port, "/customers", registrations(uuid.uuid4().hex[:8]), min(rates), WARM_UP)
    if observer is not None:
        await observer.drained(DRAIN_TIMEOUT)
    await asyncio.sleep(0.5)
    _, window, used = await meters.measure(servers, lambda: asyncio.sleep(IDLE))
    idle = Idle(setup, window, used)
    parts = "  ".join(f"{name} {idle.ms_per_second(name):.1f}" for name in COMPONENTS if name in used)
    log(f"{setup:<10} cpu idle: {idle.total_ms_per_second:.1f} ms/s ({parts})")
    found = []
    for rate in rates:

        async def run(rate: float = rate) -> LoadResult:
            load = await paced(
                "127.0.0.1", port, "/customers", registrations(uuid.uuid4().hex[:8]), rate, seconds
            )
            if observer is not None and await observer.drained(DRAIN_TIMEOUT * 2) is None:
                log(f"{setup:<10} cpu at {rate:,.0f}/s: the read models did not catch up")
            return load

        load, window, used = await meters.measure(servers, run)
        found.append(CpuFigure(setup, rate, load, window, used))
        log(describe(found[-1]))
        await asyncio.sleep(0.5)  # the last commits' aftermath (WAL writer, hint bits) settles
    return idle, found


def describe(f: CpuFigure) -> str:
    parts = "  ".join(f"{name} {f.ms_per_command(name):.2f}" for name in COMPONENTS if name in f.cpu_seconds)
    failed = f"  {f.load.failed:,} failed" if f.load.failed else ""
    return (
        f"{f.setup:<10} cpu at {f.rate:>5,.0f}/s: {f.total_ms:.2f} ms/command ({parts})"
        f"  answers {f.load.rate:,.0f}/s p99 {f.load.p99_ms:.1f} ms{failed}"
    )


def profile_rate(rates: tuple[float, ...]) -> float:
    """The rate the profile is taken at: 300/s if measured, else the middle one."""
    return 300.0 if 300.0 in rates else sorted(rates)[len(rates) // 2]


async def profile(
    server: Server,
    path: str,
    rate: float,
    observer: Observer,
    log: Callable[[str], None],
    seconds: float = 10.0,
) -> str:
    """py-spy (raw collapsed stacks, every process of `server`'s tree) while paced at `rate` for `seconds`."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise BenchmarkError("--cpu-profile needs py-spy (pip install py-spy)")
    argv = [py_spy, "record", "--subprocesses", "-p", str(server.proc.pid), "-d", f"{seconds + 1:.0f}",
            "-r", "100", "-f", "raw", "-o", path]  # fmt: skip
    recorder = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await asyncio.sleep(1)  # py-spy attaches first
    load = await paced(
        "127.0.0.1", server.port, "/customers", registrations(uuid.uuid4().hex[:8]), rate, seconds
    )
    await observer.drained(DRAIN_TIMEOUT * 2)
    await asyncio.wait_for(recorder.wait(), seconds + 30)
    log(f"profile    py-spy raw stacks of `{server.name}` at {rate:,.0f}/s ({load.ok:,} answers): {path}")
    return path
