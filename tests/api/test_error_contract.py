"""The error contract of every route, present and future: RFC 9457 problem+json."""

import logging

import msgspec
import pytest
from litestar import get, post
from litestar.params import FromPath, JSONBody
from litestar.testing import AsyncTestClient

from bus.errors import Conflict, NotFound
from contexts.edge.bodies import Body
from shopstream.app import create_app
from tests.problems import assert_problem

pytestmark = pytest.mark.anyio


class Probe(Body):
    name: str
    count: int
    ready: bool = False


class TooFar(Conflict):
    kind = "too-far"


@post("/test-only/probe")
async def accept_probe(data: JSONBody[Probe]) -> dict[str, str]:
    return {"name": data.name}


@get("/test-only/refusals/{which:str}")
async def refuse(which: FromPath[str]) -> None:
    if which == "conflict":
        raise TooFar("the probe went too far")
    raise NotFound("probe", which)


@get("/test-only/boom")
async def boom() -> None:
    raise RuntimeError("secret-internal-detail")


@pytest.fixture
async def client(settings):
    async with AsyncTestClient(app=create_app(settings, route_handlers=[accept_probe, boom, refuse])) as c:
        yield c


async def test_valid_body_passes(client):
    response = await client.post("/test-only/probe", json={"name": "a", "count": 1})
    assert response.status_code == 201


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"text"', b"42", b"null"])
async def test_body_that_is_not_a_json_object_is_400(client, body):
    response = await client.post(
        "/test-only/probe", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"count": 1}, "name"),
        ({"name": 5, "count": 1}, "name"),
        ({"name": "a", "count": "many"}, "count"),
        ({"name": "a", "count": 1, "extra": True}, "extra"),
        ({"name": "a", "count": "5"}, "count"),  # never coerced: a body is decoded strictly
        ({"name": "a", "count": 1, "ready": 1}, "ready"),
        ({"name": "a", "count": 1, "ready": "true"}, "ready"),
    ],
)
async def test_invalid_field_is_422_naming_it(client, body, field):
    problem = assert_problem(await client.post("/test-only/probe", json=body), 422)
    assert field in [e["field"] for e in problem["errors"]]


async def test_a_refusal_answers_with_its_own_status_and_kind(client):
    problem = assert_problem(await client.get("/test-only/refusals/conflict"), 409)
    assert problem["type"] == "urn:shopstream:problem:too-far"
    assert problem["detail"] == "the probe went too far"


async def test_not_found_names_what_and_which(client):
    problem = assert_problem(await client.get("/test-only/refusals/p-7"), 404)
    assert problem["type"] == "urn:shopstream:problem:not-found"
    assert problem["detail"] == "probe p-7 does not exist"


async def test_write_routes_document_if_match_and_idempotency_key(client):
    document = (await client.get("/schema/openapi.json")).json()
    operation = document["paths"]["/customers/{customer_id}/profile"]["put"]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert {"If-Match", "Idempotency-Key"} <= headers
    create = document["paths"]["/customers"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"] if p["in"] == "header"}
    assert create["requestBody"]["content"]["application/json"]["schema"]


async def test_unknown_route_is_404(client):
    assert_problem(await client.get("/no/such/route"), 404)


async def test_wrong_method_is_405(client):
    response = await client.delete("/test-only/probe")
    assert_problem(response, 405)
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize("path", ["/test-only/probe", "/no/such/route", "/health"])
async def test_body_over_one_mebibyte_is_413(client, path):
    response = await client.post(path, content=b"x" * (2 * 1024 * 1024))
    assert_problem(response, 413)


async def test_streamed_body_over_the_limit_is_413_before_it_is_read_whole(settings):
    """No Content-Length (chunked upload): the limit is enforced while reading."""
    app = create_app(settings, route_handlers=[accept_probe])
    chunks_read = 0
    sent: list[dict] = []

    async def receive():
        nonlocal chunks_read
        chunks_read += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": chunks_read < 40}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/test-only/probe", "raw_path": b"/test-only/probe", "root_path": "",
        "query_string": b"", "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert chunks_read < 40
    assert msgspec.json.decode(sent[1]["body"])["status"] == 413


async def test_unexpected_error_is_500_without_internals_and_logged(client, caplog):
    with caplog.at_level(logging.ERROR, logger="shopstream.errors"):
        response = await client.get("/test-only/boom", headers={"x-correlation-id": "req-123"})
    problem = assert_problem(response, 500)
    assert "secret-internal-detail" not in response.text
    assert problem["correlation_id"] == "req-123"
    assert response.headers["x-correlation-id"] == "req-123"
    logged = [r for r in caplog.records if r.name == "shopstream.errors"]
    assert logged and logged[0].exc_info is not None
    assert "req-123" in logged[0].getMessage()


async def test_every_response_carries_a_correlation_id(client):
    response = await client.get("/health")
    assert len(response.headers["x-correlation-id"]) >= 16


async def test_openapi_ui_and_document_are_served(client):
    ui = await client.get("/schema")
    assert ui.status_code == 200 and "<html" in ui.text.lower()
    document = (await client.get("/schema/openapi.json")).json()
    assert document["info"]["title"] == "ShopStream"
    assert "/ready" in document["paths"]
