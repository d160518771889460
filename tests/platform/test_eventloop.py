"""Every process that runs an event loop runs uvloop where it is installed: the worker and the CLI
tools as well as the API's server."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shopstream import cli, eventloop

uvloop = pytest.importorskip("uvloop")


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_event_loop_is_uvloop():
    assert eventloop.run(_loop_module()).startswith("uvloop")


@pytest.fixture
def cli_env(monkeypatch, create_database, redis_url, redis_prefix, tmp_path):
    monkeypatch.setenv("DATABASE_URL", create_database("eventloop"))
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SHOPSTREAM_REDIS_PREFIX", f"{redis_prefix}-loop-{uuid.uuid4().hex[:6]}")
    monkeypatch.setenv("SHOPSTREAM_DATA_DIR", str(tmp_path))
    for name in ("IDENTITY_DATABASE_URL", "CATALOGUE_DATABASE_URL", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)


def test_the_worker_runs_on_uvloop(cli_env, monkeypatch):
    loops = []

    async def worker(settings, context, metrics_port=0):
        loops.append(await _loop_module())

    monkeypatch.setattr(cli, "run_worker", worker)
    assert cli.main(["worker", "--metrics-port", "0"]) == 0
    assert loops and loops[0].startswith("uvloop")


def test_the_operator_tools_run_on_uvloop(cli_env, monkeypatch):
    loops = []

    async def listing(messaging, args):
        loops.append(await _loop_module())
        return 0

    monkeypatch.setitem(cli._OPERATIONS, ("dlq", "list"), listing)
    assert cli.main(["dlq", "list"]) == 0
    assert loops and loops[0].startswith("uvloop")
