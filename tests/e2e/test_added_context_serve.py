"""A context added as a folder plus one entry in the list of contexts is served, migrated, relayed and
consumed by `shopstream serve` like the product's own: here the test-only counters and board contexts,
the board keeping a read model of the counters' events beside its own."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.test_identity_serve import eventually, free_port, serve_env, serving, wait_ready

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
ADDED = "contexts.identity,contexts.catalogue,tests.messaging.counters,tests.messaging.board"


async def test_an_added_context_is_served_migrated_relayed_and_consumed(
    create_database, redis_url, redis_prefix, tmp_path
):
    port = free_port()
    env = serve_env(
        create_database("e2e_added"),
        redis_url,
        f"{redis_prefix}-e2e-added-{uuid.uuid4().hex[:6]}",
        tmp_path,
        port,
    )
    env["SHOPSTREAM_CONTEXTS"] = ADDED
    async with (
        serving(env, tmp_path / "serve.log") as served,
        httpx.AsyncClient(base_url=served.base_url, timeout=15) as http,
    ):
        await wait_ready(served, http)

        pinned = await http.post("/test-only/board/notes", json={"text": "restock Friday"})
        assert pinned.status_code == 201, pinned.text
        note = pinned.headers["location"]
        body = await eventually(lambda: http.get(note), lambda b: b["version"] == 1)
        assert body["text"] == "restock Friday"

        opened = await http.post("/test-only/counters", json={"name": "visits"})
        assert opened.status_code == 201, opened.text
        counter_id = opened.json()["counter_id"]
        stepped = await http.put(f"/test-only/counters/{counter_id}/increment", json={"by": 3})
        assert stepped.status_code == 200, stepped.text
        seen = await eventually(
            lambda: http.get(f"/test-only/board/counters/{counter_id}"), lambda b: b["version"] == 2
        )
        assert (seen["name"], seen["total"]) == ("visits", 3)

        streams = (await http.get("/ops/streams")).json()["items"]
        groups = {(s["context"], g["group"]) for s in streams for g in s["groups"]}
        assert ("board", "board.notes_view") in groups
        assert ("counters", "board.counter_board") in groups  # its own group on the other's stream
        schema = (await http.get("/schema/openapi.json")).json()
        assert "/test-only/board/notes" in schema["paths"]
