"""`shopstream serve` end to end: a real process on a free port, migrating a fresh database at start,
driven over HTTP; its writes reach every identity read model, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLEAN_EXIT_SECONDS = 15


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_env(database_url: str, redis_url: str, prefix: str, data_dir: Path, port: int) -> dict[str, str]:
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("DATABASE_URL") and not k.startswith(("SHOPSTREAM_", "OTEL_")) and k != "REDIS_URL"
    }
    return inherited | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SHOPSTREAM_REDIS_PREFIX": prefix,
        "SHOPSTREAM_DATA_DIR": str(data_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


class Served:
    def __init__(self, proc: asyncio.subprocess.Process, base_url: str, log: Path) -> None:
        self.proc = proc
        self.base_url = base_url
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


@asynccontextmanager
async def serving(env: dict[str, str], log: Path, *options: str) -> AsyncIterator[Served]:
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shopstream.cli",
            "serve",
            *options,
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=sink,
            start_new_session=True,  # its own process group: the API and supervisor children go with it
        )
    served = Served(proc, f"http://127.0.0.1:{env['PORT']}", log)
    try:
        yield served
    finally:
        with contextlib.suppress(ProcessLookupError):  # nothing of it may outlive the test
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            await proc.wait()


async def wait_ready(served: Served, http: httpx.AsyncClient, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert served.proc.returncode is None, (
            f"serve exited with {served.proc.returncode}:\n{served.output()}"
        )
        try:
            if (await http.get("/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"serve not ready within {timeout}s:\n{served.output()}"
        await asyncio.sleep(0.2)


async def eventually(
    read: Callable[[], Awaitable[httpx.Response]], holds: Callable[[Any], bool], timeout: float = 30.0
) -> Any:
    """Poll a read until its JSON body satisfies `holds`; return that body."""
    deadline = time.monotonic() + timeout
    while True:
        response = await read()
        if response.status_code == 200 and holds(response.json()):
            return response.json()
        assert response.status_code in (200, 404), response.text
        assert time.monotonic() < deadline, f"never held; last answer {response.status_code} {response.text}"
        await asyncio.sleep(0.1)


def segments(tiers: dict[str, int], statuses: dict[str, int]) -> dict[str, dict[str, int]]:
    return {
        "tiers": {"Standard": 0, "Silver": 0, "Gold": 0, "Platinum": 0} | tiers,
        "statuses": {"Active": 0, "Suspended": 0, "Closed": 0} | statuses,
    }


class TestServeIdentity:
    async def test_writes_reach_the_read_models_and_ctrl_c_exits_cleanly(
        self, create_database, redis_url, redis_prefix, tmp_path
    ):
        port = free_port()
        env = serve_env(
            create_database("e2e_identity"),
            redis_url,
            f"{redis_prefix}-e2e-{uuid.uuid4().hex[:6]}",
            tmp_path,
            port,
        )
        async with (
            serving(env, tmp_path / "serve.log") as served,
            httpx.AsyncClient(base_url=served.base_url, timeout=15) as http,
        ):
            await wait_ready(served, http)
            assert (await http.get("/customers/segments")).json() == segments({}, {})

            unique = uuid.uuid4().hex[:8]
            email, external_id = f"Ada.{unique}@Example.com", f"crm-{unique}"
            registered = await http.post(
                "/customers",
                json={
                    "external_id": external_id,
                    "email": email,
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                },
            )
            assert registered.status_code == 201, registered.text
            customer_id = registered.json()["customer_id"]
            assert registered.headers["location"] == f"/customers/{customer_id}"
            other = await http.post(
                "/customers",
                json={"external_id": f"{external_id}-2", "email": f"b.{unique}@example.com", "first_name": "B",
                      "last_name": "C"},
            )  # fmt: skip
            assert other.status_code == 201, other.text

            home = await http.post(
                f"/customers/{customer_id}/addresses",
                json={"street": "1 Main St", "city": "London", "postal_code": "N1 9GU", "country": "UK"},
            )
            work = await http.post(
                f"/customers/{customer_id}/addresses",
                json={"street": "2 Office Rd", "city": "Leeds", "postal_code": "LS1 1AA", "country": "UK",
                      "label": "Work", "is_default": True, "geo_lat": 53.8, "geo_lng": -1.55},
            )  # fmt: skip
            assert (home.status_code, work.status_code) == (201, 201), (home.text, work.text)
            assert work.json()["version"] == 3

            suspended = await http.put(f"/customers/{customer_id}/suspend", json={"reason": "fraud check"})
            assert suspended.json() == {"status": "ok", "version": 4}
            upgraded = await http.put(
                f"/customers/{customer_id}/tier", json={"new_tier": "Gold"}, headers={"If-Match": '"4"'}
            )
            assert upgraded.json() == {"status": "ok", "version": 5}
            assert upgraded.headers["etag"] == '"5"'

            card = await eventually(
                lambda: http.get(f"/customers/{customer_id}"), lambda b: b["version"] == 5
            )
            assert (card["status"], card["tier"], card["email"]) == ("Suspended", "Gold", email)

            book = await eventually(
                lambda: http.get(f"/customers/{customer_id}/addresses"), lambda b: b["version"] == 5
            )
            assert [(a["label"], a["is_default"]) for a in book["items"]] == [("Work", True), ("Home", False)]
            assert (book["items"][0]["geo_lat"], book["items"][0]["geo_lng"]) == (53.8, -1.55)

            by_email = await eventually(
                lambda: http.get("/customers", params={"email": email.upper()}), lambda b: b["version"] == 5
            )
            assert by_email["customer_id"] == customer_id
            by_external_id = await eventually(
                lambda: http.get("/customers", params={"external_id": external_id}),
                lambda b: b["version"] == 5,
            )
            assert by_external_id["customer_id"] == customer_id
            assert (await http.get("/customers", params={"email": "nobody@example.com"})).status_code == 404

            moved = segments({"Standard": 1, "Gold": 1}, {"Active": 1, "Suspended": 1})
            await eventually(lambda: http.get("/customers/segments"), lambda b: b == moved)

            closed = await http.put(f"/customers/{customer_id}/close")
            assert closed.json() == {"status": "ok", "version": 6}
            after_close = segments({"Standard": 1, "Gold": 1}, {"Active": 1, "Closed": 1})
            await eventually(lambda: http.get("/customers/segments"), lambda b: b == after_close)
            refused = await http.put(f"/customers/{customer_id}/reactivate")
            assert refused.status_code == 409
            assert refused.headers["content-type"].startswith("application/problem+json")

            served.proc.send_signal(signal.SIGINT)
            try:
                code = await asyncio.wait_for(served.proc.wait(), CLEAN_EXIT_SECONDS)
            except TimeoutError:
                pytest.fail(f"serve still running {CLEAN_EXIT_SECONDS}s after SIGINT:\n{served.output()}")
            assert code == 0, served.output()
            assert f"127.0.0.1:{port}" in served.output()

    async def test_an_email_change_moves_the_lookup_and_frees_the_old_address(
        self, create_database, redis_url, redis_prefix, tmp_path
    ):
        env = serve_env(
            create_database("e2e_identity_email"),
            redis_url,
            f"{redis_prefix}-e2e-{uuid.uuid4().hex[:6]}",
            tmp_path,
            free_port(),
        )
        async with (
            serving(env, tmp_path / "serve.log") as served,
            httpx.AsyncClient(base_url=served.base_url, timeout=15) as http,
        ):
            await wait_ready(served, http)
            unique = uuid.uuid4().hex[:8]
            old, new = f"Ada.{unique}@Example.com", f"augusta.{unique}@example.org"
            person = {
                "external_id": f"crm-{unique}",
                "email": old,
                "first_name": "Ada",
                "last_name": "Lovelace",
            }
            registered = await http.post("/customers", json=person)
            assert registered.status_code == 201, registered.text
            customer_id = registered.json()["customer_id"]

            changed = await http.put(
                f"/customers/{customer_id}/email", json={"email": new}, headers={"If-Match": '"1"'}
            )
            assert changed.json() == {"status": "ok", "version": 2}
            assert changed.headers["etag"] == '"2"'
            card = await eventually(
                lambda: http.get("/customers", params={"email": new.upper()}), lambda b: True
            )
            assert (card["customer_id"], card["email"], card["version"]) == (customer_id, new, 2)
            assert (await http.get("/customers", params={"email": old})).status_code == 404

            taken = await http.post(
                "/customers", json=person | {"external_id": f"crm-{unique}-2", "email": new}
            )
            assert taken.status_code == 409
            assert taken.json()["type"] == "urn:shopstream:problem:email-taken"
            freed = await http.post(
                "/customers", json=person | {"external_id": f"crm-{unique}-3", "email": old}
            )
            assert freed.status_code == 201, freed.text
            holder = await eventually(
                lambda: http.get("/customers", params={"email": old.lower()}),
                lambda b: b["customer_id"] == freed.json()["customer_id"],
            )
            assert holder["email"] == old
