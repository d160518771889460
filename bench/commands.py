"""Requests/s of the HTTP command path (`POST /customers`, `POST /categories`) beside a bare Litestar +
asyncpg baseline.

    python -m bench.commands [--duration 8] [--rounds 3] [--connections 32] [--threads 2]
                             [--warmup 2] [--routes customers,categories] [--profile FILE]

PostgreSQL and Redis come from BENCH_DATABASE_URL / BENCH_REDIS_URL, else SHOPSTREAM_TEST_DATABASE_URL /
SHOPSTREAM_TEST_REDIS_URL, else embedded servers started in a temporary directory. The run works in a
scratch database (ShopStream's migrations plus the baseline's `bare` schema) and under a unique Redis
key prefix, both removed at the end. Needs `wrk` (https://github.com/wg/wrk).

Two servers run side by side on free ports, each one uvicorn process with the same options (those of
`shopstream api`; httptools and uvloop) and a pool of SHOPSTREAM_DB_POOL_SIZE connections:

- shopstream: `shopstream api` (validation, command bus mailbox, unit of work inserting the customer
  row and one outbox row, whose trigger sends pg_notify, commit);
- baseline: `bench.bare_app` (decode the same body, insert one row into each of two tables, commit).

wrk drives each route in turn: `POST /customers` with a unique external_id and e-mail per request,
`POST /categories` with a unique root category name (same body shape for both servers). After a short warm-up of each, runs alternate baseline, shopstream, baseline, ... and end with a
baseline, so that every shopstream run is bracketed and drifting load elsewhere on the machine biases
neither side. Only 2xx answers count; more than 1% of other answers (or of socket errors) fails the
benchmark. Each run also shows the CPU time the server process used per request: a server at 100% of
one core is the bottleneck, and that figure is what the ratio compares. With --profile FILE, one extra
(unreported) shopstream run is recorded by py-spy as raw collapsed stacks.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg
import msgspec
from redis import Redis

from bench.common import admin, backing_servers, machine_facts, with_database
from shopstream.bootstrap import migration_plan
from shopstream.migrate import migrate_all
from shopstream.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MAX_FAILED = 0.01  # non-2xx answers (and, apart, socket errors) tolerated, as a share of all answers
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0  # uvicorn's graceful shutdown is 10s

# The tables of bench/bare_app.py: one aggregate row and one outbox row per command.
BARE_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS bare;
CREATE TABLE IF NOT EXISTS bare.customers (
    id      uuid PRIMARY KEY,
    state   jsonb,
    version int
);
CREATE TABLE IF NOT EXISTS bare.categories (
    id      uuid PRIMARY KEY,
    state   jsonb,
    version int
);
CREATE TABLE IF NOT EXISTS bare.outbox (
    position     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid,
    aggregate_id uuid,
    payload      jsonb,
    published_at timestamptz
);
"""

# One Lua state per wrk thread: setup() (in the main state) numbers the threads, so that ids are
# unique per run tag (the script's argument), thread and request. done() reports the summary as JSON.
WRK_SCRIPT = r"""
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function init(args)
  prefix = (args[1] or "run") .. "-" .. thread_no .. "-"
  route = args[2] or "customers"
  count = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  count = count + 1
  local id = prefix .. count
  local body
  if route == "categories" then
    body = '{"name":"Category ' .. id .. '","attributes":{"season":"summer"}}'
  else
    body = '{"external_id":"ext-' .. id .. '","email":"user-' .. id .. '@bench.example",'
      .. '"first_name":"Ada","last_name":"Lovelace"}'
  end
  return wrk.format(nil, "/" .. route, nil, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK-RESULT {"requests":%d,"duration_us":%d,"non_2xx_3xx":%d,"connect":%d,"read":%d,'
      .. '"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class BenchmarkError(Exception):
    """A server did not start, or answered too many requests with an error."""


class WrkResult(msgspec.Struct, frozen=True):
    requests: int  # answers received
    duration_us: int
    non_2xx_3xx: int  # the "Non-2xx or 3xx responses" of wrk's report
    connect: int
    read: int
    write: int
    timeout: int
    p50_us: int
    p99_us: int

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx_3xx

    @property
    def rate(self) -> float:
        """2xx answers per second."""
        return self.ok / (self.duration_us / 1e6)


class Run(msgspec.Struct, frozen=True):
    """One wrk run against one server, and the CPU time that server used meanwhile (None off Linux)."""

    wrk: WrkResult
    server_cpu: float | None

    @property
    def rate(self) -> float:
        return self.wrk.rate

    def describe(self) -> str:
        w = self.wrk
        text = (
            f"{w.rate:>8,.0f} req/s   p50 {w.p50_us / 1000:5.1f} ms   p99 {w.p99_us / 1000:5.1f} ms"
            f"   ({w.ok:,} x 2xx in {w.duration_us / 1e6:.1f}s)"
        )
        if self.server_cpu is not None:
            text += (
                f"   server CPU {self.server_cpu / (w.duration_us / 1e6):4.0%}"
                f" = {self.server_cpu / w.ok * 1e6:,.0f} us/request"
            )
        errors = w.connect + w.read + w.write + w.timeout
        text += f"   {w.non_2xx_3xx:,} non-2xx" if w.non_2xx_3xx else ""
        text += f"   {errors:,} socket errors" if errors else ""
        return text


class Server:
    """One server process on 127.0.0.1:port, its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], port: int, log: Path) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_until_answering(self, path: str | None, timeout: float = START_TIMEOUT) -> None:
        """Until GET `path` answers 200 (`path` None: any HTTP answer at all)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchmarkError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", path or "/")
                    if path is None or conn.getresponse().status == 200:
                        return
                finally:
                    conn.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{self.name} did not answer within {timeout:.0f}s:\n{self.output()}")
            time.sleep(0.2)

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far (Linux /proc), else None."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(
    database_url: str, redis_url: str, redis_prefix: str, port: int, data_dir: str
) -> dict[str, str]:
    """The inherited environment without any ShopStream setting, plus the run's own."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("DATABASE_URL") and not k.startswith(("SHOPSTREAM_", "OTEL_")) and k != "REDIS_URL"
    }
    return inherited | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SHOPSTREAM_REDIS_PREFIX": redis_prefix,
        "SHOPSTREAM_DATA_DIR": data_dir,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def shopstream_argv() -> list[str]:
    script = Path(sys.executable).parent / "shopstream"
    return [str(script), "api"] if script.exists() else [sys.executable, "-m", "shopstream.cli", "api"]


def bare_argv(port: int) -> list[str]:
    """uvicorn with the options `shopstream api` passes to uvicorn.run (shopstream/cli.py)."""
    return [
        sys.executable, "-m", "uvicorn", "bench.bare_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
        "--lifespan", "on", "--timeout-graceful-shutdown", "10",
    ]  # fmt: skip


def wrk(
    wrk_path: str, script: Path, url: str, tag: str, args: argparse.Namespace, seconds: float
) -> WrkResult:
    """wrk posting to `url`, whose last path segment names the route the script builds bodies for."""
    argv = [
        wrk_path, f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s", "--timeout", "5s",
        "-s", str(script), url, "--", tag, url.rsplit("/", 1)[1],
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    for text in done.stdout.splitlines():
        if text.startswith("WRK-RESULT "):
            return msgspec.json.decode(text.removeprefix("WRK-RESULT "), type=WrkResult)
    raise BenchmarkError(f"wrk exited with {done.returncode} and no result:\n{done.stdout}{done.stderr}")


def checked(server: Server, result: WrkResult) -> WrkResult:
    if result.requests == 0:
        raise BenchmarkError(f"{server.name}: no answer at all; its log:\n{server.output()}")
    errors = result.connect + result.read + result.write + result.timeout
    for count, what in ((result.non_2xx_3xx, "answers were not 2xx"), (errors, "requests hit socket errors")):
        if count > MAX_FAILED * result.requests:
            raise BenchmarkError(
                f"{server.name}: {count:,} of {result.requests:,} {what} (more than {MAX_FAILED:.0%});"
                f" its log:\n{server.output()}"
            )
    return result


async def prepare(database_server: str, database: str, settings: Settings) -> str:
    """Create the scratch database, apply ShopStream's migrations and the baseline's schema."""
    await admin(database_server, f'CREATE DATABASE "{database}"')
    await migrate_all(migration_plan(settings))
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(BARE_SCHEMA)
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


@contextmanager
def scratch(database_server: str, redis_url: str, run_id: str) -> Iterator[tuple[Settings, str, Redis]]:
    """Settings naming a scratch database and Redis prefix (both removed on exit), the PostgreSQL
    version and a Redis client."""
    database = f"bench_{run_id}"
    settings = Settings(
        database_url=with_database(database_server, database),
        redis_url=redis_url,
        redis_prefix=f"bench-{run_id}",
    )
    redis = Redis.from_url(redis_url, socket_connect_timeout=2.0)
    try:
        yield settings, asyncio.run(prepare(database_server, database, settings)), redis
    finally:
        try:
            asyncio.run(admin(database_server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        finally:
            keys = list(redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000))
            if keys:
                redis.delete(*keys)
            redis.close()


def profile(server: Server, path: str, run: Callable[[], object], seconds: float) -> None:
    """Record `server` with py-spy (raw collapsed stacks in `path`) while `run()` drives it."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise BenchmarkError("--profile needs py-spy (pip install py-spy)")
    # Not --nonblocking: reading a running process tears most asyncio stacks (two thirds of the samples
    # lost their outer frames in a trial), which hides where request time goes. Pausing it 100 times a
    # second costs it some 15-30% of its rate, which is why the profiled run is an extra, unreported one.
    argv = [py_spy, "record", "-p", str(server.proc.pid), "-d", f"{seconds:.0f}", "-f", "raw", "-o", path]
    recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        run()
    finally:
        recorder.wait(seconds + 30)


class CommandFigure(msgspec.Struct, frozen=True):
    """One route: the shopstream runs and the baseline runs bracketing them."""

    route: str
    shopstream: list[Run]
    baseline: list[Run]

    @property
    def rate(self) -> float:
        return statistics.fmean([r.rate for r in self.shopstream])

    @property
    def baseline_rate(self) -> float:
        return statistics.fmean([r.rate for r in self.baseline])

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline_rate

    def describe(self) -> str:
        per_run = [
            r.rate / statistics.fmean([self.baseline[i].rate, self.baseline[i + 1].rate])
            for i, r in enumerate(self.shopstream)
        ]
        return (
            f"result    {self.route}: shopstream {self.rate:,.0f} req/s   baseline {self.baseline_rate:,.0f} req/s"
            f" (mean of {' / '.join(f'{r.rate:,.0f}' for r in self.baseline)})   ratio {self.ratio:.2f}"
            f"   (per run, against the baselines around it: {', '.join(f'{x:.2f}' for x in per_run)})"
        )


ROUTES = ("customers", "categories")


def bench(
    args: argparse.Namespace, wrk_path: str, database_server: str, redis_url: str
) -> list[CommandFigure]:
    run_id = uuid.uuid4().hex[:10]
    pool_size = Settings().db_pool_size  # the servers inherit no SHOPSTREAM_* variable: the default
    figures: list[CommandFigure] = []
    with ExitStack() as stack:
        settings, postgres_version, redis = stack.enter_context(scratch(database_server, redis_url, run_id))
        print(machine_facts(postgres_version, str(redis.info("server")["redis_version"])))
        print(
            f"settings  wrk -t{args.threads} -c{args.connections}, {args.duration:g}s per run,"
            f" {args.rounds} shopstream run(s) between {args.rounds + 1} baseline runs,"
            f" {args.warmup:g}s warm-up each; one uvicorn process each, pool {pool_size};"
            f" load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-commands-")))
        script = workdir / "commands.lua"
        script.write_text(WRK_SCRIPT)
        database_url = settings.database_url
        assert database_url is not None

        def start(name: str, argv: list[str], port: int) -> Server:
            env = server_env(database_url, redis_url, settings.redis_prefix, port, str(workdir / "data"))
            server = Server(name, argv, env, port, workdir / f"{name}.log")
            stack.callback(server.stop)
            return server

        bare_port, shop_port = free_port(), free_port()
        bare = start("baseline", bare_argv(bare_port), bare_port)
        shop = start("shopstream", shopstream_argv(), shop_port)
        bare.wait_until_answering(None)
        shop.wait_until_answering("/ready")

        for route in args.routes:

            def drive(server: Server, tag: str, seconds: float, route: str = route) -> Run:
                cpu_before = server.cpu_seconds()
                result = checked(server, wrk(wrk_path, script, f"{server.url}/{route}", tag, args, seconds))
                cpu_after = server.cpu_seconds()
                used = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
                return Run(result, used)

            print(f"route     POST /{route}", flush=True)
            if args.warmup > 0:
                drive(bare, "warm", args.warmup)
                drive(shop, "warm", args.warmup)
            baseline: list[Run] = []
            measured: list[Run] = []
            for round_no in range(1, args.rounds + 2):
                baseline.append(drive(bare, f"b{round_no}", args.duration))
                print(f"baseline   run {round_no}  {baseline[-1].describe()}", flush=True)
                if round_no <= args.rounds:
                    measured.append(drive(shop, f"s{round_no}", args.duration))
                    print(f"shopstream run {round_no}  {measured[-1].describe()}", flush=True)
            figures.append(CommandFigure(route, measured, baseline))
            print(figures[-1].describe(), flush=True)

        if getattr(args, "profile", None):
            seconds = args.duration + 2

            def profiled_run() -> None:
                time.sleep(1)  # py-spy attaches first
                checked(
                    shop,
                    wrk(wrk_path, script, f"{shop.url}/{args.routes[0]}", "profile", args, args.duration),
                )

            profile(shop, args.profile, profiled_run, seconds)
            print(f"profile   py-spy raw stacks of shopstream under load: {args.profile}")
    return figures


def options(parser: argparse.ArgumentParser, duration: float = 8.0, rounds: int = 3) -> None:
    parser.add_argument(
        "--duration", type=float, default=duration, help=f"seconds per wrk run (default {duration:g})"
    )
    parser.add_argument("--rounds", type=int, default=rounds, help=f"shopstream runs (default {rounds})")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per server (default 2)")
    parser.add_argument(
        "--routes",
        type=lambda text: text.split(","),
        default=list(ROUTES),
        help=f"commands to post, comma separated (default {','.join(ROUTES)})",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options(parser)
    parser.add_argument("--profile", metavar="FILE", help="py-spy raw stacks of one extra shopstream run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    wrk_path = shutil.which("wrk")
    if wrk_path is None:
        print(
            "bench.commands needs wrk (https://github.com/wg/wrk): `apt-get install wrk` on Debian/Ubuntu,"
            " `brew install wrk` on macOS.",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    try:
        with backing_servers() as (database_server, redis_url):
            bench(args, wrk_path, database_server, redis_url)
    except BenchmarkError as exc:
        print(f"bench.commands: {exc}", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
