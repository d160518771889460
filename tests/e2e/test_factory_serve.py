"""The app factory served by uvicorn alone (`uvicorn --factory shopstream.app:create_app`), without the
`shopstream` command's start-up checks: with SHOPSTREAM_AUTH=none it still serves only this machine, and
its access log keeps e-mail addresses out."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from shopstream.settings import Settings
from tests.problems import assert_problem

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def public_address() -> str | None:
    """An address of this machine that is not loopback (no packet is sent to find it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


PUBLIC = public_address()


def factory_env(settings: Settings, **overrides: str) -> dict[str, str]:
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("DATABASE_URL") and not k.startswith(("SHOPSTREAM_", "OTEL_")) and k != "REDIS_URL"
    }
    return inherited | settings.to_env() | {"PYTHONUNBUFFERED": "1"} | overrides


@asynccontextmanager
async def uvicorn(env: dict[str, str], port: int, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    args = [
        "-m",
        "uvicorn",
        "--factory",
        "shopstream.app:create_app",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
    ]
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=ROOT, env=env, stdout=sink, stderr=sink
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def wait_ready(proc: asyncio.subprocess.Process, http: httpx.AsyncClient, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.returncode is None, log.read_text(errors="replace")[-4000:]
        try:
            if (await http.get("/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
        await asyncio.sleep(0.2)


@pytest.mark.skipif(PUBLIC is None, reason="this machine has no address besides loopback")
async def test_auth_none_answers_only_loopback_connections_and_logs_no_email(context_settings, tmp_path):
    settings = await context_settings("factory_open")
    port, log = free_port(), tmp_path / "uvicorn.log"
    email = f"hidden.{uuid.uuid4().hex[:10]}@example.com"
    async with (
        uvicorn(factory_env(settings, LOG_LEVEL="INFO"), port, log) as proc,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as local,
        httpx.AsyncClient(base_url=f"http://{PUBLIC}:{port}", timeout=10) as remote,
    ):
        await wait_ready(proc, local, log)
        for path in ("/health", "/products", f"/customers?email={email}"):
            refused = assert_problem(await remote.get(path), 403)
            assert refused["type"] == "urn:shopstream:problem:loopback-only"
            assert "SHOPSTREAM_AUTH" in refused["detail"]
        assert_problem(
            await remote.post(
                "/categories", content=b'{"name": "Remote"}', headers={"content-type": "application/json"}
            ),
            403,
        )
        assert (await local.post("/categories", json={"name": "Local"})).status_code == 201
        assert_problem(
            await local.post(
                "/categories", content=b'{"name": "Plain"}', headers={"content-type": "text/plain"}
            ),
            415,
        )
        assert_problem(await local.get(f"/customers?{httpx.QueryParams(email=email)}"), 404)
    written = log.read_text(errors="replace")
    assert "/customers?email=REDACTED" in written, written[-4000:]
    assert email.split("@")[0] not in written


async def test_auth_none_with_a_public_host_stops_the_factory(context_settings, tmp_path):
    settings = await context_settings("factory_public_host")
    port, log = free_port(), tmp_path / "uvicorn.log"
    async with uvicorn(factory_env(settings, HOST="0.0.0.0"), port, log) as proc:
        assert await asyncio.wait_for(proc.wait(), 60) != 0
    written = log.read_text(errors="replace")
    assert "SHOPSTREAM_AUTH=none" in written and "loopback HOST (not 0.0.0.0)" in written, written[-4000:]


@pytest.mark.skipif(PUBLIC is None, reason="this machine has no address besides loopback")
async def test_auth_none_forced_public_serves_every_address(context_settings, tmp_path):
    settings = await context_settings("factory_forced")
    port, log = free_port(), tmp_path / "uvicorn.log"
    env = factory_env(settings, HOST="0.0.0.0", SHOPSTREAM_AUTH_ALLOW_PUBLIC="1")
    async with (
        uvicorn(env, port, log) as proc,
        httpx.AsyncClient(base_url=f"http://{PUBLIC}:{port}", timeout=10) as remote,
    ):
        await wait_ready(proc, remote, log)
        assert (await remote.get("/products")).status_code == 200
