"""`shopstream serve --workers 2`: two API processes and one for the relays and consumers, all on a
fresh database; writes reach every read model, one scrape of `/metrics` shows the relay and the
consumers at work, and Ctrl-C stops every process cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid

import httpx
import pytest

from tests.e2e.test_identity_serve import (
    CLEAN_EXIT_SECONDS,
    ROOT,
    Served,
    eventually,
    free_port,
    segments,
    serve_env,
    wait_ready,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def counter_total(exposition: str, name: str) -> float:
    """The sum of a counter's samples over all its labels (and so over every process)."""
    return sum(float(value) for value in re.findall(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", exposition, re.M))


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def probe(port: int) -> str:
    """One request on a fresh connection: answered, refused, or reset (accepted, then dropped)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return "refused"
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = await reader.read()
    except ConnectionResetError:
        return "reset"
    finally:
        writer.close()
    return "answered" if answer.startswith(b"HTTP/1.1 ") else "reset"


async def probe_until_exit(port: int, proc: asyncio.subprocess.Process) -> list[str]:
    """What became of connections made, one after the other, from the signal until serve exited."""
    outcomes = []
    while proc.returncode is None:
        outcomes.append(await probe(port))
        await asyncio.sleep(0.02)
    return outcomes


async def test_every_process_shares_the_work_and_stops_on_ctrl_c(
    create_database, redis_url, redis_prefix, tmp_path
):
    port = free_port()
    env = serve_env(
        create_database("e2e_serve_workers"),
        redis_url,
        f"{redis_prefix}-e2e-workers-{uuid.uuid4().hex[:6]}",
        tmp_path,
        port,
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:  # a session of its own: every process it starts is in its group
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shopstream.cli", "serve", "--workers", "2",
            cwd=ROOT, env=env, stdout=sink, stderr=sink, start_new_session=True,
        )  # fmt: skip
    served = Served(proc, f"http://127.0.0.1:{port}", log)
    try:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=15) as http:
            await wait_ready(served, http)
            before = (await http.get("/metrics")).text
            unique = uuid.uuid4().hex[:8]
            ids = []
            for n in range(6):  # over several connections: both API processes take some
                async with httpx.AsyncClient(base_url=served.base_url, timeout=15) as client:
                    answer = await client.post(
                        "/customers",
                        json={"external_id": f"crm-{unique}-{n}", "email": f"{n}.{unique}@example.com",
                              "first_name": "Ada", "last_name": "Lovelace"},
                    )  # fmt: skip
                assert answer.status_code == 201, answer.text
                ids.append(answer.json()["customer_id"])
            for customer_id in ids:
                card, book = f"/customers/{customer_id}", f"/customers/{customer_id}/addresses"
                await eventually(lambda path=card: http.get(path), lambda b: b["version"] == 1)
                await eventually(lambda path=book: http.get(path), lambda b: b["version"] == 1)
            await eventually(
                lambda: http.get("/customers", params={"external_id": f"crm-{unique}-5"}),
                lambda b: b["customer_id"] == ids[5],
            )
            await eventually(
                lambda: http.get("/customers/segments"),
                lambda b: b == segments({"Standard": 6}, {"Active": 6}),
            )

            after = (await http.get("/metrics")).text
            for counter in ("shopstream_relay_published_total", "shopstream_events_processed_total"):
                assert counter_total(after, counter) > counter_total(before, counter), counter
            assert counter_total(after, "shopstream_events_processed_total") >= 6 * 4  # four projections

        proc.send_signal(signal.SIGINT)
        probes = asyncio.ensure_future(probe_until_exit(port, proc))
        try:
            code = await asyncio.wait_for(proc.wait(), CLEAN_EXIT_SECONDS)
        except TimeoutError:
            pytest.fail(f"serve still running {CLEAN_EXIT_SECONDS}s after SIGINT:\n{served.output()}")
        assert code == 0, served.output()
        # Answered until the servers stop listening, then refused until the end: none left to hang
        # unanswered and reset at exit. One made in the instant the listeners close may be reset.
        outcomes = await probes
        stopped = outcomes[outcomes.count("answered") :]
        assert outcomes[: len(outcomes) - len(stopped)] == ["answered"] * (len(outcomes) - len(stopped))
        assert "refused" in stopped and set(stopped[1:]) == {"refused"}, outcomes
        for _ in range(50):  # the children may take a moment longer to be reaped
            if not group_alive(proc.pid):
                break
            await asyncio.sleep(0.1)
        assert not group_alive(proc.pid), f"processes left behind:\n{served.output()}"
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            await proc.wait()
