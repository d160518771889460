"""An operator's view of `shopstream serve`: with `LOG_FORMAT=json` and the console trace exporter, a
request's log line carries its correlation and trace ids, and that trace id is on the HTTP span and on
each consumer's processing span."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.test_identity_serve import free_port, serve_env, serving, wait_ready

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

_SPAN_START = re.compile(r'^\{\s*"name": ', re.MULTILINE)


def spans_in(output: str) -> list[dict[str, Any]]:
    """The spans the console exporter printed (indented JSON objects among the log lines)."""
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(output, match.start())[0] for match in _SPAN_START.finditer(output)]


def log_lines(output: str) -> list[dict[str, Any]]:
    lines = []
    for line in output.splitlines():
        if line.startswith('{"time"'):
            lines.append(json.loads(line))
    return lines


async def test_one_request_is_followed_by_its_logs_and_spans(
    create_database, redis_url, redis_prefix, tmp_path
):
    port = free_port()
    env = serve_env(
        create_database("e2e_operations"),
        redis_url,
        f"{redis_prefix}-e2e-ops-{uuid.uuid4().hex[:6]}",
        tmp_path,
        port,
    )
    env |= {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG", "OTEL_TRACES_EXPORTER": "console"}
    async with serving(env, tmp_path / "serve.log") as served:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=15) as http:
            await wait_ready(served, http)
            unique = uuid.uuid4().hex[:10]
            response = await http.post(
                "/customers",
                json={
                    "external_id": unique,
                    "email": f"{unique}@example.com",
                    "first_name": "A",
                    "last_name": "B",
                },
                headers={"X-Correlation-ID": f"ops-{unique}"},
            )
            assert response.status_code == 201, response.text
            customer_id = response.json()["customer_id"]
            reads = [
                f"/customers/{customer_id}",
                f"/customers/{customer_id}/addresses",
                f"/customers?external_id={unique}",
            ]
            for _ in range(150):  # every identity read model shows the customer
                answers = [await http.get(path) for path in reads]
                segments = (await http.get("/customers/segments")).json()
                if all(a.status_code == 200 for a in answers) and segments["tiers"]["Standard"] == 1:
                    break
                await asyncio.sleep(0.1)
        served.proc.send_signal(signal.SIGINT)
        assert await served.proc.wait() == 0
        output = served.log.read_text(errors="replace")

    logged = [line for line in log_lines(output) if line["correlation_id"] == f"ops-{unique}"]
    assert logged, output[-3000:]
    trace_id = logged[0]["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id) and logged[0]["span_id"]

    in_trace = [s for s in spans_in(output) if s["context"]["trace_id"] == f"0x{trace_id}"]
    names = {s["name"] for s in in_trace}
    assert "POST /customers" in names, names
    processors = {
        s["attributes"].get("messaging.consumer.group.name")
        for s in in_trace
        if s["name"].startswith("process ")
    }
    assert {
        "identity.customer_card",
        "identity.address_book",
        "identity.customer_lookup",
        "identity.segments",
    } <= processors, names
