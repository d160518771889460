"""`just bench`: one end-to-end report, every figure beside a baseline measured in the same run.

    python -m bench.report [--step 6] [--start-rate 200] [--bisections 3] [--serve-workers N]
                           [--duration 5] [--rounds 2] [--cpu-rates 100,300,600] [--cpu-seconds 4]
                           [--cpu-shared-servers] [--cpu-profile FILE]

PostgreSQL and Redis come from BENCH_DATABASE_URL / BENCH_REDIS_URL, else SHOPSTREAM_TEST_DATABASE_URL /
SHOPSTREAM_TEST_REDIS_URL, else embedded servers; each part works in a scratch database and Redis key
prefix removed at the end. Needs `wrk`. Parts, in order:

1. command path (bench.commands): `POST /customers` and `POST /categories`, wrk closed loop, against
   the bare Litestar + asyncpg endpoint;
2. the load generator (bench.paced) on `GET /health` of `shopstream serve`, beside wrk on the same;
3. sustained rate (bench.pipeline) of the bare endpoint (answers only), of `shopstream serve` and of
   `shopstream api` + `shopstream worker` (answers and read models caught up);
4. commit -> read-model lag at 25/50/75% of each sustained rate;
5. a 10,000-registration backlog drained by `shopstream worker`, beside the rate the API took it in;
6. a blue/green rebuild of a 100,000-event log (bench.rebuild) beside the live consumer's rate on the
   same log, with a reader polling through it;
7. search latency on 50,000 products (bench.search): `q`, a price range with its facet and a category
   subtree, each beside the same query on the unfiltered list, at 1 and 16 clients (wrk);
8. CPU per end-to-end command by component (bench.cpu): api, supervisor, PostgreSQL and Redis, at
   fixed paced rates (--cpu-rates), for the bare endpoint, `shopstream serve` and `shopstream api` +
   `shopstream worker`, on a private PostgreSQL cluster and redis-server (--cpu-shared-servers: the
   run's own), each setup's idle CPU beside it.

Then the targets (CPU per command of `serve` at 300/s <= 2 x the bare endpoint's, supervisor CPU per
command <= 0.5 ms, `serve` sustained >= 0.6 x the bare endpoint, lag p99 < 25 ms at half `serve`'s
sustained rate, a 10,000-event backlog < 1.5 s), each met or not. The report goes to
bench/results/<UTC timestamp>.json, .md and .png (bench.plot: throughput and lag against the rate,
CPU per command by component; needs the `bench` extra), and its tables are printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from redis.asyncio import Redis as AsyncRedis

from bench import commands, cpu, pipeline, plot
from bench import rebuild as rebuild_bench
from bench import search as search_bench
from bench.commands import BenchmarkError, Server, bare_argv, free_port, scratch, server_env, shopstream_argv
from bench.common import backing_servers, machine_facts, private_servers
from bench.paced import LoadResult
from shopstream import eventloop
from shopstream.settings import Settings

RESULTS = Path(__file__).parent / "results"
LAG_FRACTIONS = (0.25, 0.5, 0.75)
# The targets the report checks (README, "Performance").
CPU_RATIO_TARGET = 2.0  # CPU per end-to-end command of `serve` at 300/s, as a multiple of the bare endpoint's
SUPERVISOR_MS_TARGET = 0.5  # ms of the relays' and consumers' CPU per command at 300/s
SUSTAINED_TARGET = 0.6  # `serve`'s sustained rate, as a share of the bare endpoint's
LAG_P99_TARGET = 25.0  # ms, commit -> last identity read model at half `serve`'s sustained rate
BACKLOG_TARGET = 1.5  # s, 10,000 events through the relay and every identity projection


def cli(*words: str) -> list[str]:
    return shopstream_argv()[:-1] + list(words)


def serve_argv(workers: int | None) -> list[str]:
    """`shopstream serve`, with --workers only when asked for and the CLI offers it."""
    if workers is None:
        return cli("serve")
    offered = subprocess.run(cli("serve", "--help"), capture_output=True, text=True, check=False).stdout
    return cli("serve", "--workers", str(workers)) if "--workers" in offered else cli("serve")


def wrk_rate(wrk_path: str, url: str, seconds: float) -> float:
    done = subprocess.run(
        [wrk_path, "-t2", "-c32", f"-d{seconds:g}s", url], capture_output=True, text=True, check=False
    )
    found = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
    if found is None:
        raise BenchmarkError(f"wrk on {url}: {done.stdout}{done.stderr}")
    return float(found.group(1))


class Setup(msgspec.Struct):
    """The searched rate of one deployment, and its lag at fractions of it."""

    name: str
    sustained: float
    steps: list[pipeline.Step]
    lags: list[pipeline.Lag] = []


class Target(msgspec.Struct, frozen=True):
    """One target of the report: the measured value against the bound (ratio = measured / bound)."""

    name: str
    measured: str
    bound: str
    ratio: float | None  # None: not measured in this run
    met: bool


class Report(msgspec.Struct):
    started_at: str
    seconds: float
    machine: str
    settings: dict[str, Any]
    commands: list[dict[str, Any]]
    generator: LoadResult
    generator_wrk_rate: float
    bare: Setup
    setups: list[Setup]
    backlog: pipeline.Backlog
    backlog_fill: LoadResult
    rebuild: rebuild_bench.RebuildFigure
    search: list[search_bench.SearchFigure]
    cpu_servers: str
    cpu_idle: list[cpu.Idle]
    cpu: list[cpu.CpuFigure]
    targets: list[Target] = []
    load_average: list[float] = []  # the machine's 1-minute load average at the start and at the end


Start = Callable[..., Server]


def starter(stack: ExitStack, settings: Settings, redis_url: str, workdir: Path) -> Start:
    assert settings.database_url is not None
    database_url: str = settings.database_url

    def start(
        name: str, argv: list[str], port: int, *, http: bool = True, ready: str | None = "/ready"
    ) -> Server:
        """A server process; with `http`, once GET `ready` answers 200 (None: once it answers at all)."""
        env = server_env(database_url, redis_url, settings.redis_prefix, port, str(workdir / "data"))
        server = Server(name, argv, env, port, workdir / f"{name}.log")
        stack.callback(server.stop)
        if http:
            server.wait_until_answering(ready)
        return server

    return start


def pipeline_part(
    args: argparse.Namespace, wrk_path: str, database_server: str, redis_url: str, log: Any
) -> tuple[str, dict[str, Any]]:
    run_id = uuid.uuid4().hex[:10]
    with ExitStack() as stack:
        settings, postgres_version, redis = stack.enter_context(scratch(database_server, redis_url, run_id))
        machine = machine_facts(postgres_version, str(redis.info("server")["redis_version"]))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pipeline-")))
        start = starter(stack, settings, redis_url, workdir)

        async def run() -> dict[str, Any]:
            search = {
                "start_rate": args.start_rate,
                "seconds": args.step,
                "bisections": args.bisections,
                "log": log,
            }
            observer = await pipeline.Observer.open(settings)
            try:
                port = free_port()
                bare = start("baseline", bare_argv(port), port, ready=None)
                bare_rate, bare_steps = await pipeline.sustained("bare", bare, None, **search)
                bare.stop()

                port = free_port()
                serve = start("serve", serve_argv(args.serve_workers), port)
                generator = await pipeline.generator_capacity(serve, args.step)
                wrk_health = wrk_rate(wrk_path, f"{serve.url}/health", args.step)
                log(
                    f"generator  GET /health: {generator.rate:,.0f}/s (p99 {generator.p99_ms:.1f} ms); wrk {wrk_health:,.0f}/s"
                )
                setups = []
                rate, steps = await pipeline.sustained("serve", serve, observer, **search)
                lags = await pipeline.lags("serve", serve, observer, rate, LAG_FRACTIONS, args.step, log)
                setups.append(Setup("serve", rate, steps, lags))
                serve.stop()

                port = free_port()
                api = start("api", cli("api"), port)
                worker = start("worker", cli("worker", "--metrics-port", "0"), port, http=False)
                rate, steps = await pipeline.sustained("api+worker", api, observer, **search)
                lags = await pipeline.lags("api+worker", api, observer, rate, LAG_FRACTIONS, args.step, log)
                setups.append(Setup("api + worker", rate, steps, lags))
                worker.stop()

                before = await pipeline.last_position(observer)
                fill = await pipeline.fill_backlog(api, observer, pipeline.BACKLOG)
                log(
                    f"backlog    {pipeline.BACKLOG:,} registrations taken by `api` alone at {fill.rate:,.0f}/s"
                )
                started = time.perf_counter()
                start("worker-backlog", cli("worker", "--metrics-port", "0"), port, http=False)
                seconds, with_start = await pipeline.drain_backlog(observer, before, started)
                backlog = pipeline.Backlog(pipeline.BACKLOG, fill.rate, seconds, with_start)
                log(
                    f"backlog    drained in {seconds:.2f}s from first publication ({backlog.rate:,.0f} ev/s;"
                    f" {with_start:.2f}s from worker start)"
                )
            finally:
                await observer.close()
            return {
                "generator": generator,
                "generator_wrk_rate": wrk_health,
                "bare": Setup("bare endpoint", bare_rate, bare_steps),
                "setups": setups,
                "backlog": backlog,
                "backlog_fill": fill,
            }

        return machine, eventloop.run(run())


def cpu_part(
    args: argparse.Namespace, log: Any
) -> tuple[str, list[cpu.Idle], list[cpu.CpuFigure], str | None]:
    """CPU per command by component at fixed rates: the bare endpoint, `serve`, `api` + `worker`, on
    private servers (or, with --cpu-shared-servers, the run's own). Returns where PostgreSQL and Redis
    ran, each setup's idle CPU, the figures, and the profile written (with --cpu-profile)."""
    run_id = uuid.uuid4().hex[:10]
    rates = tuple(args.cpu_rates)
    with ExitStack() as stack:
        if args.cpu_shared_servers:
            where = "shared servers: PostgreSQL backends of the scratch database only, Redis whole server"
            database_server, redis_url = stack.enter_context(backing_servers())
        else:
            where = "private PostgreSQL cluster and redis-server, started for this part"
            database_server, redis_url = stack.enter_context(private_servers())
        settings, _, _ = stack.enter_context(scratch(database_server, redis_url, run_id))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cpu-")))
        start = starter(stack, settings, redis_url, workdir)
        assert settings.database_url is not None
        database_url: str = settings.database_url
        log(f"cpu        {where}; {args.cpu_seconds:g}s at each of {', '.join(f'{r:g}' for r in rates)}/s")

        async def run() -> tuple[list[cpu.Idle], list[cpu.CpuFigure], str | None]:
            observer = await pipeline.Observer.open(settings)
            redis = AsyncRedis.from_url(redis_url)
            shared = args.cpu_shared_servers
            meters = cpu.Meters(
                database_url,
                redis,
                postmaster=None if shared else await cpu.postmaster_pid(database_url),
                backends=cpu.DatabaseBackends(database_url, f"bench_{run_id}") if shared else None,
            )
            measure = {"meters": meters, "rates": rates, "seconds": args.cpu_seconds, "log": log}
            profiled = None
            try:
                port = free_port()
                bare = start("cpu-baseline", bare_argv(port), port, ready=None)
                idle, found = await cpu.at_rates(
                    "bare", port, [cpu.process_tree("api", bare.proc.pid)], observer=None, **measure
                )
                idles = [idle]
                bare.stop()

                port = free_port()
                serve = start("cpu-serve", serve_argv(args.serve_workers), port)
                idle, at_rates = await cpu.at_rates(
                    "serve", port, [cpu.serve_tree(serve.proc.pid, port)], observer=observer, **measure
                )
                idles.append(idle)
                found += at_rates
                if args.cpu_profile:
                    profiled = await cpu.profile(
                        serve, args.cpu_profile, cpu.profile_rate(rates), observer, log
                    )
                serve.stop()

                port = free_port()
                api = start("cpu-api", cli("api"), port)
                worker = start("cpu-worker", cli("worker", "--metrics-port", "0"), port, http=False)
                trees = [
                    cpu.process_tree("api", api.proc.pid),
                    cpu.process_tree("supervisor", worker.proc.pid),
                ]
                idle, at_rates = await cpu.at_rates("api+worker", port, trees, observer=observer, **measure)
                idles.append(idle)
                found += at_rates
            finally:
                await redis.aclose()
                await observer.close()
            return idles, found, profiled

        idles, figures, profiled = eventloop.run(run())
        return where, idles, figures, profiled


def cpu_or_why_not(args: argparse.Namespace, log: Any) -> tuple[str, list[cpu.Idle], list[cpu.CpuFigure]]:
    """The CPU part, or why it was left out: the rest of the report stands without it."""
    if not Path("/proc/self/stat").exists():
        reason = "not measured: needs Linux's /proc"
    else:
        try:
            where, idles, figures, _ = cpu_part(args, log)
            return where, idles, figures
        except (BenchmarkError, RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            reason = f"not measured: {exc}"
    log(f"cpu        {reason}")
    return reason, [], []


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}" if baseline else "—"


def table(report: Report) -> str:
    rows = [
        "| figure | ShopStream | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for figure in report.commands:
        rows.append(
            f"| command path `POST /{figure['route']}` (wrk, closed loop) | {figure['rate']:,.0f} req/s"
            f" | bare endpoint {figure['baseline_rate']:,.0f} req/s | {figure['ratio']:.2f} | ≥ 0.85 |"
        )
    bare = report.bare.sustained
    for setup in report.setups:
        rows.append(
            f"| sustained end to end, `{setup.name}` (paced, read models caught up) | {setup.sustained:,.0f} cmd/s"
            f" | bare endpoint {bare:,.0f} req/s (paced, answers only) | {ratio(setup.sustained, bare)}"
            f" | {'≥ 0.6' if setup.name == 'serve' else '—'} |"
        )
    for setup in report.setups:
        for lag in setup.lags:
            rows.append(
                f"| commit → read model lag p50 / p99, `{setup.name}` at {lag.fraction:.0%} ({lag.rate:,.0f}/s)"
                f" | {lag.p50_ms:.1f} / {lag.p99_ms:.1f} ms | its answers p50 / p99 {lag.load.p50_ms:.1f} /"
                f" {lag.load.p99_ms:.1f} ms | — | {'p99 < 25 ms' if lag.fraction == 0.5 and setup.name == 'serve' else '—'} |"
            )
    b = report.backlog
    rows.append(
        f"| {b.events:,}-event backlog through relay + every read model of identity's events | {b.seconds:.2f} s"
        f" ({b.rate:,.0f} ev/s; {b.with_start_seconds:.2f} s from worker start)"
        f" | `api` took them in at {b.fill_rate:,.0f} req/s | {ratio(b.rate, b.fill_rate)} | < {BACKLOG_TARGET:g} s |"
    )
    r = report.rebuild
    rows.append(
        f"| blue/green rebuild of `{rebuild_bench.PROJECTION}`, {r.events:,}-event log, reader polling"
        f" | {r.rebuild_rate:,.0f} ev/s ({r.rebuild_seconds:.1f} s; {r.failed_reads} of {r.reads:,} reads failed)"
        f" | live consumer {r.live_rate:,.0f} ev/s | {ratio(r.rebuild_rate, r.live_rate)}"
        f" | ≥ {rebuild_bench.TARGET}, 0 failed |"
    )
    for searched in report.search:
        for ours, base in zip(searched.search, searched.baseline, strict=True):
            rows.append(
                f"| search p50 / p99, {searched.name}, {ours.clients} client(s), 50,000 products"
                f" | {ours.p50_ms:.1f} / {ours.p99_ms:.1f} ms | unfiltered list {base.p50_ms:.1f} /"
                f" {base.p99_ms:.1f} ms | {ratio(ours.p50_ms, base.p50_ms)} | — |"
            )
    rows.append(
        f"| load generator, `GET /health` (closed loop, 32 connections) | {report.generator.rate:,.0f} req/s"
        f" | wrk {report.generator_wrk_rate:,.0f} req/s | {ratio(report.generator.rate, report.generator_wrk_rate)} | — |"
    )
    return "\n".join(rows)


def cpu_table(report: Report) -> str:
    if not report.cpu:
        return report.cpu_servers
    shown = [c for c in cpu.COMPONENTS if any(c in f.cpu_seconds for f in report.cpu)]
    rows = [
        "| setup | rate | answers/s (p99) | " + " | ".join(shown) + " | total | x bare |",
        "|---|---|---|" + "---|" * len(shown) + "---|---|",
    ]
    for idle in report.cpu_idle:
        cells = " | ".join(f"{idle.ms_per_second(c):.1f}" if c in idle.cpu_seconds else "—" for c in shown)
        rows.append(
            f"| {plot.SETUP_NAMES.get(idle.setup, idle.setup)} | idle, ms CPU per second | — | {cells}"
            f" | {idle.total_ms_per_second:.1f} | — |"
        )
    bare = {f.rate: f.total_ms for f in report.cpu if f.setup == "bare"}
    for f in sorted(report.cpu, key=lambda f: (f.rate, list(plot.SETUP_NAMES).index(f.setup))):
        cells = " | ".join(f"{f.ms_per_command(c):.2f}" if c in f.cpu_seconds else "—" for c in shown)
        rows.append(
            f"| {plot.SETUP_NAMES.get(f.setup, f.setup)} | {f.rate:,.0f}/s | {f.load.rate:,.0f} ({f.load.p99_ms:.1f} ms)"
            f" | {cells} | {f.total_ms:.2f} | {ratio(f.total_ms, bare.get(f.rate, 0.0))} |"
        )
    return "\n".join(rows)


def _cpu_at(report: Report, setup: str, rate: float) -> cpu.CpuFigure | None:
    return next((f for f in report.cpu if f.setup == setup and f.rate == rate), None)


def _behind(f: cpu.CpuFigure) -> str:
    """A caveat when the setup did not keep pace: its batches grew, so its CPU per command fell."""
    if f.load.rate >= pipeline.MIN_PACE * f.rate:
        return ""
    return f" (answered {f.load.rate:,.0f}/s, behind the rate: larger batches, less CPU each)"


def targets(report: Report) -> list[Target]:
    found = []
    rate = cpu.profile_rate(tuple(sorted({f.rate for f in report.cpu}))) if report.cpu else 300.0
    serve, bare = _cpu_at(report, "serve", rate), _cpu_at(report, "bare", rate)
    if serve and bare:
        multiple = serve.total_ms / bare.total_ms
        found.append(
            Target(
                f"CPU per end-to-end command at {rate:g}/s, `serve` beside the bare endpoint",
                f"{serve.total_ms:.2f} ms vs {bare.total_ms:.2f} ms = {multiple:.2f} x{_behind(serve)}",
                f"≤ {CPU_RATIO_TARGET:g} x",
                multiple / CPU_RATIO_TARGET,
                multiple <= CPU_RATIO_TARGET,
            )
        )
    else:
        found.append(
            Target(
                "CPU per end-to-end command, `serve` beside the bare endpoint",
                report.cpu_servers,
                f"≤ {CPU_RATIO_TARGET:g} x",
                None,
                False,
            )
        )
    # `serve --workers 1` runs the supervisor inside the API process: then the api + worker split tells.
    with_supervisor = [
        f for f in (serve, _cpu_at(report, "api+worker", rate)) if f and "supervisor" in f.cpu_seconds
    ]
    if with_supervisor:
        f = with_supervisor[0]
        ms = f.ms_per_command("supervisor")
        found.append(
            Target(
                f"supervisor (relays + consumers) CPU per command at {rate:g}/s, `{plot.SETUP_NAMES[f.setup]}`",
                f"{ms:.2f} ms{_behind(f)}",
                f"≤ {SUPERVISOR_MS_TARGET:g} ms",
                ms / SUPERVISOR_MS_TARGET,
                ms <= SUPERVISOR_MS_TARGET,
            )
        )
    else:
        found.append(
            Target(
                "supervisor (relays + consumers) CPU per command",
                report.cpu_servers,
                f"≤ {SUPERVISOR_MS_TARGET:g} ms",
                None,
                False,
            )
        )
    sustained = next((s for s in report.setups if s.name == "serve"), None)
    if sustained is not None and report.bare.sustained:
        share = sustained.sustained / report.bare.sustained
        found.append(
            Target(
                "sustained end to end, `serve`, beside the bare endpoint",
                f"{sustained.sustained:,.0f} vs {report.bare.sustained:,.0f} cmd/s = {share:.2f} x",
                f"≥ {SUSTAINED_TARGET:g} x",
                share / SUSTAINED_TARGET,
                share >= SUSTAINED_TARGET,
            )
        )
        half = next((lag for lag in sustained.lags if lag.fraction == 0.5), None)
        if half is not None and sustained.sustained:
            found.append(
                Target(
                    f"commit → read model lag p99, `serve` at 50 % ({half.rate:,.0f}/s)",
                    f"{half.p99_ms:.1f} ms",
                    f"< {LAG_P99_TARGET:g} ms",
                    half.p99_ms / LAG_P99_TARGET,
                    half.p99_ms < LAG_P99_TARGET,
                )
            )
    b = report.backlog
    found.append(
        Target(
            f"{b.events:,}-event backlog through relay + every identity projection",
            f"{b.seconds:.2f} s",
            f"< {BACKLOG_TARGET:g} s",
            b.seconds / BACKLOG_TARGET,
            b.seconds < BACKLOG_TARGET,
        )
    )
    return found


def targets_table(report: Report) -> str:
    rows = ["| target | measured | bound | measured / bound | |", "|---|---|---|---|---|"]
    for t in report.targets:
        shown = "—" if t.ratio is None else f"{t.ratio:.2f}"
        verdict = "not measured" if t.ratio is None else "met" if t.met else "**not met**"
        rows.append(f"| {t.name} | {t.measured} | {t.bound} | {shown} | {verdict} |")
    return "\n".join(rows)


def markdown(report: Report, picture: str | None) -> str:
    drawn = (
        f"![throughput, lag and CPU per command]({picture})\n\n"
        if picture
        else "(no plot: matplotlib is not installed)\n\n"
    )
    return (
        f"# `just bench` — {report.started_at}\n\n{report.machine}  \n"
        f"load average (1 min, the whole machine) at start / end: {' / '.join(f'{x:.1f}' for x in report.load_average)}  \n"
        f"{report.seconds:.0f} s; settings {msgspec.json.encode(report.settings).decode()}\n\n"
        f"## Targets\n\n{targets_table(report)}\n\n{drawn}"
        f"## Figures\n\n{table(report)}\n\n"
        f"## CPU per end-to-end command (ms), by component\n\n{report.cpu_servers}; the window is the paced"
        f" run plus the wait until every identity read model caught up (bench/cpu.py). The relays and"
        f" consumers pay per batch, and batches grow with the rate and with the machine's load: compare"
        f" the setups within one run.\n\n{cpu_table(report)}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands.options(parser, duration=5.0, rounds=2)
    parser.add_argument("--step", type=float, default=6.0, help="seconds per paced step (default 6)")
    parser.add_argument(
        "--start-rate", type=float, default=200.0, help="first rate of each search (default 200/s)"
    )
    parser.add_argument(
        "--bisections", type=int, default=3, help="bisecting steps after doubling (default 3)"
    )
    parser.add_argument(
        "--serve-workers", type=int, default=None, help="pass --workers N to `shopstream serve`"
    )
    parser.add_argument(
        "--cpu-rates",
        type=lambda text: [float(r) for r in text.split(",")],
        default=list(cpu.RATES),
        help=f"paced rates of the CPU part, comma separated (default {','.join(f'{r:g}' for r in cpu.RATES)})",
    )
    parser.add_argument(
        "--cpu-seconds",
        type=float,
        default=cpu.SECONDS,
        help=f"seconds at each CPU rate (default {cpu.SECONDS:g})",
    )
    parser.add_argument(
        "--cpu-shared-servers",
        action="store_true",
        help="measure CPU on the run's PostgreSQL and Redis instead of private ones (less clean: see bench/cpu.py)",
    )
    parser.add_argument(
        "--cpu-profile", metavar="FILE", help="also record `serve` with py-spy at 300/s for 10 s (raw stacks)"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where the report goes (default bench/results)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    wrk_path = shutil.which("wrk")
    if wrk_path is None:
        print("bench.report needs wrk (https://github.com/wg/wrk): `apt-get install wrk`", file=sys.stderr)
        return 2
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]

    def log(text: str) -> None:
        print(text, flush=True)

    try:
        with backing_servers() as (database_server, redis_url):
            figures = commands.bench(args, wrk_path, database_server, redis_url)
            machine, parts = pipeline_part(args, wrk_path, database_server, redis_url, log)
            parts["rebuild"] = rebuild_bench.bench(database_server, redis_url, log=log)
            parts["search"] = search_bench.bench(database_server, redis_url, log=log)
        parts["cpu_servers"], parts["cpu_idle"], parts["cpu"] = cpu_or_why_not(args, log)
    except (BenchmarkError, RuntimeError) as exc:
        print(f"bench.report: {exc}", file=sys.stderr)
        return 1
    settings = {k: v for k, v in vars(args).items() if k != "results"} | {
        "cores": os.cpu_count(),
        "lag_fractions": LAG_FRACTIONS,
    }
    report = Report(
        started_at=started_at.isoformat(timespec="seconds"),
        seconds=time.perf_counter() - started,
        machine=machine,
        settings=settings,
        commands=[
            {"route": f.route, "rate": f.rate, "baseline_rate": f.baseline_rate, "ratio": f.ratio}
            | msgspec.to_builtins(f)
            for f in figures
        ],
        **parts,
    )
    report.targets = targets(report)
    report.load_average = [load_at_start, os.getloadavg()[0]]
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / started_at.strftime("%Y%m%dT%H%M%SZ")
    picture = stem.with_suffix(".png")
    drawn = plot.draw(report, picture)
    stem.with_suffix(".json").write_bytes(msgspec.json.format(msgspec.json.encode(report)) + b"\n")
    stem.with_suffix(".md").write_text(markdown(report, picture.name if drawn else None))
    print(f"\n{table(report)}\n\n{cpu_table(report)}\n\n{targets_table(report)}\n")
    written = f"{stem}.json, {stem}.md" + (
        f", {picture}" if drawn else " (no plot: pip install -e '.[bench]')"
    )
    print(f"report    {written}   ({report.seconds:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
