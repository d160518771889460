"""The conventions of SPEC §3 on every write route of every context, as the app itself reports its routes:
If-Match and the ETag, Idempotency-Key, bodies that are not JSON objects, hostile input and the OpenAPI
document. A route added later is covered here without a line of this file changing.

Each test makes the aggregates its route's path needs through the app's own creating routes (a customer
with two addresses, a product with two variants and two images, a category), with bodies from the
examples of the OpenAPI document.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from shopstream.settings import Settings
from tests.apps import app_client, eventually, outbox_size
from tests.hostile import NOT_IDS, NOT_OBJECTS, ODD, REFUSED, WHOLE_BODIES
from tests.problems import assert_accepted, assert_created, assert_problem
from tests.routes import Route, Target, another_body, app_routes, body_of, example_of, send, types_of
from tests.tokens import AUDIENCE, ISSUER, SECRET, bearer, hs256

pytestmark = pytest.mark.anyio

ROUTES = app_routes()
ON_AGGREGATES = [r for r in ROUTES.all if r.params]
WITH_BODY = [r for r in ROUTES.all if r.body is not None]
WITHOUT_BODY = [r for r in ROUTES.all if r.body is None]
REFUSALS = {400, 404, 409, 413, 422}
JSON = {"content-type": "application/json"}


def routes(chosen: list[Route]) -> Any:
    return pytest.mark.parametrize("route", chosen, ids=str)


def assert_answered(route: Route, response: httpx.Response, target: Target, version: int) -> None:
    """The route did its work: 201 with the new id and where it is read for a creating route, else 200;
    the aggregate's new version in the body and as the ETag."""
    if route.creates is None:
        assert_accepted(response, version)
        return
    new_id = assert_created(response, route.creates, version)
    if route.params:  # a sub-entity is read with its aggregate
        assert target.location and response.headers["location"].startswith(target.location), response.headers
    else:
        assert response.headers["location"] == f"{route.path}/{new_id}"


async def target_of(client: AsyncTestClient, route: Route) -> Target:
    return await ROUTES.target(client, route)


@pytest.fixture(scope="module")
async def everything(client) -> dict[str, str]:
    """One aggregate of each kind with its sub-entities, for requests that change nothing."""
    return await ROUTES.everything(client)


# --- If-Match --------------------------------------------------------------------------------------


def not_matching(version: int) -> list[str]:
    """If-Match values that name no version the aggregate is at: stale, ahead, weak, malformed."""
    return [
        f'"{version - 1}"', f'"{version + 1}"', '"0"', '"-1"', f'"{version}.0"', f'"0{version}"', '""',
        f'W/"{version}"', str(version), "garbage", f'"{version}" x',
    ]  # fmt: skip


MATCHING = {
    "strong": '"{v}"',
    "in a list": '"0", "{v}"',
    "after a weak one": 'W/"{v}", "{v}"',
    "any": "*",
}


class TestIfMatch:
    @routes(ON_AGGREGATES)
    async def test_a_tag_of_another_version_is_412_and_changes_nothing_until_the_current_one(
        self, client, db, route
    ):
        target = await target_of(client, route)
        before = await outbox_size(db, route.context)
        for tag in not_matching(target.version):
            response = await send(client, route, target.ids, headers={"If-Match": tag})
            assert response.status_code == 412, (tag, response.text)
            assert_problem(response, 412)
        assert await outbox_size(db, route.context) == before
        current = await send(client, route, target.ids, headers={"If-Match": f'"{target.version}"'})
        assert_answered(route, current, target, target.version + 1)

    @pytest.mark.parametrize("form", MATCHING)
    @routes(ON_AGGREGATES)
    async def test_any_spelling_naming_the_current_version_applies(self, client, route, form):
        target = await target_of(client, route)
        tag = MATCHING[form].format(v=target.version)
        response = await send(client, route, target.ids, headers={"If-Match": tag})
        assert_answered(route, response, target, target.version + 1)

    @routes(ON_AGGREGATES)
    async def test_the_etag_of_a_read_is_the_if_match_of_the_next_write(self, client, route):
        target = await target_of(client, route)
        assert target.location is not None
        read = await eventually(client, target.location, target.version)
        tag = read.headers["etag"]
        assert tag == f'"{read.json()["version"]}"' == f'"{target.version}"'
        applied = await send(client, route, target.ids, headers={"If-Match": tag})
        assert_answered(route, applied, target, target.version + 1)
        assert_problem(await send(client, route, target.ids, headers={"If-Match": tag}), 412)


# --- Idempotency-Key -------------------------------------------------------------------------------


def key(size: int = 255) -> str:
    """A new Idempotency-Key, by default of the longest size allowed."""
    return f"key-{uuid.uuid4().hex}".ljust(size, "k")


class TestIdempotencyKey:
    @routes(ROUTES.all)
    async def test_a_retry_answers_as_the_first_request_and_runs_nothing(self, client, db, route):
        target = await target_of(client, route)
        body, headers = body_of(route, ids=target.ids), {"Idempotency-Key": key()}
        first = await send(client, route, target.ids, body, headers)
        assert_answered(route, first, target, target.version + 1)
        after_first = await outbox_size(db, route.context)
        for _ in range(2):
            again = await send(client, route, target.ids, body, headers)
            assert (again.status_code, again.json()) == (first.status_code, first.json())
            assert again.headers["etag"] == first.headers["etag"]
            assert again.headers.get("location") == first.headers.get("location")
        assert await outbox_size(db, route.context) == after_first

    @routes(WITH_BODY)
    async def test_the_same_key_with_another_body_is_422_and_runs_nothing(self, client, db, route):
        target = await target_of(client, route)
        body, headers = body_of(route, ids=target.ids), {"Idempotency-Key": key()}
        assert_answered(
            route, await send(client, route, target.ids, body, headers), target, target.version + 1
        )
        before = await outbox_size(db, route.context)
        assert_problem(
            await send(client, route, target.ids, another_body(route, body, target.ids), headers), 422
        )
        assert await outbox_size(db, route.context) == before

    @routes(ROUTES.all)
    async def test_the_same_key_on_another_route_is_422_and_runs_nothing(self, client, db, route):
        other = next(r for r in ROUTES.creators.values() if not r.params and r != route)
        headers = {"Idempotency-Key": key()}
        assert (await send(client, other, {}, headers=headers)).status_code == 201
        target = await target_of(client, route)
        before = await outbox_size(db, route.context)
        assert_problem(await send(client, route, target.ids, headers=headers), 422)
        assert await outbox_size(db, route.context) == before

    @routes(ROUTES.all)
    async def test_a_key_over_255_characters_is_422_and_runs_nothing(self, client, db, route):
        target = await target_of(client, route)
        before = await outbox_size(db, route.context)
        assert_problem(await send(client, route, target.ids, headers={"Idempotency-Key": key(256)}), 422)
        assert await outbox_size(db, route.context) == before

    @routes(ON_AGGREGATES)
    async def test_a_request_refused_for_its_version_does_not_use_up_the_key(self, client, route):
        target = await target_of(client, route)
        body, headers = body_of(route, ids=target.ids), {"Idempotency-Key": key()}
        stale = headers | {"If-Match": f'"{target.version + 1}"'}
        assert_problem(await send(client, route, target.ids, body, stale), 412)
        assert_answered(
            route, await send(client, route, target.ids, body, headers), target, target.version + 1
        )


ADMIN = bearer(hs256("admin", "ops-1"))
OTHER_ADMIN = bearer(hs256("admin", "ops-2"))


@pytest.fixture(scope="module")
async def signed_in(context_settings) -> AsyncIterator[AsyncTestClient]:
    """The app checking tokens; requests come from one admin unless they say otherwise."""
    settings: Settings = await context_settings(
        "write_routes_jwt", auth="jwt", jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )
    async with app_client(settings) as opened:
        opened.headers.update(ADMIN)
        yield opened


class TestIdempotencyKeyOfAnotherCaller:
    @routes(ROUTES.all)
    async def test_the_same_key_and_request_from_another_caller_is_422_and_runs_nothing(
        self, signed_in, route
    ):
        target = await target_of(signed_in, route)
        body, headers = body_of(route, ids=target.ids), {"Idempotency-Key": key()}
        first = await send(signed_in, route, target.ids, body, headers)
        assert_answered(route, first, target, target.version + 1)
        assert_problem(await send(signed_in, route, target.ids, body, headers | OTHER_ADMIN), 422)
        again = await send(signed_in, route, target.ids, body, headers)
        assert (again.status_code, again.json()) == (first.status_code, first.json())


# --- bodies that are not JSON objects, too large, or hostile ---------------------------------------


def kind(schema: dict[str, Any]) -> str:
    types = types_of(schema)
    if "object" in types:
        return "object"
    if "boolean" in types:
        return "bool"
    if "number" in types:
        return "float"
    return "number" if "integer" in types else "text"


def field_cases(values: dict[str, list[str]]) -> list[Any]:
    return [
        pytest.param(route, name, value, id=f"{route}-{name}-{n}")
        for route in WITH_BODY
        for name, schema in route.body["properties"].items()  # type: ignore[index]
        for n, value in enumerate(values[kind(schema)])
    ]


def with_member(body: dict[str, Any], name: str, value: str) -> bytes:
    """The body's JSON with `name` set to the raw JSON `value`."""
    members_ = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in body.items() if k != name]
    members_.append(f"{json.dumps(name)}: {value}")
    return ("{" + ", ".join(members_) + "}").encode("utf-8", "surrogatepass")


async def send_raw(
    client: AsyncTestClient, route: Route, ids: dict[str, str], content: bytes
) -> httpx.Response:
    return await client.request(route.method, route.path.format(**ids), content=content, headers=JSON)


def assert_refused_as_a_problem(response: httpx.Response) -> None:
    assert response.status_code in REFUSALS, (response.status_code, response.text[:500])
    assert_problem(response, response.status_code)


def assert_below_500(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        assert_problem(response, response.status_code)


class TestBodyThatIsNotAJsonObject:
    @pytest.mark.parametrize("content", NOT_OBJECTS)
    @routes(WITH_BODY)
    async def test_is_400(self, client, everything, route, content):
        assert_problem(await send_raw(client, route, everything, content), 400)

    @routes(WITH_BODY)
    async def test_a_body_over_one_mebibyte_is_413(self, client, everything, route):
        body = body_of(route, ids=everything) or {}
        first = next(iter(route.body["properties"]))  # type: ignore[index]
        oversized = with_member(body, first, json.dumps("x" * (1024 * 1024 + 1)))
        assert_problem(await send_raw(client, route, everything, oversized), 413)


class TestHostileInputNeverYields500:
    @pytest.mark.parametrize(("route", "name", "value"), field_cases(REFUSED))
    async def test_a_hostile_value_in_any_field_is_refused_as_a_problem(
        self, client, everything, route, name, value
    ):
        response = await send_raw(
            client, route, everything, with_member(body_of(route, ids=everything) or {}, name, value)
        )
        assert_refused_as_a_problem(response)

    @pytest.mark.parametrize(("route", "name", "value"), field_cases(ODD))
    async def test_an_odd_value_in_any_field_is_answered_below_500(
        self, client, everything, route, name, value
    ):
        response = await send_raw(
            client, route, everything, with_member(body_of(route, ids=everything) or {}, name, value)
        )
        assert_below_500(response)

    @pytest.mark.parametrize(
        "value", [v for values in (*REFUSED.values(), *ODD.values()) for v in values][::3]
    )
    @routes(WITH_BODY)
    async def test_a_hostile_value_in_an_unknown_member_is_refused_as_a_problem(
        self, client, everything, route, value
    ):
        response = await send_raw(
            client, route, everything, with_member(body_of(route, ids=everything) or {}, "nickname", value)
        )
        assert_refused_as_a_problem(response)

    @routes(WITH_BODY)
    async def test_members_given_twice_with_other_values_are_answered_below_500(
        self, client, everything, route
    ):
        body = body_of(route, ids=everything) or {}
        again = json.dumps(another_body(route, body, everything))
        document = json.dumps(body)[:-1] + (", " if body else "") + again[1:]
        assert_below_500(await send_raw(client, route, everything, document.encode()))

    @pytest.mark.parametrize("content", WHOLE_BODIES, ids=lambda b: b[:12].decode())
    @routes(WITH_BODY)
    async def test_a_body_that_is_no_valid_request_is_refused_as_a_problem(
        self, client, everything, route, content
    ):
        response = await send_raw(client, route, everything, content)
        if content == b"{}" and not route.body.get("required"):  # type: ignore[union-attr]
            assert_accepted(response, response.json()["version"])  # every field is optional: nothing changes
        else:
            assert_refused_as_a_problem(response)

    @pytest.mark.parametrize("content", WHOLE_BODIES, ids=lambda b: b[:12].decode())
    @routes(WITHOUT_BODY)
    async def test_a_body_sent_to_a_route_without_one_never_yields_500(self, client, route, content):
        target = await target_of(client, route)
        assert_below_500(await send_raw(client, route, target.ids, content))
        unknown = {name: "00000000-0000-4000-8000-000000000000" for name in route.params}
        assert_problem(await send_raw(client, route, unknown, content), 404)


# --- the media type of a body ----------------------------------------------------------------------

# What a web page may send cross-origin without a preflight (text/plain, a form), no type at all, and
# JSON-like types the service does not speak.
NOT_JSON = [
    None,
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/merge-patch+json",
    "text/json",
    "application/jsonx",
]
QUERIES = ROUTES.queries  # reads sent as POST: their input stays out of the URL


class TestMediaType:
    @routes(ROUTES.all + QUERIES)
    async def test_a_body_not_declared_as_json_is_415_and_runs_nothing(self, client, db, route):
        target = await target_of(client, route)
        content = json.dumps(body_of(route, ids=target.ids) or {}).encode()
        path = route.path.format(**target.ids)
        before = await outbox_size(db, route.context)
        for content_type in NOT_JSON:
            headers = {} if content_type is None else {"content-type": content_type}
            refused = await client.request(route.method, path, content=content, headers=headers)
            assert refused.status_code == 415, (content_type, refused.text)
            problem = assert_problem(refused, 415)
            assert problem["type"] == "urn:shopstream:problem:unsupported-media-type"
        assert await outbox_size(db, route.context) == before
        declared = {"content-type": "Application/JSON; charset=UTF-8"}
        accepted = await client.request(route.method, path, content=content, headers=declared)
        if route in QUERIES:
            assert accepted.status_code in (200, 404), accepted.text
        else:
            assert_answered(route, accepted, target, target.version + 1)

    @routes(ROUTES.all)
    async def test_two_content_types_are_415(self, client, everything, route):
        headers = [("content-type", "application/json"), ("content-type", "text/plain")]
        response = await client.request(
            route.method, route.path.format(**everything), content=b"{}", headers=headers
        )
        assert_problem(response, 415)


class TestQueriesSentAsPost:
    def test_the_customer_lookup_is_one(self):
        assert "POST /customers/lookup" in {str(r) for r in QUERIES}

    @routes(QUERIES)
    def test_is_documented_as_a_read_of_a_json_body(self, route):
        assert route.operation is not None and route.body is not None
        headers = {p["name"] for p in route.operation.get("parameters", ()) if p["in"] == "header"}
        assert not headers & {"Idempotency-Key", "If-Match"}
        assert "200" in route.operation["responses"] and "201" not in route.operation["responses"]
        assert body_of(route) is not None

    @routes(QUERIES)
    async def test_changes_nothing(self, client, db, route):
        before = {context: await outbox_size(db, context) for context in ("identity", "catalogue")}
        for _ in range(2):
            response = await send(client, route, {})
            assert response.status_code in (200, 404), response.text
        assert {context: await outbox_size(db, context) for context in before} == before


# --- what the creating routes make ----------------------------------------------------------------

MAKING_AGGREGATES = [r for r in ROUTES.creators.values() if not r.params]


class TestCreatedAggregates:
    @routes(MAKING_AGGREGATES)
    async def test_an_uppercase_id_reads_the_same_aggregate(self, client, route):
        target = await target_of(client, route)
        made = await send(client, route, target.ids)
        assert made.status_code == 201, made.text
        new_id = made.json()[route.creates]
        await eventually(client, made.headers["location"], 1)
        response = await client.get(made.headers["location"].replace(new_id, new_id.upper()))
        assert response.status_code == 200
        assert response.json()[route.creates] == new_id


# --- ids in the path -------------------------------------------------------------------------------


def id_cases() -> list[Any]:
    return [
        pytest.param(route, name, bad, id=f"{route}-{name}-{n}")
        for route in ON_AGGREGATES
        for name in route.params
        for n, bad in enumerate([str(uuid.uuid4()), *NOT_IDS])
    ]


class TestUnknownIds:
    @pytest.mark.parametrize(("route", "name", "bad"), id_cases())
    async def test_an_unknown_or_malformed_id_in_the_path_is_404(self, client, everything, route, name, bad):
        assert_problem(await send(client, route, everything | {name: bad}), 404)


# --- the OpenAPI document --------------------------------------------------------------------------


async def test_the_routes_under_test_are_the_write_routes_the_served_document_lists(client):
    document = (await client.get("/schema/openapi.json")).json()
    served = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method.upper() in {"POST", "PUT", "PATCH", "DELETE"} and "operations" not in operation["tags"]
    }
    assert served == {str(r) for r in ROUTES.all + QUERIES}


class TestOpenApi:
    @routes(ROUTES.all)
    def test_is_documented_under_its_context_with_a_summary(self, route):
        assert route.operation is not None, f"{route} is served but not documented"
        assert route.operation["tags"] == [route.context]
        assert route.operation["summary"] and route.operation["operationId"]

    @routes(ROUTES.all)
    def test_documents_idempotency_key_and_on_an_aggregate_if_match(self, route):
        assert route.operation is not None
        headers = {p["name"] for p in route.operation["parameters"] if p["in"] == "header"}
        assert "Idempotency-Key" in headers
        assert ("If-Match" in headers) == bool(route.params)
        path = {p["name"] for p in route.operation["parameters"] if p["in"] == "path"}
        assert path == set(route.params)

    @routes(WITH_BODY)
    def test_documents_a_strict_body_with_an_example_for_every_field_it_needs(self, route):
        assert route.operation is not None and route.body is not None
        assert route.operation["requestBody"]["required"] is True
        assert route.body["additionalProperties"] is False
        assert set(route.body.get("required", [])) <= set(route.body["properties"])
        assert body_of(route) is not None  # an example for every required field

    @routes(ROUTES.all)
    def test_documents_its_answer_with_its_schema_an_example_and_the_etag(self, route):
        assert route.operation is not None
        responses = route.operation["responses"]
        success = responses["201" if route.creates else "200"]
        assert "ETag" in success["headers"]
        schema = ROUTES.resolve(success["content"]["application/json"]["schema"])
        assert {"version", route.creates or "status"} == set(schema["properties"]) == set(schema["required"])
        if route.creates:
            assert example_of(schema["properties"][route.creates]), route
            assert "Location" in success["headers"] and success["links"]
        else:
            assert all(example_of(field) for field in schema["properties"].values()), route

    @routes(ROUTES.all)
    def test_documents_each_refusal_as_a_problem(self, route):
        assert route.operation is not None
        codes = {"400", "409", "413", "422", "503"} | ({"404", "412"} if route.params else set())
        responses = route.operation["responses"]
        assert codes <= responses.keys()
        for code in codes:
            (media,) = responses[code]["content"]
            assert media == "application/problem+json", (route, code)
            assert responses[code]["content"][media]["schema"] == {
                "$ref": "#/components/schemas/ProblemDetails"
            }
