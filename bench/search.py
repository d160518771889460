"""Search latency on 50,000 products, each search beside the same query on the unfiltered list.

    python -m bench.search [--cards 50000] [--duration 4]

In a scratch database, `CARDS` product cards (with a variant each and a tree of categories) are written
straight into the read model and analysed; `shopstream api` serves them, and wrk (`--latency`) drives
each query for `--duration` seconds at 1 and at 16 connections, reporting p50 and p99:
`q` (a word in 1 title of 1,000) beside the unfiltered list; a USD price range with the price facet beside
the unfiltered list with that facet; a category subtree (3 % of the cards) beside the unfiltered list.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import msgspec

from bench.commands import BenchmarkError, Server, free_port, scratch, server_env, shopstream_argv
from bench.common import backing_servers

CARDS = 50_000
CLIENTS = (1, 16)
ROOT = "00000000-0000-4000-8000-000000000001"


def _category(number: str) -> str:
    return f"format('00000000-0000-4000-8000-%s', lpad(({number})::text, 12, '0'))"


# Each filter selects a few percent of the cards at most, as on a real catalogue: ROOT's subtree is 31 of
# 1,000 categories, 200 brands, 1,000 styles named in titles, 500 models as attributes, prices 1..1000
# USD, one active variant per card.
_FILL = f"""
INSERT INTO catalogue.category_nodes
    (category_id, name, parent_category_id, level, attributes, is_active, display_order, created_at,
     updated_at, version)
SELECT id, 'c' || n, parent, level, '{{}}', true, 0, now(), now(), 1
FROM (
    SELECT '{ROOT}' AS id, 1 AS n, NULL AS parent, 0 AS level
    UNION ALL SELECT {_category("i")}, i, '{ROOT}', 1 FROM generate_series(2, 6) i
    UNION ALL SELECT {_category("i")}, i, {_category("2 + i % 5")}, 2 FROM generate_series(7, 31) i
    UNION ALL SELECT {_category("i")}, i, NULL, 0 FROM generate_series(32, 1000) i
) AS tree;
INSERT INTO catalogue.product_cards
    (product_id, sku, title, brand, category_id, seller_id, min_price, max_price, currency, status,
     variant_count, created_at, updated_at, version, description, attributes, variant_skus)
SELECT md5(i::text)::uuid::text, 'SKU-' || i,
    (ARRAY['Organic cotton tee', 'Running shoe', 'Wool hat', 'Linen shirt', 'Silk scarf'])[i % 5 + 1]
        || ' style' || (i % 1000),
    'Brand ' || (i % 200), {_category("1 + i % 1000")}, md5((i % 500)::text)::uuid::text,
    1 + i % 1000, 1 + i % 1000, 'USD', (ARRAY['Draft', 'Active', 'Active', 'Discontinued'])[i % 4 + 1], 1,
    now() - i * interval '1 second', now(), 1, 'A fine thing, number ' || i,
    jsonb_build_object('colour', (ARRAY['red', 'blue', 'green'])[i % 3 + 1], 'model', 'm' || (i % 500)),
    'V-' || i
FROM generate_series(1, $1::int) i;
INSERT INTO catalogue.product_card_variants (product_id, variant_id, base_price, currency, is_active, variant_sku)
SELECT product_id, product_id, min_price, currency, true, variant_skus FROM catalogue.product_cards;
"""
_ANALYZE = "ANALYZE catalogue.product_cards, catalogue.product_card_variants, catalogue.category_nodes"


async def fill_cards(conn: asyncpg.Connection, count: int = CARDS) -> None:
    """`count` cards written straight into an empty read model, then analysed."""
    async with conn.transaction():
        for statement in _FILL.split(";\n")[:-1]:
            await conn.execute(statement, *([count] if "$1" in statement else []))
    await conn.execute(_ANALYZE)


# (name, the search, the same query on the unfiltered list)
QUERIES = [
    ("q", "/products?q=style42", "/products"),
    (
        "price range + facet",
        "/products?currency=USD&price_min=10&price_max=12&facets=price",
        "/products?currency=USD&facets=price",
    ),
    ("category subtree", f"/products?category_id={ROOT}", "/products"),
]


class Latency(msgspec.Struct, frozen=True):
    clients: int
    rate: float
    p50_ms: float
    p99_ms: float


class SearchFigure(msgspec.Struct, frozen=True):
    name: str
    path: str
    baseline_path: str
    search: list[Latency]
    baseline: list[Latency]


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk_latency(wrk_path: str, url: str, clients: int, seconds: float) -> Latency:
    done = subprocess.run(
        [
            wrk_path,
            f"-t{min(clients, 2)}",
            f"-c{clients}",
            f"-d{seconds:g}s",
            "--timeout",
            "30s",
            "--latency",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", done.stdout, re.MULTILINE))
    rate = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
    failed = "Non-2xx" in done.stdout or re.search(r"timeout [1-9]", done.stdout)
    if rate is None or set(percentiles) != {"50", "99"} or failed:
        raise BenchmarkError(f"wrk on {url}: {done.stdout}{done.stderr}")
    return Latency(clients, float(rate.group(1)), _ms(percentiles["50"]), _ms(percentiles["99"]))


def bench(
    database_server: str,
    redis_url: str,
    *,
    cards: int = CARDS,
    seconds: float = 4.0,
    log: Callable[[str], None] = print,
) -> list[SearchFigure]:
    wrk_path = shutil.which("wrk")
    if wrk_path is None:
        raise BenchmarkError("bench.search needs wrk (https://github.com/wg/wrk): `apt-get install wrk`")
    with scratch(database_server, redis_url, uuid.uuid4().hex[:10]) as (settings, _, _redis):
        assert settings.database_url is not None

        async def fill() -> None:
            conn = await asyncpg.connect(settings.database_url)
            try:
                await fill_cards(conn, cards)
            finally:
                await conn.close()

        asyncio.run(fill())
        with tempfile.TemporaryDirectory(prefix="bench-search-") as workdir:
            port = free_port()
            env = server_env(settings.database_url, redis_url, settings.redis_prefix, port, workdir)
            server = Server("api", shopstream_argv(), env, port, Path(workdir) / "api.log")
            try:
                server.wait_until_answering("/ready")
                figures = []
                for name, path, baseline in QUERIES:
                    wrk_latency(wrk_path, server.url + path, 4, 1)  # warm up
                    measured = {
                        which: [wrk_latency(wrk_path, server.url + p, n, seconds) for n in CLIENTS]
                        for which, p in (("search", path), ("baseline", baseline))
                    }
                    figure = SearchFigure(name, path, baseline, measured["search"], measured["baseline"])
                    for ours, base in zip(figure.search, figure.baseline, strict=True):
                        log(
                            f"search     {name}, {ours.clients} client(s): p50 / p99 {ours.p50_ms:.1f} /"
                            f" {ours.p99_ms:.1f} ms; unfiltered {base.p50_ms:.1f} / {base.p99_ms:.1f} ms"
                        )
                    figures.append(figure)
                return figures
            finally:
                server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cards", type=int, default=CARDS, help=f"product cards (default {CARDS:,})")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run (default 4)")
    args = parser.parse_args()
    try:
        with backing_servers() as (database_server, redis_url):
            bench(database_server, redis_url, cards=args.cards, seconds=args.duration)
    except (BenchmarkError, RuntimeError) as exc:
        print(f"bench.search: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
