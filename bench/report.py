"""`just bench`: one end-to-end report, every figure beside a baseline measured in the same run.

    python -m bench.report [--step 6] [--start-rate 200] [--bisections 3] [--serve-workers N]
                           [--duration 5] [--rounds 2]

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
   subtree, each beside the same query on the unfiltered list, at 1 and 16 clients (wrk).

The report goes to bench/results/<UTC timestamp>.json and .md, and the table is printed.
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
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from bench import commands, pipeline
from bench import rebuild as rebuild_bench
from bench import search as search_bench
from bench.commands import BenchmarkError, Server, bare_argv, free_port, scratch, server_env, shopstream_argv
from bench.common import backing_servers, machine_facts
from bench.paced import LoadResult
from shopstream import eventloop

RESULTS = Path(__file__).parent / "results"
LAG_FRACTIONS = (0.25, 0.5, 0.75)


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


def pipeline_part(
    args: argparse.Namespace, wrk_path: str, database_server: str, redis_url: str, log: Any
) -> tuple[str, dict[str, Any]]:
    run_id = uuid.uuid4().hex[:10]
    with ExitStack() as stack:
        settings, postgres_version, redis = stack.enter_context(scratch(database_server, redis_url, run_id))
        machine = machine_facts(postgres_version, str(redis.info("server")["redis_version"]))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-pipeline-")))
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
        f" | `api` took them in at {b.fill_rate:,.0f} req/s | {ratio(b.rate, b.fill_rate)} | < 2 s |"
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


def markdown(report: Report) -> str:
    return (
        f"# `just bench` — {report.started_at}\n\n{report.machine}  \n"
        f"{report.seconds:.0f} s; settings {msgspec.json.encode(report.settings).decode()}\n\n{table(report)}\n"
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

    def log(text: str) -> None:
        print(text, flush=True)

    try:
        with backing_servers() as (database_server, redis_url):
            figures = commands.bench(args, wrk_path, database_server, redis_url)
            machine, parts = pipeline_part(args, wrk_path, database_server, redis_url, log)
            parts["rebuild"] = rebuild_bench.bench(database_server, redis_url, log=log)
            parts["search"] = search_bench.bench(database_server, redis_url, log=log)
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
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / started_at.strftime("%Y%m%dT%H%M%SZ")
    stem.with_suffix(".json").write_bytes(msgspec.json.format(msgspec.json.encode(report)) + b"\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(f"\n{table(report)}\n\nreport    {stem}.json, {stem}.md   ({report.seconds:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
