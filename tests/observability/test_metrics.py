"""`/metrics` after real traffic: every family of the spec with its type and bounded labels, counters
that move with each outcome, consumer lag on Redis 6.2 as on 7, a worker's own listener, and the
processes of `api --workers 2` adding up in one scrape."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bus.consumer import groups
from bus.inbox import Inbox
from bus.lag import behind, group_info, lag_of
from bus.maintenance import Maintenance
from bus.messages import registry
from bus.outbox import Outbox
from shopstream import __version__
from shopstream.bootstrap import product_modules
from tests.apps import app_client
from tests.e2e.test_identity_serve import ROOT, free_port, serve_env

pytestmark = pytest.mark.anyio

Scrape = dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]  # family -> type, samples
CONSUMERS = [p.name for m in product_modules() for p in m.projections]
# The Redis consumer groups that keep them (`bus.consumer.groups`), each with the stream it reads.
GROUPS = {
    name: members[0].outbox.context
    for name, members in groups(
        {
            p.name: Inbox(p, Outbox(m.source_of(p)), registry)
            for m in product_modules()
            for p in m.projections
        },
        {p.name: m.name for m in product_modules() for p in m.projections},
    ).items()
}
CONTEXTS = [m.name for m in product_modules()]

# Family (as the parser names it: counters without `_total`) -> type and label names.
SPEC_FAMILIES = {
    "shopstream_commands": ("counter", {"context", "command", "outcome"}),
    "shopstream_command_duration_seconds": ("histogram", {"context", "command"}),
    "shopstream_outbox_pending": ("gauge", {"context"}),
    "shopstream_outbox_oldest_pending_age_seconds": ("gauge", {"context"}),
    "shopstream_relay_published": ("counter", {"context"}),
    "shopstream_events_processed": ("counter", {"consumer", "outcome"}),
    "shopstream_event_end_to_end_lag_seconds": ("histogram", {"consumer"}),
    "shopstream_consumer_lag": ("gauge", {"stream", "group"}),
    "shopstream_dead_letters": ("gauge", {"context"}),
    "shopstream_pending_entry_max_idle_seconds": ("gauge", {"stream", "group"}),
    "shopstream_gaps_healed": ("counter", {"consumer"}),
    "shopstream_reclaimed": ("counter", {"consumer"}),
    "shopstream_reconciler_redelivered": ("counter", {"consumer"}),
    "shopstream_supervisor_restarts": ("counter", {"task"}),
    "shopstream_build_info": ("gauge", {"version", "python"}),
    "shopstream_db_pool_connections": ("gauge", {"pool"}),
    "shopstream_db_pool_in_use_connections": ("gauge", {"pool"}),
    "shopstream_db_pool_max_connections": ("gauge", {"pool"}),
    "shopstream_http_requests": ("counter", {"method", "path", "status_code"}),
    "shopstream_http_request_duration_seconds": ("histogram", {"method", "path", "status_code"}),
    "shopstream_http_requests_in_progress": ("gauge", {"method", "path"}),
}


def parse(text: str) -> Scrape:
    return {
        family.name: (family.type, [(s.name, dict(s.labels), s.value) for s in family.samples])
        for family in text_string_to_metric_families(text)
    }


def total(scrape: Scrape, family: str, **labels: str) -> float:
    """The sum of a counter's or gauge's series whose labels include `labels`."""
    kind, samples = scrape.get(family, ("", []))
    wanted = f"{family}_total" if kind == "counter" else family
    return sum(v for name, got, v in samples if name == wanted and labels.items() <= got.items())


def series(scrape: Scrape, family: str) -> list[dict[str, str]]:
    """The label sets of a family's series (a histogram's by its `_count`)."""
    _, samples = scrape.get(family, ("", []))
    return [got for name, got, _ in samples if name in (family, f"{family}_total", f"{family}_count")]


async def scrape_until(
    get: Callable[[], Awaitable[httpx.Response]], holds: Callable[[Scrape], bool], timeout: float = 30.0
) -> Scrape:
    deadline = time.monotonic() + timeout
    while True:
        response = await get()
        assert response.status_code == 200, response.text
        scrape = parse(response.text)
        if holds(scrape):
            return scrape
        assert time.monotonic() < deadline, f"metrics never got there:\n{response.text[-3000:]}"
        await asyncio.sleep(0.1)


def register_body(unique: str) -> dict[str, str]:
    return {
        "external_id": f"crm-{unique}",
        "email": f"m.{unique}@example.com",
        "first_name": "Mia",
        "last_name": "Metric",
    }


class TestExposition:
    async def test_every_family_has_its_type_labels_and_series_after_traffic(self, context_settings):
        settings = await context_settings("metrics")
        config = settings.bus_config()
        async with app_client(settings) as client:
            scraped = await client.get("/metrics")
            assert scraped.headers["content-type"] == CONTENT_TYPE_LATEST  # as documented, charset once
            before = parse(scraped.text)
            unique = uuid.uuid4().hex[:8]
            created = await client.post("/customers", json=register_body(unique))
            assert created.status_code == 201, created.text
            customer_id = created.json()["customer_id"]
            clash = await client.post("/customers", json=register_body(unique))
            assert clash.status_code == 409, clash.text
            assert (await client.get(f"/customers/{customer_id}")).status_code in (200, 404)

            identity_consumers = [p.name for p in product_modules()[0].projections]
            groups = [
                {"stream": config.stream(source, partition), "group": group}
                for group, source in GROUPS.items()
                for partition in range(config.partitions)
            ]
            after = await scrape_until(
                lambda: client.get("/metrics"),
                lambda s: (
                    all(
                        total(s, "shopstream_events_processed", consumer=c, outcome="ok")
                        > total(before, "shopstream_events_processed", consumer=c, outcome="ok")
                        for c in identity_consumers
                    )
                    and all(group in series(s, "shopstream_consumer_lag") for group in groups)
                ),
            )

        for family, (kind, labels) in SPEC_FAMILIES.items():
            assert family in after, f"{family} missing"
            assert after[family][0] == kind, family
            assert series(after, family), f"{family} has no series"
            for _, got, _ in after[family][1]:
                assert set(got) - {"le"} == labels, (family, got)

        # Known combinations exist from the start, at zero until something happens.
        processed = series(after, "shopstream_events_processed")
        for consumer in CONSUMERS:
            for outcome in ("ok", "duplicate", "healed", "parked", "retried", "dead_lettered"):
                assert {"consumer": consumer, "outcome": outcome} in processed
        for context in CONTEXTS:
            for family in (
                "shopstream_outbox_pending",
                "shopstream_dead_letters",
                "shopstream_relay_published",
            ):
                assert {"context": context} in series(after, family), family
        tasks = {got["task"] for got in series(after, "shopstream_supervisor_restarts")}
        assert {"relay:identity", "relay:catalogue", "consumer:identity.projections"} <= tasks

        # Counters moved with each outcome (this process may have counted other tests before).
        def moved(family: str, **labels: str) -> float:
            return total(after, family, **labels) - total(before, family, **labels)

        identity = {"context": "identity", "command": "RegisterCustomer"}
        assert moved("shopstream_commands", **identity, outcome="ok") == 1
        assert moved("shopstream_commands", **identity) == 2  # and one refused as a conflict
        assert moved("shopstream_relay_published", context="identity") == 1

        # HTTP server metrics by route template, never by id.
        http_paths = {got["path"] for got in series(after, "shopstream_http_requests")}
        assert {"/customers", "/customers/{customer_id}"} <= http_paths
        assert not any(customer_id in path for path in http_paths)
        assert "/metrics" not in http_paths
        assert moved("shopstream_http_requests", method="POST", path="/customers", status_code="409") == 1

        assert [(got["version"], v) for _, got, v in after["shopstream_build_info"][1]] == [
            (__version__, 1.0)
        ]
        pools = {got["pool"]: v for _, got, v in after["shopstream_db_pool_max_connections"][1]}
        assert pools["catalogue+identity"] == settings.db_pool_size  # one database: one pool


@pytest.fixture(params=["configured", "embedded", "redis 6.2"])
async def any_redis(request, redis_url) -> AsyncIterator[Redis]:
    url = {
        "configured": lambda: redis_url,
        "embedded": lambda: request.getfixturevalue("embedded").redis_url(),
        "redis 6.2": lambda: request.getfixturevalue("redis62_url"),
    }[request.param]()
    client = Redis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


class TestConsumerLag:
    async def test_lag_is_counted_where_redis_does_not_report_it(self, any_redis, pool, redis_prefix):
        stream, group = f"{redis_prefix}-lag-{uuid.uuid4().hex[:6]}", "lagging"
        absent = f"{stream}-no-group"
        for _ in range(5):
            await any_redis.xadd(stream, {"e": b"{}"})
            await any_redis.xadd(absent, {"e": b"{}"})
        await any_redis.xgroup_create(stream, group, id="0")
        await any_redis.xreadgroup(group, "p0", {stream: ">"}, count=2)  # 2 delivered, 3 to go

        info = await group_info(any_redis, stream, group)
        assert info is not None
        assert await lag_of(any_redis, stream, {**info, "lag": None}) == 3  # counted, as on 6.2
        await Maintenance(pool, [], redis=any_redis, groups=[(stream, group), (absent, group)]).run_once()

        assert REGISTRY.get_sample_value("shopstream_consumer_lag", {"stream": stream, "group": group}) == 3
        assert REGISTRY.get_sample_value("shopstream_consumer_lag", {"stream": absent, "group": group}) == 5
        idle = REGISTRY.get_sample_value(
            "shopstream_pending_entry_max_idle_seconds", {"stream": stream, "group": group}
        )
        assert idle is not None and idle >= 0
        await any_redis.delete(stream, absent)

    async def test_a_group_is_behind_while_its_stream_holds_entries_it_has_not_read(
        self, any_redis, redis_prefix
    ):
        stream, group = f"{redis_prefix}-behind-{uuid.uuid4().hex[:6]}", "lagging"
        assert not await behind(any_redis, stream, group)  # no stream yet
        for _ in range(3):
            await any_redis.xadd(stream, {"e": b"{}"})
        await any_redis.xgroup_create(stream, group, id="0")
        assert await behind(any_redis, stream, group)
        await any_redis.xreadgroup(group, "p0", {stream: ">"}, count=2)
        assert await behind(any_redis, stream, group)
        await any_redis.xreadgroup(group, "p0", {stream: ">"}, count=2)
        assert not await behind(any_redis, stream, group)
        unread = await any_redis.xadd(stream, {"e": b"{}"})
        await any_redis.xdel(stream, unread)  # lost unread: Redis 7 can no longer report the lag
        assert not await behind(any_redis, stream, group)
        await any_redis.delete(stream)


@asynccontextmanager
async def running(
    args: list[str], env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shopstream.cli", *args, cwd=ROOT, env=env, stdout=sink, stderr=sink
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def get_when_up(
    http: httpx.AsyncClient, url: str, proc, log: Path, timeout: float = 60.0
) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.returncode is None, log.read_text(errors="replace")[-4000:]
        try:
            response = await http.get(url)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
        await asyncio.sleep(0.1)


class TestSharedFiles:
    def test_a_file_another_process_has_only_just_created_is_read_as_empty(self, tmp_path):
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.mmap_dict import MmapedDict, mmap_key

        from observability.exposition import SharedFiles

        written = MmapedDict(str(tmp_path / "counter_101.db"))
        written.write_value(
            mmap_key("shopstream_commands", "shopstream_commands_total", [], [], "h"), 3.0, 0.0
        )
        written.close()
        (tmp_path / "counter_102.db").touch()  # created, not yet sized: what a scrape can meet
        merged = CollectorRegistry()
        SharedFiles(merged, path=str(tmp_path))  # type: ignore[no-untyped-call]
        assert total(parse(generate_latest(merged).decode()), "shopstream_commands") == 3


@pytest.mark.slow
class TestProcesses:
    async def test_a_worker_serves_its_own_metrics(self, create_database, redis_url, redis_prefix, tmp_path):
        metrics_port = free_port()
        env = serve_env(
            create_database("metrics_worker"), redis_url, f"{redis_prefix}-mw-{uuid.uuid4().hex[:6]}",
            tmp_path, free_port(),
        )  # fmt: skip
        log = tmp_path / "worker.log"
        async with (
            running(["worker", "--metrics-port", str(metrics_port)], env, log) as proc,
            httpx.AsyncClient(timeout=10) as http,
        ):
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            await get_when_up(http, url, proc, log)
            scrape = await scrape_until(
                lambda: http.get(url),
                lambda s: "shopstream_consumer_lag" in s and "shopstream_outbox_pending" in s,
            )
            assert {got["context"] for got in series(scrape, "shopstream_relay_published")} == set(CONTEXTS)
            assert {got["consumer"] for got in series(scrape, "shopstream_events_processed")} == set(
                CONSUMERS
            )
            assert "shopstream_db_pool_connections" in scrape and "shopstream_build_info" in scrape
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0, log.read_text(errors="replace")[-4000:]

    async def test_api_workers_add_up_in_one_scrape(self, create_database, redis_url, redis_prefix, tmp_path):
        port = free_port()
        env = serve_env(
            create_database("metrics_api"), redis_url, f"{redis_prefix}-ma-{uuid.uuid4().hex[:6]}",
            tmp_path, port,
        )  # fmt: skip
        log = tmp_path / "api.log"
        requests = 24
        fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection each: both processes serve
        async with (
            running(["api", "--workers", "2"], env, log) as proc,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15, limits=fresh) as http,
        ):
            await get_when_up(http, "/ready", proc, log)
            bodies = [register_body(uuid.uuid4().hex[:10]) for _ in range(requests)]
            answers = await asyncio.gather(*(http.post("/customers", json=body) for body in bodies))
            assert [a.status_code for a in answers] == [201] * requests

            for _ in range(4):  # whichever process answers the scrape sees them all, once
                scrape = parse((await http.get("/metrics")).text)
                assert total(scrape, "shopstream_commands") == requests
                assert total(scrape, "shopstream_http_requests", path="/customers") == requests
                assert series(scrape, "shopstream_build_info") and series(
                    scrape, "shopstream_db_pool_connections"
                )
            proc.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(proc.wait(), 30) == 0, log.read_text(errors="replace")[-4000:]
