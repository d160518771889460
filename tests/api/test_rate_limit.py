"""Per-caller rate limits in Redis (shopstream/ratelimit.py): shared by every API process, counted per
caller and per kind (read, write), 429 problem+json with Retry-After past them, probes never limited,
requests let through while Redis does not answer."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from shopstream.app import create_app
from shopstream.ratelimit import Limiter, Rate, RateLimited
from shopstream.settings import ConfigurationError, Settings
from tests.problems import assert_problem
from tests.tokens import AUDIENCE, ISSUER, SECRET, bearer, hs256

pytestmark = pytest.mark.anyio

READS, WRITES = 4, 3  # per hour: a test never waits for a request to come back
LIMITED = {"SHOPSTREAM_RATE_LIMIT_READS": f"{READS}/hour", "SHOPSTREAM_RATE_LIMIT_WRITES": f"{WRITES}/hour"}


@asynccontextmanager
async def instances(settings: Settings, count: int = 2) -> AsyncIterator[list[AsyncTestClient]]:
    """`count` apps on the same settings, as separate API processes would run: each its own Redis
    client and limiter."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(AsyncTestClient(app=create_app(settings))) for _ in range(count)
        ]


async def limited_settings(context_settings, label: str, **overrides) -> Settings:
    return await context_settings(
        label, rate_limit_reads=f"{READS}/hour", rate_limit_writes=f"{WRITES}/hour", **overrides
    )


def decisions(metrics_text: str, kind: str, outcome: str) -> float:
    found = re.search(
        rf'^shopstream_rate_limit_decisions_total\{{kind="{kind}",outcome="{outcome}"\}} (\S+)$',
        metrics_text,
        re.M,
    )
    assert found, f"no series for {kind}/{outcome}"
    return float(found.group(1))


class TestSharedLimit:
    async def test_two_instances_share_one_callers_limit_and_answer_429_with_retry_after(
        self, context_settings
    ):
        settings = await limited_settings(context_settings, "ratelimit_shared")
        async with instances(settings) as (first, second):
            before = (await first.get("/metrics")).text
            answers = [await (first, second)[n % 2].get("/products") for n in range(READS + 2)]
            after = (await second.get("/metrics")).text
        assert [a.status_code for a in answers] == [200] * READS + [429, 429]
        for refused in answers[READS:]:
            problem = assert_problem(refused, 429)
            assert problem["type"] == "urn:shopstream:problem:rate-limited"
            assert 1 <= int(refused.headers["retry-after"]) <= 3600 // READS
        # One process's registry sees its own decisions (multiprocess mode adds them up in production).
        assert decisions(after, "read", "limited") - decisions(before, "read", "limited") >= 1
        assert decisions(after, "read", "allowed") - decisions(before, "read", "allowed") >= READS // 2

    async def test_reads_and_writes_count_separately(self, context_settings):
        settings = await limited_settings(context_settings, "ratelimit_kinds")
        async with instances(settings) as (first, second):
            writes = [
                await (first, second)[n % 2].post("/categories", json={"name": f"C{n}"})
                for n in range(WRITES + 1)
            ]
            read = await first.get("/categories")
        assert [w.status_code for w in writes] == [201] * WRITES + [429]
        assert_problem(writes[-1], 429)
        assert read.status_code == 200

    async def test_probes_and_scrapes_are_never_limited(self, context_settings):
        settings = await limited_settings(context_settings, "ratelimit_probes")
        async with instances(settings, 1) as (client,):
            for _ in range(READS + 1):
                await client.get("/products")
            assert (await client.get("/products")).status_code == 429
            for path in ("/health", "/ready", "/metrics"):
                assert (await client.get(path)).status_code == 200, path


class TestCaller:
    async def test_each_token_subject_has_its_own_limit_and_others_count_by_address(self, context_settings):
        settings = await limited_settings(
            context_settings,
            "ratelimit_callers",
            auth="jwt",
            jwt_secret=SECRET,
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
        )
        ada, bob = bearer(hs256("customer", "ada")), bearer(hs256("customer", "bob"))
        seller_ada = bearer(hs256("seller", "ada"))  # another role: another caller
        async with instances(settings) as (first, second):
            for n in range(READS):
                assert (await (first, second)[n % 2].get("/products", headers=ada)).status_code == 200
            assert (await second.get("/products", headers=ada)).status_code == 429
            assert (await first.get("/products", headers=bob)).status_code == 200
            assert (await first.get("/products", headers=seller_ada)).status_code == 200
            for _ in range(READS):  # anonymous, and a refused token: the client address
                assert (await first.get("/products")).status_code == 200
            assert (await second.get("/products", headers=bearer("not-a-token"))).status_code == 429


class TestRedisDown:
    async def test_requests_go_through_unchecked_and_it_is_logged_once(self, settings, caplog):
        down = msgspec.structs.replace(
            settings,
            redis_url="redis://127.0.0.1:1/0",
            ready_timeout=0.5,
            rate_limit_reads="1/hour",
            rate_limit_writes="1/hour",
        )
        with caplog.at_level(logging.WARNING, logger="shopstream.ratelimit"):
            async with AsyncTestClient(app=create_app(down)) as client:
                before = (await client.get("/metrics")).text
                answers = [await client.get("/categories") for _ in range(3)]
                after = (await client.get("/metrics")).text
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert decisions(after, "read", "unchecked") - decisions(before, "read", "unchecked") == 3
        warnings = [r for r in caplog.records if r.name == "shopstream.ratelimit"]
        assert len(warnings) == 1 and "Redis" in warnings[0].getMessage()

    async def test_a_limiter_on_an_unreachable_redis_never_refuses(self):
        limiter = Limiter("sstest-unreachable", Rate(1, 3600), Rate(1, 3600))
        limiter.attach(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5))
        try:
            for _ in range(3):
                await limiter.check("write", "ip:192.0.2.7")
        finally:
            await limiter.redis.aclose()  # type: ignore[union-attr]


class TestGcra:
    async def test_a_burst_of_the_limit_then_one_request_per_interval(self, redis_url, redis_prefix):
        limiter = Limiter(f"{redis_prefix}-gcra", Rate(5, 3600), None)
        limiter.attach(Redis.from_url(redis_url))
        try:
            for _ in range(5):
                await limiter.check("read", "sub:admin:burst")
            with pytest.raises(RateLimited) as refused:
                await limiter.check("read", "sub:admin:burst")
            assert 1 <= refused.value.wait <= 720  # one request every 3600 / 5 s
            await limiter.check("write", "sub:admin:burst")  # writes: off
            await limiter.check("read", "sub:admin:other")
        finally:
            await limiter.redis.aclose()  # type: ignore[union-attr]

    async def test_the_highest_rate_the_settings_allow_is_checked_not_skipped(self, redis_url, redis_prefix):
        limiter = Limiter(f"{redis_prefix}-gcra-fast", Rate(999_999_999, 1), None)
        limiter.attach(Redis.from_url(redis_url))
        try:
            for _ in range(3):
                assert (
                    await limiter._wait("read", Rate(999_999_999, 1), "ip:fast") == 0.0
                )  # not None: answered
        finally:
            await limiter.redis.aclose()  # type: ignore[union-attr]


class TestSettings:
    def test_defaults_are_generous_and_on(self):
        settings = Settings.from_env({})
        assert Rate.parse(settings.rate_limit_reads) == Rate(5000, 1)
        assert Rate.parse(settings.rate_limit_writes) == Rate(5000, 1)

    @pytest.mark.parametrize(
        ("text", "rate"),
        [
            ("100/second", Rate(100, 1)),
            ("20 / Minute", Rate(20, 60)),
            ("1/day", Rate(1, 86400)),
            ("OFF", None),
        ],
    )
    def test_forms(self, text, rate):
        settings = Settings.from_env({"SHOPSTREAM_RATE_LIMIT_READS": text})
        assert Rate.parse(settings.rate_limit_reads) == rate

    @pytest.mark.parametrize("text", ["0/second", "100", "100/week", "-1/second", "ten/second", "100/s"])
    @pytest.mark.parametrize("name", list(LIMITED))
    def test_a_bad_value_names_the_variable(self, name, text):
        with pytest.raises(ConfigurationError, match=name) as refused:
            Settings.from_env({name: text})
        assert "\n" not in str(refused.value)

    async def test_off_adds_no_middleware(self, settings):
        off = msgspec.structs.replace(settings, rate_limit_reads="off", rate_limit_writes="off")
        async with AsyncTestClient(app=create_app(off)) as client:
            before = (await client.get("/metrics")).text
            assert (await client.get("/products")).status_code == 200
            after = (await client.get("/metrics")).text
        for outcome in ("allowed", "limited", "unchecked"):
            assert decisions(after, "read", outcome) == decisions(before, "read", outcome)
