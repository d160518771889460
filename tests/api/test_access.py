"""Access control over HTTP (SPEC §8): each role against each route group — allowed, 401 without a
good token, 403 for the wrong role or someone else's aggregate — and no secret in logs or spans.

One app with `SHOPSTREAM_AUTH=jwt` (HS256) runs with its workers for the module.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import AsyncTestClient

from shopstream.app import create_app
from shopstream.settings import Settings
from tests.apps import app_client
from tests.problems import assert_problem
from tests.tokens import AUDIENCE, ISSUER, SECRET, alg_none, bearer, claims, hmac_keyed_with, hs256

pytestmark = pytest.mark.anyio

ADMIN_TOKEN = "static-admin-token-for-scripts-0001"
SELLER = str(uuid.uuid4())
OTHER_SELLER = str(uuid.uuid4())
ADMIN = bearer(hs256("admin", "ops-1"))
AS_SELLER = bearer(hs256("seller", SELLER))
AS_OTHER_SELLER = bearer(hs256("seller", OTHER_SELLER))


def as_customer(external_id: str) -> dict[str, str]:
    return bearer(hs256("customer", external_id))


@pytest.fixture(scope="module")
async def jwt_settings(context_settings) -> Settings:
    return await context_settings(
        "access",
        auth="jwt",
        jwt_secret=SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        admin_token=ADMIN_TOKEN,
    )


@pytest.fixture(scope="module")
async def client(jwt_settings: Settings) -> AsyncIterator[AsyncTestClient]:
    async with app_client(jwt_settings) as opened:
        yield opened


def person(external_id: str | None = None) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:12]
    return {
        "external_id": external_id or f"crm-{tag}",
        "email": f"ada.{tag}@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
    }


def address() -> dict[str, Any]:
    return {"street": "1 Main St", "city": "London", "postal_code": "SW1A 1AA", "country": "United Kingdom"}


async def register(client: AsyncTestClient, external_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """A customer registered by itself: its id and its registration body."""
    body = person(external_id)
    created = await client.post("/customers", json=body, headers=as_customer(body["external_id"]))
    assert created.status_code == 201, created.text
    return created.json()["customer_id"], body


async def list_product(client: AsyncTestClient, headers: dict[str, str], **fields: Any) -> str:
    body = {"sku": f"SKU-{uuid.uuid4().hex[:10]}", "title": "Mug"} | fields
    created = await client.post("/products", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["product_id"])


async def put_on_sale(client: AsyncTestClient, product_id: str, headers: dict[str, str]) -> None:
    variant = {"variant_sku": f"V-{uuid.uuid4().hex[:8]}", "base_price": "9.99"}
    assert (
        await client.post(f"/products/{product_id}/variants", json=variant, headers=headers)
    ).status_code == 201
    assert (await client.put(f"/products/{product_id}/activate", headers=headers)).status_code == 200


async def read_until(
    client: AsyncTestClient, path: str, headers: dict[str, str], timeout: float = 30.0
) -> httpx.Response:
    """Poll an eventually consistent read (404 until the projection catches up; never 401 or 403)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(path, headers=headers)
        if response.status_code == 200:
            return response
        assert response.status_code == 404, response.text
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.05)


def assert_unauthenticated(response: httpx.Response, invalid_token: bool) -> dict[str, Any]:
    body = assert_problem(response, 401)
    assert body["type"].endswith(":unauthenticated")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="')
    assert ('error="invalid_token"' in challenge) is invalid_token
    return body


def assert_forbidden(response: httpx.Response) -> dict[str, Any]:
    body = assert_problem(response, 403)
    assert body["type"].endswith(":forbidden")
    return body


RANDOM_ID = str(uuid.uuid4())
PROTECTED = [
    ("POST", "/products", {"sku": "SKU-ANON", "title": "Mug"}),
    ("PUT", f"/products/{RANDOM_ID}/details", {"title": "x"}),
    ("PUT", f"/products/{RANDOM_ID}/activate", None),
    ("POST", "/categories", {"name": "Anon"}),
    ("PUT", f"/categories/{RANDOM_ID}/deactivate", None),
    ("POST", "/customers", person()),
    ("GET", f"/customers/{RANDOM_ID}", None),
    ("GET", f"/customers/{RANDOM_ID}/addresses", None),
    ("GET", f"/customers/{RANDOM_ID}/export", None),
    ("DELETE", f"/customers/{RANDOM_ID}/personal-data", None),
    ("GET", "/customers?email=a@example.com", None),
    ("POST", "/customers/lookup", {"email": "a@example.com"}),
    ("GET", "/customers/segments", None),
    ("PUT", f"/customers/{RANDOM_ID}/profile", {"first_name": "x"}),
    ("PUT", f"/customers/{RANDOM_ID}/tier", {"new_tier": "Gold"}),
    ("GET", "/ops/outbox", None),
    ("GET", "/ops/dead-letters", None),
    ("POST", "/ops/dead-letters/1/replay", None),
]


async def call(
    client: AsyncTestClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    return await client.request(method, path, json=body, headers=headers)


class TestAnonymous:
    @pytest.mark.parametrize(
        "path",
        ["/products", "/categories", "/health", "/ready", "/metrics", "/schema/openapi.json",
         f"/sellers/{SELLER}/products"],
    )  # fmt: skip
    async def test_public_reads_need_no_token(self, client, path):
        assert (await client.get(path)).status_code == 200

    async def test_a_bad_token_does_not_spoil_a_public_read(self, client):
        assert (await client.get("/products", headers=bearer("garbage"))).status_code == 200

    async def test_catalogue_detail_reads_are_public(self, client):
        # Anonymous callers see Active products only (SPEC §9): this one is put on sale first.
        product_id = await list_product(client, AS_SELLER)
        await put_on_sale(client, product_id, AS_SELLER)
        assert (await read_until(client, f"/products/{product_id}", {})).json()["seller_id"] == SELLER
        assert (await client.get(f"/products/{product_id}/price-history")).status_code in (200, 404)

    @pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
    async def test_everything_else_needs_a_token(self, client, method, path, body):
        assert_unauthenticated(await call(client, method, path, body, {}), invalid_token=False)


class TestBadTokens:
    BAD = {
        "forged": hs256("admin", "a", secret="not-the-secret-0123456789abcdefghij"),
        "expired": hs256("admin", "a", exp=int(time.time()) - 3600),
        "not yet valid": hs256("admin", "a", nbf=int(time.time()) + 7 * 86_400),
        "wrong audience": hs256("admin", "a", aud="another-service"),
        "wrong issuer": hs256("admin", "a", iss="https://evil.example/"),
        "alg none": alg_none("admin", "a"),
        "malformed": "abc.def",
    }

    @pytest.mark.parametrize("kind", BAD)
    @pytest.mark.parametrize(("method", "path", "body"), [PROTECTED[0], PROTECTED[6], PROTECTED[12]])
    async def test_is_401_with_an_invalid_token_challenge(self, client, kind, method, path, body):
        token = self.BAD[kind]
        response = await call(client, method, path, body, bearer(token))
        problem = assert_unauthenticated(response, invalid_token=True)
        assert token not in response.text and SECRET not in response.text
        assert problem["detail"] in response.headers["www-authenticate"]

    async def test_a_token_without_a_known_role_is_403(self, client):
        assert_forbidden(
            await client.post("/categories", json={"name": "X"}, headers=bearer(hs256("root", "r")))
        )
        assert_forbidden(await client.get("/customers/segments", headers=bearer(hs256(None, "r"))))


class TestAdmin:
    async def test_admin_may_do_everything(self, client):
        category = await client.post("/categories", json={"name": f"C-{uuid.uuid4().hex[:6]}"}, headers=ADMIN)
        assert category.status_code == 201, category.text
        product_id = await list_product(client, ADMIN)
        assert (
            await client.put(f"/products/{product_id}/details", json={"title": "T"}, headers=ADMIN)
        ).status_code == 200
        seller_product = await list_product(client, AS_SELLER)
        changed = await client.put(f"/products/{seller_product}/details", json={"title": "T"}, headers=ADMIN)
        assert changed.status_code == 200, changed.text
        created = await client.post("/customers", json=person(), headers=ADMIN)
        assert created.status_code == 201
        customer_id = created.json()["customer_id"]
        assert (await read_until(client, f"/customers/{customer_id}", ADMIN)).status_code == 200
        suspended = await client.put(f"/customers/{customer_id}/suspend", json={"reason": "x"}, headers=ADMIN)
        assert suspended.status_code == 200
        assert (await client.get("/customers/segments", headers=ADMIN)).status_code == 200
        assert (await client.get("/ops/outbox", headers=ADMIN)).status_code == 200

    async def test_admin_tokens_resolve_dead_letters(self, client):
        assert_problem(await client.post("/ops/dead-letters/1/replay", headers=ADMIN), 404)  # past the guard

    async def test_the_static_admin_token_still_opens_ops_and_only_ops(self, client):
        static = bearer(ADMIN_TOKEN)
        assert (await client.get("/ops/streams", headers=static)).status_code == 200
        assert_problem(await client.delete("/ops/dead-letters/1", headers=static), 404)
        assert_unauthenticated(await client.post("/categories", json={"name": "S"}, headers=static), True)
        wrong = await client.get("/ops/outbox", headers=bearer("not-the-admin-token-at-all"))
        assert_unauthenticated(wrong, invalid_token=True)


class TestSeller:
    async def test_lists_as_itself(self, client):
        product_id = await list_product(client, AS_SELLER)
        # A Draft shows only to its seller (and admins): SPEC §9.
        assert (await read_until(client, f"/products/{product_id}", AS_SELLER)).json()["seller_id"] == SELLER
        await list_product(client, AS_SELLER, seller_id=SELLER)
        other = await client.post(
            "/products",
            json={"sku": "SKU-NOT-MINE", "title": "Mug", "seller_id": OTHER_SELLER},
            headers=AS_SELLER,
        )
        assert_forbidden(other)

    async def test_changes_its_own_products_only(self, client):
        mine = await list_product(client, AS_SELLER)
        theirs = await list_product(client, AS_OTHER_SELLER)
        admins = await list_product(client, ADMIN)  # no seller at all
        variant = {"variant_sku": f"V-{uuid.uuid4().hex[:8]}", "base_price": "9.99", "currency": "EUR"}
        assert (
            await client.post(f"/products/{mine}/variants", json=variant, headers=AS_SELLER)
        ).status_code == 201
        assert (await client.put(f"/products/{mine}/activate", headers=AS_SELLER)).status_code == 200
        for product_id in (theirs, admins):
            assert_forbidden(
                await client.put(f"/products/{product_id}/details", json={"title": "x"}, headers=AS_SELLER)
            )
            variant["variant_sku"] = f"V-{uuid.uuid4().hex[:8]}"
            assert_forbidden(
                await client.post(f"/products/{product_id}/variants", json=variant, headers=AS_SELLER)
            )
            image = {"url": "https://cdn.example.com/a.jpg"}
            assert_forbidden(
                await client.post(f"/products/{product_id}/images", json=image, headers=AS_SELLER)
            )
            assert_forbidden(await client.put(f"/products/{product_id}/activate", headers=AS_SELLER))
        stale = await client.put(
            f"/products/{theirs}/details", json={"title": "x"}, headers=AS_SELLER | {"If-Match": '"99"'}
        )
        assert_forbidden(stale)  # ownership is decided before the version
        assert_problem(
            await client.put(f"/products/{RANDOM_ID}/details", json={"title": "x"}, headers=AS_SELLER), 404
        )

    async def test_may_not_touch_categories_customers_or_ops(self, client):
        assert_forbidden(await client.post("/categories", json={"name": "Mine"}, headers=AS_SELLER))
        assert_forbidden(await client.post("/customers", json=person(), headers=AS_SELLER))
        assert_forbidden(await client.get(f"/customers/{RANDOM_ID}", headers=AS_SELLER))
        assert_forbidden(await client.get("/ops/outbox", headers=AS_SELLER))
        assert_forbidden(await client.post("/ops/dead-letters/1/replay", headers=AS_SELLER))

    async def test_reads_the_catalogue(self, client):
        assert (await client.get("/products", headers=AS_SELLER)).status_code == 200


class TestCustomer:
    async def test_registers_only_itself(self, client):
        body = person()
        refused = await client.post("/customers", json=body, headers=as_customer("someone-else"))
        assert_forbidden(refused)
        await register(client, body["external_id"])

    async def test_reads_itself_at_once_and_no_one_else(self, client):
        customer_id, body = await register(client)
        me = as_customer(body["external_id"])
        # Ownership is checked on the write model: never 403 for itself, only 404 until the card is projected.
        card = await read_until(client, f"/customers/{customer_id}", me)
        assert card.json()["external_id"] == body["external_id"]
        assert (await read_until(client, f"/customers/{customer_id}/addresses", me)).status_code == 200
        by_external = await read_until(client, f"/customers?external_id={body['external_id']}", me)
        assert by_external.json()["customer_id"] == customer_id
        by_email = await read_until(client, f"/customers?email={body['email'].upper()}", me)
        assert by_email.json()["customer_id"] == customer_id
        # The same lookup row answered the query string above.
        looked_up = await client.post("/customers/lookup", json={"email": body["email"].upper()}, headers=me)
        assert looked_up.status_code == 200, looked_up.text
        assert looked_up.json()["customer_id"] == customer_id

    async def test_exports_and_erases_only_itself(self, client):
        other_id, _ = await register(client)
        customer_id, body = await register(client)
        me = as_customer(body["external_id"])
        for target in (other_id, str(uuid.uuid4())):
            assert_forbidden(await client.get(f"/customers/{target}/export", headers=me))
            assert_forbidden(await client.delete(f"/customers/{target}/personal-data", headers=me))
        exported = await client.get(f"/customers/{customer_id}/export", headers=me)
        assert exported.status_code == 200 and exported.json()["account"]["email"] == body["email"]
        assert (await client.put(f"/customers/{customer_id}/close", headers=me)).status_code == 200
        erased = await client.delete(f"/customers/{customer_id}/personal-data", headers=me)
        assert erased.status_code == 200, erased.text
        # Erased, the customer is nobody its token names any more.
        assert_forbidden(await client.get(f"/customers/{customer_id}/export", headers=me))
        assert (await client.get(f"/customers/{customer_id}/export", headers=ADMIN)).status_code == 200

    async def test_learns_nothing_about_other_ids(self, client):
        other_id, other = await register(client)
        _, me_body = await register(client)
        me = as_customer(me_body["external_id"])
        answers = []
        for target in (other_id, str(uuid.uuid4()), "not-a-uuid"):
            for path in (f"/customers/{target}", f"/customers/{target}/addresses"):
                answers.append(assert_forbidden(await client.get(path, headers=me)))
            answers.append(
                assert_forbidden(
                    await client.put(f"/customers/{target}/profile", json={"first_name": "E"}, headers=me)
                )
            )
            answers.append(
                assert_forbidden(
                    await client.post(f"/customers/{target}/addresses", json=address(), headers=me)
                )
            )
            answers.append(assert_forbidden(await client.put(f"/customers/{target}/close", headers=me)))
            answers.append(
                assert_forbidden(
                    await client.put(
                        f"/customers/{target}/email", json={"email": "eve@example.com"}, headers=me
                    )
                )
            )
        assert len({(a["detail"], a["type"]) for a in answers}) == 1  # one answer, whatever the id
        for query in (
            f"external_id={other['external_id']}",
            f"email={other['email']}",
            "email=nobody@example.com",
        ):
            assert_forbidden(await client.get(f"/customers?{query}", headers=me))
        for email in (other["email"], "nobody@example.com"):
            assert_forbidden(await client.post("/customers/lookup", json={"email": email}, headers=me))

    async def test_changes_itself(self, client):
        customer_id, body = await register(client)
        me = as_customer(body["external_id"])
        assert (
            await client.put(f"/customers/{customer_id}/profile", json={"first_name": "Eve"}, headers=me)
        ).status_code == 200
        added = await client.post(f"/customers/{customer_id}/addresses", json=address(), headers=me)
        assert added.status_code == 201, added.text
        address_id = added.json()["address_id"]
        changed = await client.put(
            f"/customers/{customer_id}/addresses/{address_id}", json={"city": "Leeds"}, headers=me
        )
        assert changed.status_code == 200
        assert (await client.put(f"/customers/{customer_id}/close", headers=me)).status_code == 200

    async def test_changes_its_own_email_and_finds_itself_under_it(self, client):
        customer_id, body = await register(client)
        me = as_customer(body["external_id"])
        email = f"eve.{uuid.uuid4().hex[:8]}@example.org"
        changed = await client.put(f"/customers/{customer_id}/email", json={"email": email}, headers=me)
        assert changed.status_code == 200, changed.text
        by_email = await read_until(client, f"/customers?email={email.upper()}", me)
        assert by_email.json()["customer_id"] == customer_id
        assert_forbidden(await client.get(f"/customers?email={body['email']}", headers=me))

    async def test_may_not_run_the_shops_decisions(self, client):
        customer_id, body = await register(client)
        me = as_customer(body["external_id"])
        assert_forbidden(
            await client.put(f"/customers/{customer_id}/tier", json={"new_tier": "Platinum"}, headers=me)
        )
        assert_forbidden(
            await client.put(f"/customers/{customer_id}/suspend", json={"reason": "x"}, headers=me)
        )
        assert_forbidden(await client.put(f"/customers/{customer_id}/reactivate", headers=me))
        assert_forbidden(await client.get("/customers/segments", headers=me))
        assert_forbidden(await client.post("/products", json={"sku": "SKU-C", "title": "Mug"}, headers=me))
        assert_forbidden(await client.post("/categories", json={"name": "C"}, headers=me))
        assert_forbidden(await client.get("/ops/outbox", headers=me))

    async def test_an_idempotency_key_answers_only_its_own_caller(self, client):
        first_id, first = await register(client)
        key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
        profile = {"first_name": "Kay"}
        mine = await client.put(
            f"/customers/{first_id}/profile", json=profile, headers=as_customer(first["external_id"]) | key
        )
        assert mine.status_code == 200
        replayed = await client.put(f"/customers/{first_id}/profile", json=profile, headers=ADMIN | key)
        assert_problem(replayed, 422)  # the same key and body from someone else is another request


class TestOpenApi:
    async def test_declares_bearer_security_where_needed(self, client):
        document = (await client.get("/schema/openapi.json")).json()
        scheme = document["components"]["securitySchemes"]["BearerToken"]
        assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
        operations = {
            op["operationId"]: op
            for item in document["paths"].values()
            for op in item.values()
            if isinstance(op, dict)
        }
        assert not operations["getCategoryTree"].get("security")
        # Storefront reads are open to anonymous callers ({}) and answer a token's bearer by its role.
        for public in ("listProducts", "getProduct", "getProductBySlug", "listSellerProducts", "getCategory"):
            assert operations[public]["security"] == [{}, {"BearerToken": []}], public
        for guarded in (
            "createProduct",
            "createCategory",
            "registerCustomer",
            "getCustomer",
            "getOutbox",
            "replayDeadLetter",
        ):
            assert operations[guarded]["security"] == [{"BearerToken": []}], guarded
            assert {"401", "403"} <= operations[guarded]["responses"].keys()


async def test_no_token_or_secret_in_logs_spans_or_metrics(jwt_settings, spans, caplog, monkeypatch):
    # Even an operator asking for every request header as a span attribute gets no credentials.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", ".*")
    settings = Settings(
        **{**{f: getattr(jwt_settings, f) for f in jwt_settings.__struct_fields__}, "log_level": "DEBUG"}
    )
    caplog.set_level(logging.DEBUG)
    tokens = [hs256("admin", "ops-1"), hs256("seller", SELLER), hs256("customer", "crm-secret-check")]
    bad = hs256("admin", "a", exp=int(time.time()) - 3600)
    async with AsyncTestClient(app=create_app(settings), timeout=30) as client:
        product = await client.post(
            "/products", json={"sku": f"SKU-{uuid.uuid4().hex[:8]}", "title": "M"}, headers=bearer(tokens[1])
        )
        assert product.status_code == 201
        assert (
            await client.post("/customers", json=person("crm-secret-check"), headers=bearer(tokens[2]))
        ).status_code in (201, 409)
        assert (await client.get("/ops/outbox", headers=bearer(tokens[0]))).status_code == 200
        assert (await client.get("/ops/outbox", headers=bearer(ADMIN_TOKEN))).status_code == 200
        assert (await client.get("/customers/segments", headers=bearer(bad))).status_code == 401
        metrics = (await client.get("/metrics")).text
    exported = spans.get_finished_spans()
    assert any(s.attributes and "http.request.header.authorization" in s.attributes for s in exported)
    span_text = "\n".join(s.to_json() for s in exported)
    log_text = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    for secret in [*tokens, bad, SECRET, ADMIN_TOKEN]:
        assert secret not in span_text
        assert secret not in log_text
        assert secret not in metrics
    assert SECRET not in repr(settings) and ADMIN_TOKEN not in repr(settings)


async def test_rs256_tokens_from_a_jwks_file(context_settings, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())) | {"kid": "gw-1"}
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    settings = await context_settings(
        "access_jwks",
        auth="jwt",
        jwt_jwks=str(tmp_path / "jwks.json"),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    signed = jwt.encode(claims("admin", "gw-admin"), key, algorithm="RS256", headers={"kid": "gw-1"})
    unknown_kid = jwt.encode(claims("admin", "gw-admin"), key, algorithm="RS256", headers={"kid": "gw-2"})
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    confused = hmac_keyed_with(public_pem, "admin", "gw-admin", kid="gw-1")
    async with AsyncTestClient(app=create_app(settings), timeout=30) as client:
        assert (await client.get("/customers/segments", headers=bearer(signed))).status_code == 200
        for token in (unknown_kid, confused, hs256("admin", "a"), alg_none("admin", "a")):
            refused = await client.get("/customers/segments", headers=bearer(token))
            assert_unauthenticated(refused, invalid_token=True)


@pytest.mark.parametrize(
    ("address", "overrides", "served"),
    [
        ("127.0.0.1", {}, True),
        ("127.8.9.10", {}, True),
        ("192.0.2.2", {}, False),
        ("192.0.2.2", {"auth_allow_public": True}, True),
        (
            "192.0.2.2",
            {"auth": "jwt", "jwt_secret": SECRET, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE},
            True,
        ),
    ],
)
async def test_auth_none_serves_only_connections_to_a_loopback_address(settings, address, overrides, served):
    """The address a connection reached (ASGI `server`; the test transport takes it from the URL)."""
    app = create_app(Settings(**{f: getattr(settings, f) for f in settings.__struct_fields__} | overrides))
    async with AsyncTestClient(app=app, base_url=f"http://{address}:8000", timeout=30) as client:
        for method, path in (("GET", "/health"), ("GET", "/products"), ("POST", "/categories")):
            response = await client.request(method, path, json={"name": "Far"} if method == "POST" else None)
            if served:
                assert response.status_code in (200, 201, 401), response.text
            else:
                problem = assert_problem(response, 403)
                assert problem["type"] == "urn:shopstream:problem:loopback-only"
                assert response.headers["x-correlation-id"]
