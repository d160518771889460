"""Every catalogue route of SPEC §5 over HTTP. The conventions all write routes share (SPEC §3: If-Match,
Idempotency-Key, bodies that are not objects, hostile input) are tested in tests/api/test_write_routes.py.

One app per module runs with its workers (`run_workers=True`) on a database and Redis prefix of its own,
so the projections catch up by themselves: reads are polled until they reflect the expected version (or,
for reads without one, the expected content). Every test makes its own SKUs, sellers and categories, as
the module shares one database.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.apps import OMIT, created, events_of, eventually, merged, until
from tests.hostile import NOT_IDS, WHOLE_BODIES
from tests.problems import assert_accepted, assert_created, assert_problem
from tests.routes import app_routes, send

pytestmark = pytest.mark.anyio

ON_A_PRODUCT = [r for r in app_routes().all if r.params[:1] == ("product_id",)]


# --- request bodies --------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}".upper()


def product(**overrides: Any) -> dict[str, Any]:
    """A new product's body with a fresh SKU and a seller of its own."""
    return merged(
        {
            "sku": unique("TEE"),
            "title": "Organic cotton tee",
            "seller_id": str(uuid.uuid4()),
        },
        overrides,
    )


def full_product(**overrides: Any) -> dict[str, Any]:
    return product(
        description="A heavyweight tee, knitted in Portugal.",
        brand="Northwind",
        attributes={"material": "cotton", "care": {"wash": 30}},
        visibility="Unlisted",
        restricted_to_tier="Gold",
        meta_title="Organic cotton tee | Northwind",
        meta_description="A heavyweight organic cotton tee.",
        slug=f"organic-cotton-tee-{uuid.uuid4().hex[:12]}",  # slugs are unique among products
        **overrides,
    )


def variant(**overrides: Any) -> dict[str, Any]:
    return merged({"variant_sku": unique("TEE-M"), "base_price": "19.99"}, overrides)


def image(**overrides: Any) -> dict[str, Any]:
    return merged({"url": f"https://img.example.com/{uuid.uuid4().hex}.jpg", "alt_text": "Front"}, overrides)


def category(**overrides: Any) -> dict[str, Any]:
    return merged({"name": f"Clothing {uuid.uuid4().hex[:8]}"}, overrides)


# --- helpers ---------------------------------------------------------------------------------------


async def create_product(client: AsyncTestClient, **overrides: Any) -> str:
    return await created(client, "/products", product(**overrides), "product_id")


async def add_variant(client: AsyncTestClient, product_id: str, **overrides: Any) -> str:
    return await created(client, f"/products/{product_id}/variants", variant(**overrides), "variant_id")


async def add_image(client: AsyncTestClient, product_id: str, **overrides: Any) -> str:
    return await created(client, f"/products/{product_id}/images", image(**overrides), "image_id")


async def create_category(client: AsyncTestClient, **overrides: Any) -> str:
    return await created(client, "/categories", category(**overrides), "category_id")


async def category_chain(client: AsyncTestClient, names: list[str]) -> list[str]:
    """Categories each filed under the one before: a root, its child, its grandchild, ..."""
    ids: list[str] = []
    for name in names:
        ids.append(await create_category(client, name=name, parent_category_id=ids[-1] if ids else None))
    return ids


async def move(client: AsyncTestClient, product_id: str, *actions: str) -> None:
    for action in actions:
        response = await client.put(f"/products/{product_id}/{action}")
        assert response.status_code == 200, response.text


LIFECYCLE = {
    "Draft": (),
    "Active": ("activate",),
    "Discontinued": ("activate", "discontinue"),
    "Archived": ("activate", "discontinue", "archive"),
}


async def product_in(client: AsyncTestClient, status: str, **overrides: Any) -> tuple[str, str, str, int]:
    """A product with one variant and one image, moved to `status`: (product, variant, image, version)."""
    product_id = await create_product(client, **overrides)
    variant_id = await add_variant(client, product_id)
    image_id = await add_image(client, product_id)
    await move(client, product_id, *LIFECYCLE[status])
    return product_id, variant_id, image_id, 3 + len(LIFECYCLE[status])


async def detail(client: AsyncTestClient, product_id: str, version: int) -> dict[str, Any]:
    response = await eventually(client, f"/products/{product_id}", version)
    body: dict[str, Any] = response.json()
    assert body["version"] == version
    assert response.headers["etag"] == f'"{version}"'
    return body


async def card(client: AsyncTestClient, seller_id: str, product_id: str, version: int) -> dict[str, Any]:
    def has(page: Any) -> bool:
        return any(c["product_id"] == product_id and c["version"] >= version for c in page["items"])

    page = (await until(client, f"/sellers/{seller_id}/products?limit=100", has)).json()
    found: dict[str, Any] = next(c for c in page["items"] if c["product_id"] == product_id)
    assert found["version"] == version
    return found


async def card_ids(client: AsyncTestClient, query: str, expected: list[str]) -> list[str]:
    """The product ids a card listing shows, once it shows exactly `expected` (in any order)."""
    response = await until(
        client,
        f"{query}&limit=100",
        lambda page: sorted(c["product_id"] for c in page["items"]) == sorted(expected),
    )
    return [c["product_id"] for c in response.json()["items"]]


async def category_node(client: AsyncTestClient, category_id: str, version: int) -> dict[str, Any]:
    response = await eventually(client, f"/categories/{category_id}", version)
    assert response.headers["etag"] == f'"{version}"'
    body: dict[str, Any] = response.json()
    return body


def find_node(nodes: list[dict[str, Any]], category_id: str) -> dict[str, Any] | None:
    for node in nodes:
        if node["category_id"] == category_id:
            return node
        if (found := find_node(node["children"], category_id)) is not None:
            return found
    return None


async def products_with_sku(db: asyncpg.Connection, sku: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM catalogue.products WHERE sku_key = $1", sku.upper()))


# --- POST /products --------------------------------------------------------------------------------

BAD_PRODUCTS = [
    ({"sku": OMIT}, "sku"),
    ({"title": OMIT}, "title"),
    ({"sku": None}, "sku"),
    ({"title": None}, "title"),
    ({"colour": "navy"}, "colour"),
    ({"status": "Active"}, "status"),
    ({"sku": 12345}, "sku"),
    ({"title": ["tee"]}, "title"),
    ({"seller_id": 7}, "seller_id"),
    ({"brand": True}, "brand"),
    ({"attributes": "cotton"}, "attributes"),
    ({"attributes": ["cotton"]}, "attributes"),
    ({"visibility": None}, "visibility"),
    ({"category_id": 42}, "category_id"),
    ({"sku": "AB"}, "sku"),
    ({"sku": "A" * 51}, "sku"),
    ({"sku": "-ABC"}, "sku"),
    ({"sku": "ABC-"}, "sku"),
    ({"sku": "AB--C"}, "sku"),
    ({"sku": "AB C"}, "sku"),
    ({"sku": "AB_C"}, "sku"),
    ({"sku": "ÄBC"}, "sku"),
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "x" * 256}, "title"),
    ({"description": "x" * 10_001}, "description"),
    ({"brand": "x" * 101}, "brand"),
    ({"meta_title": "x" * 71}, "meta_title"),
    ({"meta_description": "x" * 161}, "meta_description"),
    ({"slug": "Organic-Tee"}, "slug"),
    ({"slug": "organic--tee"}, "slug"),
    ({"slug": "-organic"}, "slug"),
    ({"slug": "organic-"}, "slug"),
    ({"slug": "organic tee"}, "slug"),
    ({"slug": "a" * 201}, "slug"),
    ({"visibility": "Private"}, "visibility"),
    ({"visibility": "public"}, "visibility"),
    ({"restricted_to_tier": None}, "restricted_to_tier"),
    ({"restricted_to_tier": 2}, "restricted_to_tier"),
    ({"restricted_to_tier": "Standard"}, "restricted_to_tier"),
    ({"restricted_to_tier": "gold"}, "restricted_to_tier"),
    ({"restricted_to_tier": "Diamond"}, "restricted_to_tier"),
    ({"seller_id": "seller-1"}, "seller_id"),
    ({"category_id": str(uuid.uuid4())}, "category_id"),
    ({"category_id": "not-a-uuid"}, "category_id"),
]


class TestCreateProduct:
    async def test_created_with_location_new_id_and_version_1(self, client):
        response = await client.post("/products", json=product())
        product_id = assert_created(response, "product_id", 1)
        assert response.headers["location"] == f"/products/{product_id}"

    async def test_the_detail_shows_every_field_given_as_a_draft(self, client):
        cat = await create_category(client)
        body = full_product(category_id=cat)
        product_id = await create_product(client, **body)
        shown = await detail(client, product_id, 1)
        assert {k: shown[k] for k in body} == body
        assert shown["product_id"] == product_id
        assert shown["status"] == "Draft"
        assert (shown["variants"], shown["images"]) == ([], [])
        assert shown["updated_at"] >= shown["created_at"]

    async def test_optional_fields_default(self, client):
        product_id = await create_product(client, seller_id=OMIT)
        shown = await detail(client, product_id, 1)
        assert shown["visibility"] == "Public"
        assert shown["restricted_to_tier"] == "Silver"
        assert shown["attributes"] == {}
        for name in (
            "seller_id",
            "description",
            "category_id",
            "brand",
            "meta_title",
            "meta_description",
            "slug",
        ):
            assert shown[name] is None, name

    async def test_limits_are_inclusive(self, client):
        body = product(
            sku=f"A{uuid.uuid4().hex}".upper().ljust(50, "Z"),
            title="t" * 255,
            description="d" * 10_000,
            brand="b" * 100,
            meta_title="m" * 70,
            meta_description="m" * 160,
            slug=uuid.uuid4().hex.ljust(200, "s"),
        )
        assert (await client.post("/products", json=body)).status_code == 201
        assert (await client.post("/products", json=product(sku=uuid.uuid4().hex[:3]))).status_code == 201

    @pytest.mark.parametrize("spelling", [str, str.lower, str.swapcase])
    async def test_a_taken_sku_in_any_case_is_409(self, client, db, spelling):
        sku = unique("Shirt")
        await create_product(client, sku=sku)
        problem = assert_problem(await client.post("/products", json=product(sku=spelling(sku))), 409)
        assert problem["type"].endswith("sku-taken")
        assert await products_with_sku(db, sku) == 1

    async def test_an_inactive_category_is_409(self, client):
        cat = await create_category(client)
        assert_accepted(await client.put(f"/categories/{cat}/deactivate"), 2)
        assert_problem(await client.post("/products", json=product(category_id=cat)), 409)

    @pytest.mark.parametrize(("change", "field"), BAD_PRODUCTS)
    async def test_invalid_product_is_422_naming_the_field(self, client, db, change, field):
        body = product(**change)
        assert_problem(await client.post("/products", json=body), 422, field)
        if isinstance(body.get("sku"), str):
            assert await products_with_sku(db, body["sku"]) == 0


# --- PUT /products/{id}/details --------------------------------------------------------------------

BAD_DETAILS = [
    ({"title": ""}, "title"),
    ({"title": None}, "title"),
    ({"title": "x" * 256}, "title"),
    ({"description": "x" * 10_001}, "description"),
    ({"brand": "x" * 101}, "brand"),
    ({"meta_title": "x" * 71}, "meta_title"),
    ({"meta_description": "x" * 161}, "meta_description"),
    ({"slug": "Not-Lower"}, "slug"),
    ({"slug": "a" * 201}, "slug"),
    ({"attributes": "x"}, "attributes"),
    ({"title": 5}, "title"),
    ({"sku": "NEW-SKU"}, "sku"),
    ({"category_id": str(uuid.uuid4())}, "category_id"),
]


class TestUpdateProductDetails:
    async def test_given_fields_change_and_omitted_ones_stay(self, client):
        body = full_product()
        product_id = await create_product(client, **body)
        response = await client.put(
            f"/products/{product_id}/details", json={"title": "Heavy tee", "brand": "Acme"}
        )
        assert_accepted(response, 2)
        shown = await detail(client, product_id, 2)
        assert (shown["title"], shown["brand"]) == ("Heavy tee", "Acme")
        assert (shown["slug"], shown["description"]) == (body["slug"], body["description"])

    async def test_every_detail_changes_at_once(self, client):
        product_id = await create_product(client)
        change = {
            "title": "New title",
            "description": "New description",
            "brand": "New brand",
            "attributes": {"fit": "slim"},
            "meta_title": "New meta",
            "meta_description": "New meta description",
            "slug": f"new-slug-{uuid.uuid4().hex[:12]}",
        }
        assert_accepted(await client.put(f"/products/{product_id}/details", json=change), 2)
        shown = await detail(client, product_id, 2)
        assert {k: shown[k] for k in change} == change

    async def test_null_clears_an_optional_detail(self, client):
        product_id = await create_product(client, **full_product())
        clear = {
            "description": None,
            "brand": None,
            "meta_title": None,
            "meta_description": None,
            "slug": None,
        }
        assert_accepted(await client.put(f"/products/{product_id}/details", json=clear), 2)
        shown = await detail(client, product_id, 2)
        assert {k: shown[k] for k in clear} == clear

    @pytest.mark.parametrize("body", [{}, {"title": "Organic cotton tee"}])
    async def test_a_change_to_the_same_values_keeps_the_version(self, client, db, body):
        product_id = await create_product(client)
        assert_accepted(await client.put(f"/products/{product_id}/details", json=body), 1)
        assert await events_of(db, "catalogue", product_id) == ["catalogue.ProductCreated"]

    @pytest.mark.parametrize(("change", "field"), BAD_DETAILS)
    async def test_invalid_change_is_422_naming_the_field(self, client, db, change, field):
        product_id = await create_product(client)
        assert_problem(await client.put(f"/products/{product_id}/details", json=change), 422, field)
        assert await events_of(db, "catalogue", product_id) == ["catalogue.ProductCreated"]


# --- POST /products/{id}/variants ------------------------------------------------------------------

BAD_PRICES = [
    19.999,
    "19.999",
    "19.991",
    0,
    "0",
    "0.00",
    -1,
    "-19.99",
    "NaN",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "",
    "19,99",
    "abc",
    "1000000000000",
    True,
    None,
    [19.99],
    {"amount": "19.99"},
]
BAD_VARIANTS = [
    ({"variant_sku": OMIT}, "variant_sku"),
    ({"base_price": OMIT}, "base_price"),
    ({"price": "1.00"}, "price"),
    ({"variant_sku": "V"}, "variant_sku"),
    ({"variant_sku": "V--1"}, "variant_sku"),
    ({"variant_sku": "V" * 51}, "variant_sku"),
    ({"variant_sku": 123}, "variant_sku"),
    ({"currency": "usd"}, "currency"),
    ({"currency": "XXX"}, "currency"),
    ({"currency": None}, "currency"),
    ({"currency": 840}, "currency"),
    ({"base_price": 1500.5, "currency": "JPY"}, "base_price"),
    ({"base_price": "1500.5", "currency": "JPY"}, "base_price"),
    ({"base_price": 1500.5, "currency": "KRW"}, "base_price"),
    ({"base_price": "1500.5", "currency": "KRW"}, "base_price"),
    ({"attributes": "red"}, "attributes"),
    ({"weight_value": -1}, "weight_value"),
    ({"weight_value": "heavy"}, "weight_value"),
    ({"weight_value": "NaN"}, "weight_value"),
    ({"weight_value": "0.0000001"}, "weight_value"),
    ({"weight_unit": "stone"}, "weight_unit"),
    ({"weight_unit": "KG"}, "weight_unit"),
    ({"length": -0.5}, "length"),
    ({"width": "-1"}, "width"),
    ({"height": "Infinity"}, "height"),
    ({"dimension_unit": "mm"}, "dimension_unit"),
    ({"dimension_unit": None}, "dimension_unit"),
    ({"is_active": False}, "is_active"),
]


class TestAddVariant:
    async def test_created_with_the_new_variant_id_and_the_product_version(self, client):
        product_id = await create_product(client)
        response = await client.post(f"/products/{product_id}/variants", json=variant())
        assert_created(response, "variant_id", 2, f"/products/{product_id}")

    async def test_every_field_is_kept_and_money_and_measures_read_back_as_decimal_strings(self, client):
        product_id = await create_product(client)
        body = variant(
            base_price=19.9,
            currency="EUR",
            attributes={"size": "M", "colour": "navy"},
            weight_value=0.25,
            weight_unit="lb",
            length="30",
            width=20.5,
            height="2.125",
            dimension_unit="in",
        )
        variant_id = await add_variant(client, product_id, **body)
        (shown,) = (await detail(client, product_id, 2))["variants"]
        assert shown == {
            "variant_id": variant_id,
            "variant_sku": body["variant_sku"],
            "attributes": body["attributes"],
            "base_price": "19.90",
            "currency": "EUR",
            "tier_prices": {},
            "weight_value": "0.25",
            "weight_unit": "lb",
            "length": "30",
            "width": "20.5",
            "height": "2.125",
            "dimension_unit": "in",
            "is_active": True,
            "your_price": None,  # an admin is no customer
        }

    async def test_defaults_are_usd_kg_and_cm(self, client):
        product_id = await create_product(client)
        await add_variant(client, product_id)
        (shown,) = (await detail(client, product_id, 2))["variants"]
        assert (shown["currency"], shown["weight_unit"], shown["dimension_unit"]) == ("USD", "kg", "cm")
        assert shown["weight_value"] is shown["length"] is shown["width"] is shown["height"] is None

    @pytest.mark.parametrize(
        ("price", "currency", "shown"),
        [
            (19.9, "USD", "19.90"),
            ("19.9", "USD", "19.90"),
            (19.99, "USD", "19.99"),
            ("19.990", "USD", "19.99"),
            (5, "GBP", "5.00"),
            (1500, "JPY", "1500"),
            ("1500", "JPY", "1500"),
            ("1500.00", "JPY", "1500"),
            (1.5e3, "KRW", "1500"),
            (50000, "KRW", "50000"),
            ("120000", "JPY", "120000"),
            ("10000.00", "USD", "10000.00"),
            ("999999999999.99", "USD", "999999999999.99"),
            ("0.01", "USD", "0.01"),
        ],
    )
    async def test_money_is_exact_end_to_end(self, client, price, currency, shown):
        product_id = await create_product(client)
        seller = (await detail(client, product_id, 1))["seller_id"]
        await add_variant(client, product_id, base_price=price, currency=currency)
        (read,) = (await detail(client, product_id, 2))["variants"]
        assert (read["base_price"], read["currency"]) == (shown, currency)
        listed = await card(client, seller, product_id, 2)
        assert (listed["min_price"], listed["max_price"], listed["currency"]) == (shown, shown, currency)

    @pytest.mark.parametrize("price", BAD_PRICES, ids=repr)
    async def test_a_price_that_is_not_a_positive_amount_of_the_currency_is_422(self, client, price):
        product_id = await create_product(client)
        response = await client.post(f"/products/{product_id}/variants", json=variant(base_price=price))
        assert_problem(response, 422, "base_price")

    @pytest.mark.parametrize(("change", "field"), BAD_VARIANTS)
    async def test_invalid_variant_is_422_naming_the_field(self, client, db, change, field):
        product_id = await create_product(client)
        response = await client.post(f"/products/{product_id}/variants", json=variant(**change))
        assert_problem(response, 422, field)
        assert await events_of(db, "catalogue", product_id) == ["catalogue.ProductCreated"]

    @pytest.mark.parametrize("spelling", [str, str.lower])
    async def test_a_variant_sku_taken_in_the_same_product_is_409(self, client, spelling):
        product_id = await create_product(client)
        sku = unique("Var")
        await add_variant(client, product_id, variant_sku=sku)
        response = await client.post(
            f"/products/{product_id}/variants", json=variant(variant_sku=spelling(sku))
        )
        assert_problem(response, 409)

    @pytest.mark.parametrize("spelling", [str, str.lower, str.swapcase])
    async def test_a_variant_sku_taken_by_another_product_is_409(self, client, db, spelling):
        first, second = await create_product(client), await create_product(client)
        sku = unique("Var")
        await add_variant(client, first, variant_sku=sku)
        response = await client.post(f"/products/{second}/variants", json=variant(variant_sku=spelling(sku)))
        problem = assert_problem(response, 409)
        assert problem["type"].endswith("variant-sku-taken")
        assert await events_of(db, "catalogue", second) == ["catalogue.ProductCreated"]

    async def test_a_variant_in_another_currency_than_the_others_is_409(self, client):
        product_id = await create_product(client)
        await add_variant(client, product_id, currency="EUR")
        response = await client.post(f"/products/{product_id}/variants", json=variant(currency="USD"))
        assert_problem(response, 409)


# --- PUT /products/{id}/variants/{variant_id}/price ------------------------------------------------


class TestChangeVariantPrice:
    async def test_the_new_price_is_shown_and_recorded(self, client):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, base_price="24.99")
        path = f"/products/{product_id}/variants/{variant_id}/price"
        assert_accepted(await client.put(path, json={"base_price": 19.9}), 3)
        (shown,) = (await detail(client, product_id, 3))["variants"]
        assert shown["base_price"] == "19.90"
        history = (await eventually(client, f"/products/{product_id}/price-history", 3)).json()
        (change,) = history["items"]
        assert (change["variant_id"], change["previous_price"], change["new_price"], change["currency"]) == (
            variant_id,
            "24.99",
            "19.90",
            "USD",
        )

    async def test_tier_prices_are_kept(self, client):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, base_price="20.00")
        await client.put(
            f"/products/{product_id}/variants/{variant_id}/tier-price",
            json={"tier": "Gold", "price": "15.00"},
        )
        path = f"/products/{product_id}/variants/{variant_id}/price"
        assert_accepted(await client.put(path, json={"base_price": "15.01"}), 4)
        (shown,) = (await detail(client, product_id, 4))["variants"]
        assert shown["tier_prices"] == {"Gold": "15.00"}

    @pytest.mark.parametrize("price", ["15.00", "14.99", "1"])
    async def test_a_base_price_not_above_every_tier_price_is_409(self, client, db, price):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, base_price="20.00")
        tier = f"/products/{product_id}/variants/{variant_id}/tier-price"
        assert_accepted(await client.put(tier, json={"tier": "Silver", "price": "15.00"}), 3)
        response = await client.put(
            f"/products/{product_id}/variants/{variant_id}/price", json={"base_price": price}
        )
        problem = assert_problem(response, 409)
        assert problem["type"].endswith("tier-price-not-below-base")
        assert len(await events_of(db, "catalogue", product_id)) == 3

    async def test_the_same_price_keeps_the_version(self, client):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, base_price="20")
        path = f"/products/{product_id}/variants/{variant_id}/price"
        assert_accepted(await client.put(path, json={"base_price": "20.00"}), 2)

    async def test_the_currency_of_one_of_several_variants_cannot_change(self, client):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id)
        await add_variant(client, product_id)
        path = f"/products/{product_id}/variants/{variant_id}/price"
        assert_problem(await client.put(path, json={"base_price": "19.99", "currency": "EUR"}), 409)

    async def test_the_currency_of_a_single_variant_may_change(self, client):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id)
        path = f"/products/{product_id}/variants/{variant_id}/price"
        assert_accepted(await client.put(path, json={"base_price": 2500, "currency": "JPY"}), 3)
        (shown,) = (await detail(client, product_id, 3))["variants"]
        assert (shown["base_price"], shown["currency"]) == ("2500", "JPY")

    @pytest.mark.parametrize("price", BAD_PRICES, ids=repr)
    async def test_an_invalid_price_is_422(self, client, price):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id)
        path = f"/products/{product_id}/variants/{variant_id}/price"
        assert_problem(await client.put(path, json={"base_price": price}), 422, "base_price")

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "base_price"),
            ({"base_price": "10", "currency": "XXX"}, "currency"),
            ({"base_price": "10", "tier": "Gold"}, "tier"),
            ({"base_price": "10.5", "currency": "JPY"}, "base_price"),
        ],
    )
    async def test_an_invalid_change_is_422_naming_the_field(self, client, body, field):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id)
        assert_problem(
            await client.put(f"/products/{product_id}/variants/{variant_id}/price", json=body), 422, field
        )


# --- PUT /products/{id}/variants/{variant_id}/tier-price -------------------------------------------


class TestSetTierPrice:
    async def test_tier_prices_are_shown_with_the_variant(self, client):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, base_price="20")
        path = f"/products/{product_id}/variants/{variant_id}/tier-price"
        assert_accepted(await client.put(path, json={"tier": "Silver", "price": 18}), 3)
        assert_accepted(await client.put(path, json={"tier": "Gold", "price": "17.5"}), 4)
        assert_accepted(await client.put(path, json={"tier": "Platinum", "price": 15.25}), 5)
        assert_accepted(await client.put(path, json={"tier": "Gold", "price": "16.99"}), 6)
        (shown,) = (await detail(client, product_id, 6))["variants"]
        assert shown["tier_prices"] == {"Silver": "18.00", "Gold": "16.99", "Platinum": "15.25"}

    @pytest.mark.parametrize("price", ["20.00", "20", "20.01", "100"])
    async def test_a_tier_price_not_below_the_base_price_is_409(self, client, price):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, base_price="20")
        path = f"/products/{product_id}/variants/{variant_id}/tier-price"
        assert_problem(await client.put(path, json={"tier": "Gold", "price": price}), 409)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"tier": "Standard", "price": "10"}, "tier"),
            ({"tier": "gold", "price": "10"}, "tier"),
            ({"tier": "Diamond", "price": "10"}, "tier"),
            ({"tier": None, "price": "10"}, "tier"),
            ({"price": "10"}, "tier"),
            ({"tier": "Gold"}, "price"),
            ({"tier": "Gold", "price": "0"}, "price"),
            ({"tier": "Gold", "price": -5}, "price"),
            ({"tier": "Gold", "price": "9.999"}, "price"),
            ({"tier": "Gold", "price": 9.999}, "price"),
            ({"tier": "Gold", "price": "NaN"}, "price"),
            ({"tier": "Gold", "price": "10", "currency": "USD"}, "currency"),
        ],
    )
    async def test_an_invalid_tier_price_is_422_naming_the_field(self, client, body, field):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, base_price="20")
        path = f"/products/{product_id}/variants/{variant_id}/tier-price"
        assert_problem(await client.put(path, json=body), 422, field)

    async def test_a_jpy_tier_price_has_no_minor_digits(self, client):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, base_price=1500, currency="JPY")
        path = f"/products/{product_id}/variants/{variant_id}/tier-price"
        assert_problem(await client.put(path, json={"tier": "Gold", "price": 1400.5}), 422, "price")
        assert_accepted(await client.put(path, json={"tier": "Gold", "price": 1400}), 3)


# --- POST /products/{id}/images, DELETE /products/{id}/images/{image_id} ----------------------------

BAD_IMAGES = [
    ({"url": OMIT}, "url"),
    ({"url": None}, "url"),
    ({"url": ""}, "url"),
    ({"url": "ftp://img.example.com/a.jpg"}, "url"),
    ({"url": "img.example.com/a.jpg"}, "url"),
    ({"url": "https://"}, "url"),
    ({"url": "https://img.example.com/a b.jpg"}, "url"),
    ({"url": "https://img.example.com:99999/a.jpg"}, "url"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "https://img.example.com/" + "a" * 477}, "url"),  # 501 characters
    ({"url": 42}, "url"),
    ({"alt_text": "x" * 256}, "alt_text"),
    ({"alt_text": 5}, "alt_text"),
    ({"is_primary": "yes"}, "is_primary"),
    ({"is_primary": 1}, "is_primary"),
    ({"display_order": 3}, "display_order"),
]


class TestAddProductImage:
    async def test_created_with_the_new_image_id_and_the_product_version(self, client):
        product_id = await create_product(client)
        response = await client.post(f"/products/{product_id}/images", json=image())
        assert_created(response, "image_id", 2, f"/products/{product_id}")

    async def test_the_first_image_is_primary_and_images_are_in_display_order(self, client):
        product_id = await create_product(client)
        bodies = [image(alt_text=f"View {n}") for n in range(3)]
        ids = [await add_image(client, product_id, **body) for body in bodies]
        shown = (await detail(client, product_id, 4))["images"]
        assert [i["image_id"] for i in shown] == ids
        assert [i["display_order"] for i in shown] == [0, 1, 2]
        assert [i["is_primary"] for i in shown] == [True, False, False]
        assert [(i["url"], i["alt_text"]) for i in shown] == [(b["url"], b["alt_text"]) for b in bodies]

    async def test_adding_with_is_primary_moves_the_flag(self, client):
        product_id = await create_product(client)
        await add_image(client, product_id)
        second = await add_image(client, product_id, is_primary=True)
        shown = (await detail(client, product_id, 3))["images"]
        assert [i["is_primary"] for i in shown] == [False, True]
        assert shown[1]["image_id"] == second

    async def test_a_url_of_500_characters_is_accepted(self, client):
        product_id = await create_product(client)
        await add_image(client, product_id, url="https://img.example.com/" + "a" * 476, alt_text="x" * 255)

    async def test_the_eleventh_image_is_409(self, client, db):
        product_id = await create_product(client)
        for _ in range(10):
            await add_image(client, product_id)
        problem = assert_problem(await client.post(f"/products/{product_id}/images", json=image()), 409)
        assert problem["type"].endswith("image-limit-reached")
        assert len(await events_of(db, "catalogue", product_id)) == 11

    @pytest.mark.parametrize(("change", "field"), BAD_IMAGES)
    async def test_invalid_image_is_422_naming_the_field(self, client, change, field):
        product_id = await create_product(client)
        response = await client.post(f"/products/{product_id}/images", json=image(**change))
        assert_problem(response, 422, field)


class TestRemoveProductImage:
    async def test_removing_another_image_keeps_the_primary(self, client):
        product_id = await create_product(client)
        first, second = await add_image(client, product_id), await add_image(client, product_id)
        assert_accepted(await client.delete(f"/products/{product_id}/images/{second}"), 4)
        shown = (await detail(client, product_id, 4))["images"]
        assert [(i["image_id"], i["is_primary"]) for i in shown] == [(first, True)]

    async def test_removing_the_primary_makes_the_first_remaining_image_primary(self, client):
        product_id = await create_product(client)
        ids = [await add_image(client, product_id) for _ in range(3)]
        assert_accepted(await client.delete(f"/products/{product_id}/images/{ids[0]}"), 5)
        shown = (await detail(client, product_id, 5))["images"]
        assert [(i["image_id"], i["is_primary"]) for i in shown] == [(ids[1], True), (ids[2], False)]

    async def test_the_last_image_may_be_removed(self, client):
        product_id = await create_product(client)
        only = await add_image(client, product_id)
        assert_accepted(await client.delete(f"/products/{product_id}/images/{only}"), 3)
        assert (await detail(client, product_id, 3))["images"] == []

    @pytest.mark.parametrize("image_id", [str(uuid.uuid4()), "not-an-image"])
    async def test_unknown_image_is_404(self, client, image_id):
        product_id = await create_product(client)
        await add_image(client, product_id)
        assert_problem(await client.delete(f"/products/{product_id}/images/{image_id}"), 404)

    async def test_an_image_cannot_be_removed_twice(self, client):
        product_id = await create_product(client)
        image_id = await add_image(client, product_id)
        assert_accepted(await client.delete(f"/products/{product_id}/images/{image_id}"), 3)
        assert_problem(await client.delete(f"/products/{product_id}/images/{image_id}"), 404)

    async def test_another_products_image_is_404(self, client):
        product_id, other = await create_product(client), await create_product(client)
        image_id = await add_image(client, other)
        assert_problem(await client.delete(f"/products/{product_id}/images/{image_id}"), 404)


# --- lifecycle -------------------------------------------------------------------------------------

NOT_ALLOWED = [
    ("Draft", "discontinue"),
    ("Draft", "archive"),
    ("Active", "activate"),
    ("Active", "archive"),
    ("Discontinued", "activate"),
    ("Discontinued", "discontinue"),
]


class TestLifecycle:
    async def test_draft_to_active_to_discontinued_to_archived(self, client):
        product_id, _, _, version = await product_in(client, "Draft")
        for action, status in [
            ("activate", "Active"),
            ("discontinue", "Discontinued"),
            ("archive", "Archived"),
        ]:
            version += 1
            assert_accepted(await client.put(f"/products/{product_id}/{action}"), version)
            assert (await detail(client, product_id, version))["status"] == status

    async def test_activating_without_a_variant_is_409(self, client, db):
        product_id = await create_product(client)
        problem = assert_problem(await client.put(f"/products/{product_id}/activate"), 409)
        assert problem["type"].endswith("variant-required")
        assert await events_of(db, "catalogue", product_id) == ["catalogue.ProductCreated"]

    @pytest.mark.parametrize(("status", "action"), NOT_ALLOWED)
    async def test_a_transition_not_in_the_lifecycle_is_409(self, client, status, action):
        product_id, *_ = await product_in(client, status)
        problem = assert_problem(await client.put(f"/products/{product_id}/{action}"), 409)
        assert problem["type"].endswith("transition-not-allowed")

    async def test_an_active_product_still_takes_variants_and_price_changes(self, client):
        product_id, variant_id, _, version = await product_in(client, "Active")
        assert (await client.post(f"/products/{product_id}/variants", json=variant())).status_code == 201
        path = f"/products/{product_id}/variants/{variant_id}/price"
        assert_accepted(await client.put(path, json={"base_price": "9.99"}), version + 2)


class TestArchivedProduct:
    @pytest.mark.parametrize("route", ON_A_PRODUCT, ids=str)
    async def test_an_archived_product_refuses_every_command_with_409(self, client, db, route):
        product_id, variant_id, image_id, version = await product_in(client, "Archived")
        ids = {"product_id": product_id, "variant_id": variant_id, "image_id": image_id}
        problem = assert_problem(await send(client, route, ids), 409)
        assert problem["type"].endswith("product-archived")
        assert len(await events_of(db, "catalogue", product_id)) == version


# --- unknown products, variants, categories --------------------------------------------------------


class TestUnknownIds:
    @pytest.mark.parametrize("product_id", NOT_IDS)
    @pytest.mark.parametrize("suffix", ["", "/price-history"])
    async def test_reads_of_an_unknown_or_malformed_product_id_are_404(self, client, product_id, suffix):
        assert_problem(await client.get(f"/products/{product_id}{suffix}"), 404)

    @pytest.mark.parametrize("variant_id", [str(uuid.uuid4()), "not-a-variant"])
    @pytest.mark.parametrize(
        ("suffix", "body"),
        [("price", {"base_price": "9.99"}), ("tier-price", {"tier": "Gold", "price": "1"})],
    )
    async def test_an_unknown_variant_is_404(self, client, variant_id, suffix, body):
        product_id = await create_product(client)
        await add_variant(client, product_id)
        assert_problem(
            await client.put(f"/products/{product_id}/variants/{variant_id}/{suffix}", json=body), 404
        )

    async def test_another_products_variant_is_404(self, client):
        product_id, other = await create_product(client), await create_product(client)
        variant_id = await add_variant(client, other)
        path = f"/products/{product_id}/variants/{variant_id}/price"
        assert_problem(await client.put(path, json={"base_price": "9.99"}), 404)

    @pytest.mark.parametrize("category_id", NOT_IDS)
    async def test_a_read_of_an_unknown_or_malformed_category_id_is_404(self, client, category_id):
        assert_problem(await client.get(f"/categories/{category_id}"), 404)

    @pytest.mark.parametrize("seller_id", ["not-a-uuid", "%00"])
    async def test_a_malformed_seller_id_is_404(self, client, seller_id):
        assert_problem(await client.get(f"/sellers/{seller_id}/products"), 404)

    async def test_an_unknown_seller_has_no_products(self, client):
        response = await client.get(f"/sellers/{uuid.uuid4()}/products")
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}


# --- GET /products/{id} ----------------------------------------------------------------------------


class TestProductDetail:
    async def test_every_field_with_variants_tier_prices_and_images_in_display_order(self, client):
        cat = await create_category(client)
        body = full_product(category_id=cat)
        product_id = await create_product(client, **body)
        small = await add_variant(client, product_id, base_price="20", attributes={"size": "S"})
        large = await add_variant(client, product_id, base_price="25.5", attributes={"size": "L"})
        await client.put(
            f"/products/{product_id}/variants/{large}/tier-price", json={"tier": "Gold", "price": "22"}
        )
        front = await add_image(client, product_id)
        back = await add_image(client, product_id, is_primary=True)
        shown = await detail(client, product_id, 6)
        assert set(shown) == {
            "product_id", "sku", "seller_id", "title", "description", "category_id", "brand", "attributes",
            "visibility", "restricted_to_tier", "meta_title", "meta_description", "slug", "status", "variants",
            "images", "created_at", "updated_at", "version",
        }  # fmt: skip
        assert {k: shown[k] for k in body} == body
        assert [(v["variant_id"], v["base_price"], v["tier_prices"]) for v in shown["variants"]] == [
            (small, "20.00", {}),
            (large, "25.50", {"Gold": "22.00"}),
        ]
        assert [(i["image_id"], i["is_primary"], i["display_order"]) for i in shown["images"]] == [
            (front, False, 0),
            (back, True, 1),
        ]
        assert shown["updated_at"] > shown["created_at"]


# --- GET /products, GET /sellers/{id}/products -----------------------------------------------------


class TestProductCards:
    async def test_a_card_shows_the_product_at_a_glance(self, client):
        cat = await create_category(client)
        body = product(category_id=cat, brand="Northwind")
        product_id = await create_product(client, **body)
        shown = await card(client, body["seller_id"], product_id, 1)
        assert set(shown) == {
            "product_id", "sku", "title", "brand", "category_id", "seller_id", "primary_image_url", "min_price",
            "max_price", "currency", "status", "variant_count", "created_at", "version", "your_min_price",
            "your_max_price",
        }  # fmt: skip
        assert {k: shown[k] for k in ("sku", "title", "brand", "category_id", "seller_id")} == {
            k: body[k] for k in ("sku", "title", "brand", "category_id", "seller_id")
        }
        assert (shown["status"], shown["variant_count"], shown["primary_image_url"]) == ("Draft", 0, None)
        assert shown["min_price"] is shown["max_price"] is shown["currency"] is None

    async def test_min_and_max_are_exact_after_a_cut_a_raise_and_a_new_variant(self, client):
        seller = str(uuid.uuid4())
        product_id = await create_product(client, seller_id=seller)
        first = await add_variant(client, product_id, base_price="20")
        second = await add_variant(client, product_id, base_price="30")
        shown = await card(client, seller, product_id, 3)
        assert (shown["min_price"], shown["max_price"], shown["variant_count"]) == ("20.00", "30.00", 2)
        await client.put(f"/products/{product_id}/variants/{second}/price", json={"base_price": "15"})
        shown = await card(client, seller, product_id, 4)
        assert (shown["min_price"], shown["max_price"]) == ("15.00", "20.00")
        await client.put(f"/products/{product_id}/variants/{first}/price", json={"base_price": 25.5})
        shown = await card(client, seller, product_id, 5)
        assert (shown["min_price"], shown["max_price"]) == ("15.00", "25.50")
        await add_variant(client, product_id, base_price="40.01")
        shown = await card(client, seller, product_id, 6)
        assert (shown["min_price"], shown["max_price"], shown["variant_count"]) == ("15.00", "40.01", 3)
        assert shown["currency"] == "USD"

    async def test_the_primary_image_follows_the_flag(self, client):
        seller = str(uuid.uuid4())
        product_id = await create_product(client, seller_id=seller)
        first, second = image(), image(is_primary=True)
        await add_image(client, product_id, **first)
        assert (await card(client, seller, product_id, 2))["primary_image_url"] == first["url"]
        second_id = await add_image(client, product_id, **second)
        assert (await card(client, seller, product_id, 3))["primary_image_url"] == second["url"]
        await client.delete(f"/products/{product_id}/images/{second_id}")
        assert (await card(client, seller, product_id, 4))["primary_image_url"] == first["url"]

    async def test_filters_by_category_seller_and_status(self, client):
        cat, seller = await create_category(client), str(uuid.uuid4())
        active, *_ = await product_in(client, "Active", category_id=cat, seller_id=seller)
        elsewhere = await create_product(client, category_id=cat)
        unfiled = await create_product(client, seller_id=seller)
        assert set(await card_ids(client, f"/products?category_id={cat}", [active, elsewhere])) == {
            active,
            elsewhere,
        }
        assert set(await card_ids(client, f"/products?seller_id={seller}", [active, unfiled])) == {
            active,
            unfiled,
        }
        assert await card_ids(client, f"/products?category_id={cat}&status=Active", [active]) == [active]
        assert await card_ids(client, f"/products?seller_id={seller}&status=Draft", [unfiled]) == [unfiled]
        assert await card_ids(client, f"/products?seller_id={seller.upper()}&status=Draft", [unfiled]) == [
            unfiled
        ]
        assert await card_ids(client, f"/sellers/{seller}/products?status=Active", [active]) == [active]
        assert await card_ids(client, f"/products?seller_id={seller}&status=Archived", []) == []

    @pytest.mark.parametrize("base", ["/products?seller_id={seller}", "/sellers/{seller}/products?"])
    async def test_pages_show_every_product_exactly_once_newest_first(self, client, base):
        seller = str(uuid.uuid4())
        made = [await create_product(client, seller_id=seller) for _ in range(7)]
        everything = await card_ids(client, base.format(seller=seller), made)
        pages, cursor = [], None
        while True:
            query = base.format(seller=seller) + "&limit=3" + (f"&cursor={cursor}" if cursor else "")
            response = await client.get(query)
            assert response.status_code == 200, response.text
            page = response.json()
            pages.append([c["product_id"] for c in page["items"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [pid for p in pages for pid in p] == everything == made[::-1]

    async def test_the_default_page_holds_20(self, client):
        seller = str(uuid.uuid4())
        made = [await create_product(client, seller_id=seller) for _ in range(21)]
        await card_ids(client, f"/sellers/{seller}/products?", made)
        page = (await client.get(f"/sellers/{seller}/products")).json()
        assert len(page["items"]) == 20 and page["next_cursor"] is not None

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=x", "limit"),
            ("limit=-1", "limit"),
            ("status=Deleted", "status"),
            ("status=active", "status"),
            ("category_id=clothing", "category_id"),
            ("seller_id=seller-1", "seller_id"),
            ("seller_id=%00", "seller_id"),
            ("cursor=garbage", "cursor"),
            ("cursor=%00", "cursor"),
            ("cursor=eyJ4IjoxfQ", "cursor"),  # base64 of {"x":1}
            ("cursor=" + "A" * 5000, "cursor"),
        ],
    )
    async def test_bad_query_parameters_are_422_naming_them(self, client, query, field):
        assert_problem(await client.get(f"/products?{query}"), 422, field)

    @pytest.mark.parametrize("query", ["limit=0", "limit=101", "status=Gone", "cursor=garbage"])
    async def test_bad_query_parameters_of_a_sellers_list_are_422(self, client, query):
        assert_problem(await client.get(f"/sellers/{uuid.uuid4()}/products?{query}"), 422)


# --- GET /products/{id}/price-history --------------------------------------------------------------


class TestPriceHistory:
    async def test_the_history_answers_the_products_version_as_its_etag(self, client):
        product_id = await create_product(client)
        await add_variant(client, product_id)
        read = await eventually(client, f"/products/{product_id}", 2)
        history = await eventually(client, f"/products/{product_id}/price-history", 2)
        assert history.headers["etag"] == read.headers["etag"] == '"2"'

    async def test_every_change_of_every_variant_newest_first(self, client):
        product_id = await create_product(client)
        first = await add_variant(client, product_id, base_price="10")
        second = await add_variant(client, product_id, base_price="20")
        changes = [(first, "12.5"), (second, "18"), (first, "11")]
        for variant_id, price in changes:
            await client.put(
                f"/products/{product_id}/variants/{variant_id}/price", json={"base_price": price}
            )
        history = (await eventually(client, f"/products/{product_id}/price-history", 6)).json()
        assert history["version"] == 6
        assert [
            (c["variant_id"], c["previous_price"], c["new_price"], c["currency"]) for c in history["items"]
        ] == [
            (first, "12.50", "11.00", "USD"),
            (second, "20.00", "18.00", "USD"),
            (first, "10.00", "12.50", "USD"),
        ]
        times = [c["changed_at"] for c in history["items"]]
        assert times == sorted(times, reverse=True)

    async def test_round_amounts_of_whole_unit_currencies_read_back_as_plain_digits(self, client):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, base_price=10000, currency="KRW")
        await client.put(f"/products/{product_id}/variants/{variant_id}/price", json={"base_price": "120000"})
        history = (await eventually(client, f"/products/{product_id}/price-history", 3)).json()
        assert [(c["previous_price"], c["new_price"]) for c in history["items"]] == [("10000", "120000")]

    async def test_a_product_without_price_changes_has_an_empty_history(self, client):
        product_id = await create_product(client)
        await add_variant(client, product_id)
        response = await eventually(client, f"/products/{product_id}/price-history", 2)
        assert response.json() == {"items": [], "next_cursor": None, "version": 2}

    async def test_pages_by_limit_and_cursor_to_the_whole_history(self, client):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, base_price="10")
        for price in ("11", "12", "13", "14", "15"):
            await client.put(
                f"/products/{product_id}/variants/{variant_id}/price", json={"base_price": price}
            )
        whole = (await eventually(client, f"/products/{product_id}/price-history", 7)).json()
        assert [c["new_price"] for c in whole["items"]] == ["15.00", "14.00", "13.00", "12.00", "11.00"]
        assert whole["next_cursor"] is None
        pages, cursor = [], None
        while True:
            query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = await client.get(f"/products/{product_id}/price-history?{httpx.QueryParams(query)}")
            assert page.status_code == 200, page.text
            assert page.json()["version"] == 7 and page.headers["etag"] == '"7"'
            pages.append([c["new_price"] for c in page.json()["items"]])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert pages == [["15.00", "14.00"], ["13.00", "12.00"], ["11.00"]]

    async def test_a_change_made_meanwhile_does_not_shift_the_next_page(self, client):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, base_price="10")
        for price in ("11", "12", "13"):
            await client.put(
                f"/products/{product_id}/variants/{variant_id}/price", json={"base_price": price}
            )
        await eventually(client, f"/products/{product_id}/price-history", 5)
        first = (await client.get(f"/products/{product_id}/price-history?limit=2")).json()
        await client.put(f"/products/{product_id}/variants/{variant_id}/price", json={"base_price": "14"})
        await eventually(client, f"/products/{product_id}/price-history", 6)
        query = httpx.QueryParams(limit=2, cursor=first["next_cursor"])
        second = (await client.get(f"/products/{product_id}/price-history?{query}")).json()
        assert [c["new_price"] for c in first["items"] + second["items"]] == ["13.00", "12.00", "11.00"]
        assert second["next_cursor"] is None and second["version"] == 6

    @pytest.mark.parametrize(
        "query",
        ["limit=0", "limit=101", "limit=x", "cursor=nope", "cursor=eyJ2IjowfQ", "cursor=e30", "cursor=%00"],
    )
    async def test_a_bad_limit_or_cursor_is_422(self, client, query):
        product_id = await create_product(client)
        await eventually(client, f"/products/{product_id}/price-history", 1)
        assert_problem(await client.get(f"/products/{product_id}/price-history?{query}"), 422)


# --- POST /categories and the category commands ----------------------------------------------------

BAD_CATEGORIES = [
    ({"name": OMIT}, "name"),
    ({"name": None}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": 7}, "name"),
    ({"attributes": "x"}, "attributes"),
    ({"attributes": [1]}, "attributes"),
    ({"level": 0}, "level"),
    ({"display_order": 1}, "display_order"),
    ({"parent_category_id": 5}, "parent_category_id"),
    ({"parent_category_id": str(uuid.uuid4())}, "parent_category_id"),
    ({"parent_category_id": "not-a-uuid"}, "parent_category_id"),
]


class TestCreateCategory:
    async def test_a_root_is_created_at_level_0(self, client):
        response = await client.post("/categories", json=category(attributes={"season": "all"}))
        category_id = assert_created(response, "category_id", 1)
        assert response.headers["location"] == f"/categories/{category_id}"
        node = await category_node(client, category_id, 1)
        assert node["level"] == 0 and node["parent_category_id"] is None
        assert node["is_active"] is True and node["display_order"] == 0

    async def test_levels_0_to_4_are_allowed_and_a_fifth_below_the_root_is_409(self, client):
        chain = await category_chain(client, [f"Level {n}" for n in range(5)])
        node = await category_node(client, chain[-1], 1)
        assert (node["level"], node["parent_category_id"]) == (4, chain[-2])
        assert node["breadcrumb"] == [f"Level {n}" for n in range(5)]
        response = await client.post("/categories", json=category(parent_category_id=chain[-1]))
        problem = assert_problem(response, 409)
        assert problem["type"].endswith("category-too-deep")

    async def test_a_child_of_an_inactive_parent_is_409(self, client):
        parent = await create_category(client)
        assert_accepted(await client.put(f"/categories/{parent}/deactivate"), 2)
        assert_problem(await client.post("/categories", json=category(parent_category_id=parent)), 409)

    async def test_a_name_of_100_characters_is_accepted(self, client):
        await create_category(client, name="n" * 100)

    @pytest.mark.parametrize(("change", "field"), BAD_CATEGORIES)
    async def test_invalid_category_is_422_naming_the_field(self, client, change, field):
        assert_problem(await client.post("/categories", json=category(**change)), 422, field)


class TestCategoryCommands:
    async def test_a_rename_and_new_attributes_are_shown(self, client):
        category_id = await create_category(client)
        assert_accepted(await client.put(f"/categories/{category_id}", json={"name": "Tops"}), 2)
        assert (await category_node(client, category_id, 2))["name"] == "Tops"
        assert_accepted(await client.put(f"/categories/{category_id}", json={"attributes": {"a": 1}}), 3)

    @pytest.mark.parametrize("body", [{}, {"name": "Same"}])
    async def test_a_change_to_the_same_values_keeps_the_version(self, client, body):
        category_id = await create_category(client, name="Same")
        assert_accepted(await client.put(f"/categories/{category_id}", json=body), 1)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": ""}, "name"),
            ({"name": None}, "name"),
            ({"name": "x" * 101}, "name"),
            ({"attributes": 3}, "attributes"),
            ({"parent_category_id": None}, "parent_category_id"),
        ],
    )
    async def test_an_invalid_change_is_422_naming_the_field(self, client, body, field):
        category_id = await create_category(client)
        assert_problem(await client.put(f"/categories/{category_id}", json=body), 422, field)

    async def test_reorder_moves_the_display_order(self, client):
        category_id = await create_category(client)
        assert_accepted(
            await client.put(f"/categories/{category_id}/reorder", json={"new_display_order": 7}), 2
        )
        assert (await category_node(client, category_id, 2))["display_order"] == 7
        assert_accepted(
            await client.put(f"/categories/{category_id}/reorder", json={"new_display_order": 7}), 2
        )

    @pytest.mark.parametrize(
        "body",
        [{}, {"new_display_order": -1}, {"new_display_order": "1"}, {"new_display_order": 1.5},
         {"new_display_order": 2**31}, {"new_display_order": None}, {"new_display_order": True},
         {"new_display_order": 1, "x": 1}],
    )  # fmt: skip
    async def test_an_invalid_reorder_is_422(self, client, body):
        category_id = await create_category(client)
        assert_problem(await client.put(f"/categories/{category_id}/reorder", json=body), 422)

    async def test_deactivating_twice_is_409(self, client):
        category_id = await create_category(client)
        assert_accepted(await client.put(f"/categories/{category_id}/deactivate"), 2)
        assert (await category_node(client, category_id, 2))["is_active"] is False
        problem = assert_problem(await client.put(f"/categories/{category_id}/deactivate"), 409)
        assert problem["type"].endswith("category-already-inactive")


class TestMoveCategory:
    async def test_the_subtree_follows_in_levels_breadcrumbs_the_tree_and_search(self, client):
        a, a1, a2 = await category_chain(client, ["Clothing", "Tops", "Tees"])
        b, b1 = await category_chain(client, ["Outlet", "Summer"])
        product = await create_product(client, category_id=a2)
        assert_accepted(await client.put(f"/categories/{a1}/parent", json={"parent_category_id": b1}), 2)
        # The level and the breadcrumb follow events of different categories: each arrives in its time.
        breadcrumb = ["Outlet", "Summer", "Tops", "Tees"]
        await until(client, f"/categories/{a2}", lambda n: n["breadcrumb"] == breadcrumb)
        node = (await until(client, f"/categories/{a2}", lambda n: n["level"] == 3)).json()
        assert (node["breadcrumb"], node["version"]) == (breadcrumb, 2)
        moved = await category_node(client, a1, 2)
        assert (moved["parent_category_id"], moved["level"]) == (b1, 2)
        tree = (await client.get("/categories")).json()
        assert find_node(find_node(tree["items"], b1)["children"], a2)["level"] == 3  # type: ignore[index]
        cards = await until(client, f"/products?category_id={b}", lambda page: len(page["items"]) == 1)
        assert [c["product_id"] for c in cards.json()["items"]] == [product]
        assert (await client.get(f"/products?category_id={a}")).json()["items"] == []
        assert_accepted(await client.put(f"/categories/{a1}/parent", json={"parent_category_id": None}), 3)
        await until(client, f"/categories/{a2}", lambda n: n["breadcrumb"] == ["Tops", "Tees"])
        root = (await until(client, f"/categories/{a2}", lambda n: n["level"] == 1)).json()
        assert root["breadcrumb"] == ["Tops", "Tees"]

    async def test_the_same_parent_keeps_the_version(self, client):
        a, a1 = await category_chain(client, ["A", "B"])
        assert_accepted(await client.put(f"/categories/{a1}/parent", json={"parent_category_id": a}), 1)
        assert_accepted(await client.put(f"/categories/{a}/parent", json={"parent_category_id": None}), 1)

    async def test_a_cycle_too_deep_a_subtree_and_an_inactive_parent_are_409(self, client):
        chain = await category_chain(client, ["L0", "L1", "L2", "L3"])
        other = await category_chain(client, ["M0", "M1"])
        for parent, kind in ((chain[0], "category-cycle"), (chain[2], "category-cycle"),
                             (chain[3], "category-too-deep")):  # fmt: skip
            moving = chain[0] if kind == "category-cycle" else other[0]
            response = await client.put(f"/categories/{moving}/parent", json={"parent_category_id": parent})
            assert assert_problem(response, 409)["type"].endswith(kind)
        await client.put(f"/categories/{other[1]}/deactivate")
        response = await client.put(f"/categories/{chain[1]}/parent", json={"parent_category_id": other[1]})
        assert assert_problem(response, 409)["type"].endswith("category-inactive")

    @pytest.mark.parametrize(
        ("body", "status"),
        [({}, 422), ({"parent_category_id": str(uuid.uuid4())}, 422), ({"parent_category_id": "nope"}, 422),
         ({"parent_category_id": 3}, 422), ({"parent_category_id": None, "x": 1}, 422)],
    )  # fmt: skip
    async def test_a_missing_or_malformed_parent_is_422_naming_the_field(self, client, body, status):
        category_id = await create_category(client)
        assert_problem(await client.put(f"/categories/{category_id}/parent", json=body), status)


class TestActivateCategory:
    async def test_activation_under_an_active_parent_and_twice_409(self, client):
        root, child = await category_chain(client, ["Root", "Child"])
        await client.put(f"/categories/{child}/deactivate")
        await client.put(f"/categories/{root}/deactivate")
        problem = assert_problem(await client.put(f"/categories/{child}/activate"), 409)
        assert problem["type"].endswith("category-inactive")
        assert_accepted(await client.put(f"/categories/{root}/activate"), 3)
        assert_accepted(await client.put(f"/categories/{child}/activate"), 3)
        assert (await category_node(client, child, 3))["is_active"] is True
        problem = assert_problem(await client.put(f"/categories/{child}/activate"), 409)
        assert problem["type"].endswith("category-already-active")


# --- GET /categories, GET /categories/{id} ---------------------------------------------------------


class TestCategoryTree:
    async def test_children_are_nested_and_ordered_by_display_order_then_name(self, client):
        root = await create_category(client)
        kids = {name: await create_category(client, name=name, parent_category_id=root) for name in "BACD"}
        grandchild = await create_category(client, name="Deep", parent_category_id=kids["A"])
        for name, order in (("B", 1), ("D", 1), ("C", 2)):
            await client.put(f"/categories/{kids[name]}/reorder", json={"new_display_order": order})

        def ordered(tree: Any) -> bool:
            node = find_node(tree["items"], root)
            return node is not None and [c["name"] for c in node["children"]] == ["A", "B", "D", "C"]

        tree = (await until(client, "/categories", ordered)).json()
        node = find_node(tree["items"], root)
        assert node is not None and node["level"] == 0
        first = node["children"][0]
        assert (first["category_id"], first["level"], first["display_order"]) == (kids["A"], 1, 0)
        assert [(c["category_id"], c["level"], c["children"]) for c in first["children"]] == [
            (grandchild, 2, [])
        ]
        assert set(first) == {"category_id", "name", "level", "is_active", "display_order", "children"}

    async def test_an_inactive_category_and_its_subtree_show_only_with_include_inactive(self, client):
        root, child, grandchild = await category_chain(client, ["Root", "Child", "Grandchild"])
        await client.put(f"/categories/{child}/deactivate")

        def hidden(tree: Any) -> bool:
            node = find_node(tree["items"], root)
            return node is not None and node["children"] == []

        await until(client, "/categories", hidden)
        tree = (await client.get("/categories?include_inactive=true")).json()
        shown = find_node(tree["items"], child)
        assert shown is not None and shown["is_active"] is False
        assert [c["category_id"] for c in shown["children"]] == [grandchild]

    async def test_an_inactive_root_hides_its_tree(self, client):
        root, child = await category_chain(client, ["Root", "Child"])
        await until(client, "/categories", lambda tree: find_node(tree["items"], child) is not None)
        assert (await client.put(f"/categories/{root}/deactivate")).status_code == 200
        await until(client, "/categories", lambda tree: find_node(tree["items"], child) is None)
        assert find_node((await client.get("/categories?include_inactive=true")).json()["items"], child)


class TestCategoryNode:
    async def test_every_field_of_a_category(self, client):
        root, child = await category_chain(client, ["Clothing", "Tops"])
        node = await category_node(client, child, 1)
        assert node == {
            "category_id": child,
            "name": "Tops",
            "parent_category_id": root,
            "level": 1,
            "is_active": True,
            "display_order": 0,
            "breadcrumb": ["Clothing", "Tops"],
            "product_count": 0,
            "version": 1,
        }

    async def test_the_breadcrumb_follows_a_rename_of_the_root(self, client):
        root, _, leaf = await category_chain(client, ["Clothing", "Tops", "T-shirts"])
        await category_node(client, leaf, 1)
        assert_accepted(await client.put(f"/categories/{root}", json={"name": "Apparel"}), 2)
        response = await until(client, f"/categories/{leaf}", lambda node: node["breadcrumb"][0] == "Apparel")
        assert response.json()["breadcrumb"] == ["Apparel", "Tops", "T-shirts"]
        assert response.json()["version"] == 1

    async def test_product_count_counts_products_filed_directly_until_archived(self, client):
        parent, child = await category_chain(client, ["Clothing", "Tops"])
        archived, *_ = await product_in(client, "Discontinued", category_id=parent)
        await create_product(client, category_id=parent)
        await create_product(client, category_id=child)
        await until(client, f"/categories/{parent}", lambda node: node["product_count"] == 2)
        await until(client, f"/categories/{child}", lambda node: node["product_count"] == 1)
        await move(client, archived, "archive")
        await until(client, f"/categories/{parent}", lambda node: node["product_count"] == 1)


# --- the new user's story --------------------------------------------------------------------------


class TestNewUserStory:
    async def test_a_seller_lists_prices_sells_and_retires_products_and_the_reads_catch_up(self, client):
        # A three-level category tree.
        clothing, tops, tees = await category_chain(client, ["Clothing", "Tops", "T-shirts"])
        seller = str(uuid.uuid4())

        # Three products with variants, tier prices and images, filed in the leaf.
        products = []
        for n in range(3):
            product_id = await create_product(client, **full_product(seller_id=seller, category_id=tees))
            small = await add_variant(client, product_id, base_price=f"{20 + n}.99", attributes={"size": "S"})
            large = await add_variant(client, product_id, base_price=24.5 + n, attributes={"size": "L"})
            tier = f"/products/{product_id}/variants/{large}/tier-price"
            assert_accepted(await client.put(tier, json={"tier": "Gold", "price": "19.99"}), 4)
            await add_image(client, product_id)
            await add_image(client, product_id, is_primary=True)
            products.append((product_id, small, large))
        first, small, large = products[0]

        # Price changes: a cut and a raise.
        assert_accepted(
            await client.put(f"/products/{first}/variants/{small}/price", json={"base_price": 19.9}), 7
        )
        assert_accepted(
            await client.put(f"/products/{first}/variants/{large}/price", json={"base_price": "26"}), 8
        )

        # The lifecycle: one activated, one activated and discontinued, one all the way to archived.
        await move(client, products[0][0], "activate")
        await move(client, products[1][0], "activate", "discontinue")
        await move(client, products[2][0], "activate", "discontinue", "archive")

        shown = await detail(client, first, 9)
        assert shown["status"] == "Active"
        assert [(v["base_price"], v["tier_prices"]) for v in shown["variants"]] == [
            ("19.90", {}),
            ("26.00", {"Gold": "19.99"}),
        ]
        assert [i["is_primary"] for i in shown["images"]] == [False, True]
        listed = await card(client, seller, first, 9)
        assert (listed["min_price"], listed["max_price"], listed["variant_count"]) == ("19.90", "26.00", 2)
        assert listed["primary_image_url"] == shown["images"][1]["url"]

        # Listing by category and by seller, a page at a time.
        ids = [p[0] for p in products]
        assert await card_ids(client, f"/products?category_id={tees}", ids) == ids[::-1]
        page_one = (await client.get(f"/sellers/{seller}/products?limit=2")).json()
        page_two = (
            await client.get(f"/sellers/{seller}/products?limit=2&cursor={page_one['next_cursor']}")
        ).json()
        assert [c["product_id"] for c in page_one["items"] + page_two["items"]] == ids[::-1]
        assert page_two["next_cursor"] is None
        statuses = await until(
            client,
            f"/products?seller_id={seller}&limit=100",
            lambda page: [c["status"] for c in page["items"]] == ["Archived", "Discontinued", "Active"],
        )
        assert len(statuses.json()["items"]) == 3

        # Price history, newest first.
        history = (await eventually(client, f"/products/{first}/price-history", 9)).json()
        assert [(c["variant_id"], c["previous_price"], c["new_price"]) for c in history["items"]] == [
            (large, "24.50", "26.00"),
            (small, "20.99", "19.90"),
        ]

        # Renaming the root shows in every breadcrumb below it; the archived product no longer counts.
        assert_accepted(await client.put(f"/categories/{clothing}", json={"name": "Apparel"}), 2)
        leaf = await until(
            client,
            f"/categories/{tees}",
            lambda n: n["breadcrumb"][0] == "Apparel" and n["product_count"] == 2,
        )
        assert leaf.json()["breadcrumb"] == ["Apparel", "Tops", "T-shirts"]
        assert (await category_node(client, tops, 1))["breadcrumb"] == ["Apparel", "Tops"]

        # The archived product refuses further changes.
        assert_problem(await client.put(f"/products/{products[2][0]}/details", json={"title": "Back"}), 409)


# --- SPEC §10: product corrections -----------------------------------------------------------------


class TestChangeProductCategory:
    async def test_moves_the_product_and_both_categories_counts(self, client):
        old, new = await create_category(client), await create_category(client)
        seller = str(uuid.uuid4())
        product_id = await create_product(client, category_id=old, seller_id=seller)
        assert_accepted(await client.put(f"/products/{product_id}/category", json={"category_id": new}), 2)
        assert (await detail(client, product_id, 2))["category_id"] == new
        assert (await card(client, seller, product_id, 2))["category_id"] == new
        assert (await category_node(client, new, 1))["product_count"] == 1
        assert (
            await until(client, f"/categories/{old}", lambda b: b["product_count"] == 0)
        ).status_code == 200
        await card_ids(client, f"/products?category_id={new}", [product_id])
        assert_accepted(await client.put(f"/products/{product_id}/category", json={"category_id": None}), 3)
        assert (await detail(client, product_id, 3))["category_id"] is None

    async def test_an_unknown_category_is_422_and_an_inactive_one_409(self, client):
        product_id = await create_product(client)
        problem = assert_problem(
            await client.put(f"/products/{product_id}/category", json={"category_id": str(uuid.uuid4())}), 422
        )
        assert problem["errors"][0]["field"] == "category_id"
        inactive = await create_category(client)
        assert_accepted(await client.put(f"/categories/{inactive}/deactivate"), 2)
        problem = assert_problem(
            await client.put(f"/products/{product_id}/category", json={"category_id": inactive}), 409
        )
        assert problem["type"].endswith("category-inactive")

    @pytest.mark.parametrize("body", [{}, {"category_id": 7}, {"category_id": "x", "title": "t"}])
    async def test_a_body_without_a_category_reference_is_422(self, client, body):
        product_id = await create_product(client)
        assert_problem(await client.put(f"/products/{product_id}/category", json=body), 422)

    async def test_its_own_category_changes_nothing(self, client):
        cat = await create_category(client)
        product_id = await create_product(client, category_id=cat)
        assert_accepted(await client.put(f"/products/{product_id}/category", json={"category_id": cat}), 1)


class TestChangeProductVisibility:
    async def test_the_detail_follows_and_the_tier_defaults_to_silver(self, client):
        product_id = await create_product(client)
        body = {"visibility": "Tier_Restricted", "restricted_to_tier": "Platinum"}
        assert_accepted(await client.put(f"/products/{product_id}/visibility", json=body), 2)
        shown = await detail(client, product_id, 2)
        assert (shown["visibility"], shown["restricted_to_tier"]) == ("Tier_Restricted", "Platinum")
        assert_accepted(
            await client.put(f"/products/{product_id}/visibility", json={"visibility": "Unlisted"}), 3
        )
        shown = await detail(client, product_id, 3)
        assert (shown["visibility"], shown["restricted_to_tier"]) == ("Unlisted", "Silver")
        assert_accepted(
            await client.put(f"/products/{product_id}/visibility", json={"visibility": "Unlisted"}), 3
        )

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"visibility": "Private"},
            {"visibility": "Public", "restricted_to_tier": "Standard"},
            {"visibility": None},
        ],
    )
    async def test_unknown_values_are_422(self, client, body):
        product_id = await create_product(client)
        assert_problem(await client.put(f"/products/{product_id}/visibility", json=body), 422)


class TestUpdateVariant:
    async def test_given_fields_change_others_stay(self, client):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id, attributes={"size": "M"}, weight_value="0.2")
        path = f"/products/{product_id}/variants/{variant_id}"
        assert_accepted(await client.put(path, json={"length": "30.5", "dimension_unit": "in"}), 3)
        (shown,) = (await detail(client, product_id, 3))["variants"]
        assert (shown["length"], shown["dimension_unit"], shown["weight_value"]) == ("30.5", "in", "0.2")
        assert shown["attributes"] == {"size": "M"} and shown["base_price"] == "19.99"
        assert_accepted(await client.put(path, json={"weight_value": None}), 4)
        assert (await detail(client, product_id, 4))["variants"][0]["weight_value"] is None

    @pytest.mark.parametrize(
        "body",
        [{"weight_value": "-1"}, {"weight_unit": "stone"}, {"height": "0.1234567"}, {"attributes": ["a"]},
         {"base_price": "5"}, {"variant_sku": "NEW-SKU"}, {"dimension_unit": None}],
    )  # fmt: skip
    async def test_invalid_values_and_other_fields_are_422(self, client, body):
        product_id = await create_product(client)
        variant_id = await add_variant(client, product_id)
        assert_problem(await client.put(f"/products/{product_id}/variants/{variant_id}", json=body), 422)


class TestVariantActivation:
    async def test_an_inactive_variant_leaves_the_card_prices_and_comes_back(self, client):
        seller = str(uuid.uuid4())
        product_id = await create_product(client, seller_id=seller)
        cheap = await add_variant(client, product_id, base_price="10.00")
        await add_variant(client, product_id, base_price="20.00")
        await move(client, product_id, "activate")
        assert_accepted(await client.put(f"/products/{product_id}/variants/{cheap}/deactivate"), 5)
        shown = await card(client, seller, product_id, 5)
        assert (shown["min_price"], shown["max_price"], shown["variant_count"]) == ("20.00", "20.00", 1)
        assert not next(
            v for v in (await detail(client, product_id, 5))["variants"] if v["variant_id"] == cheap
        )["is_active"]
        problem = assert_problem(await client.put(f"/products/{product_id}/variants/{cheap}/deactivate"), 409)
        assert problem["type"].endswith("variant-already-inactive")
        assert_accepted(await client.put(f"/products/{product_id}/variants/{cheap}/activate"), 6)
        shown = await card(client, seller, product_id, 6)
        assert (shown["min_price"], shown["variant_count"]) == ("10.00", 2)
        problem = assert_problem(await client.put(f"/products/{product_id}/variants/{cheap}/activate"), 409)
        assert problem["type"].endswith("variant-already-active")

    async def test_an_active_product_keeps_one_active_variant(self, client):
        product_id, variant_id, _, version = await product_in(client, "Active")
        problem = assert_problem(
            await client.put(f"/products/{product_id}/variants/{variant_id}/deactivate"), 409
        )
        assert problem["type"].endswith("active-variant-required")
        assert (await detail(client, product_id, version))["variants"][0]["is_active"] is True

    async def test_a_draft_needs_an_active_variant_to_be_activated(self, client):
        product_id, variant_id, _, _ = await product_in(client, "Draft")
        assert_accepted(await client.put(f"/products/{product_id}/variants/{variant_id}/deactivate"), 4)
        problem = assert_problem(await client.put(f"/products/{product_id}/activate"), 409)
        assert problem["type"].endswith("variant-required")

    async def test_an_unknown_variant_is_404(self, client):
        product_id = await create_product(client)
        for action in ("deactivate", "activate"):
            assert_problem(await client.put(f"/products/{product_id}/variants/{uuid.uuid4()}/{action}"), 404)


class TestImages:
    async def test_the_primary_moves_and_the_primary_already_changes_nothing(self, client):
        seller = str(uuid.uuid4())
        product_id = await create_product(client, seller_id=seller)
        first = await add_image(client, product_id)
        second = await add_image(client, product_id, url="https://img.example.com/second.jpg")
        assert_accepted(await client.put(f"/products/{product_id}/images/{second}/primary"), 4)
        images = (await detail(client, product_id, 4))["images"]
        assert [(i["image_id"], i["is_primary"]) for i in images] == [(first, False), (second, True)]
        assert (await card(client, seller, product_id, 4))[
            "primary_image_url"
        ] == "https://img.example.com/second.jpg"
        assert_accepted(await client.put(f"/products/{product_id}/images/{second}/primary"), 4)
        assert_problem(await client.put(f"/products/{product_id}/images/{uuid.uuid4()}/primary"), 404)

    async def test_a_new_order_orders_the_detail_and_keeps_the_primary(self, client):
        seller = str(uuid.uuid4())
        product_id = await create_product(client, seller_id=seller)
        ids = [await add_image(client, product_id, url=f"https://img.example.com/{n}.jpg") for n in range(3)]
        order = [ids[2], ids[0], ids[1]]
        assert_accepted(
            await client.put(f"/products/{product_id}/images/order", json={"image_ids": order}), 5
        )
        images = (await detail(client, product_id, 5))["images"]
        assert [(i["image_id"], i["display_order"]) for i in images] == [
            (ids[2], 0),
            (ids[0], 1),
            (ids[1], 2),
        ]
        assert (await card(client, seller, product_id, 5))[
            "primary_image_url"
        ] == "https://img.example.com/0.jpg"
        assert_accepted(
            await client.put(f"/products/{product_id}/images/order", json={"image_ids": order}), 5
        )

    @pytest.mark.parametrize("pick", [lambda ids: ids[:1], lambda ids: [*ids, ids[0]], lambda ids: [ids[0], str(uuid.uuid4())],
                                      lambda ids: [], lambda ids: None, lambda ids: ",".join(ids)])  # fmt: skip
    async def test_every_image_exactly_once_else_422(self, client, pick):
        product_id = await create_product(client)
        ids = [await add_image(client, product_id) for _ in range(2)]
        response = await client.put(f"/products/{product_id}/images/order", json={"image_ids": pick(ids)})
        assert_problem(response, 422)


# --- malformed input never gives a 500 -------------------------------------------------------------

NO_BODY_ROUTES = [
    ("DELETE", "/products/{product_id}/images/{unknown}"),
    ("PUT", "/products/{archived}/activate"),
    ("PUT", "/products/{archived}/discontinue"),
    ("PUT", "/products/{archived}/archive"),
    ("PUT", "/categories/{inactive}/deactivate"),
]


@pytest.fixture(scope="module")
async def refusing(client) -> dict[str, str]:
    """Ids for routes without a body that refuse whatever they are sent."""
    archived, *_ = await product_in(client, "Archived")
    inactive = await create_category(client)
    await client.put(f"/categories/{inactive}/deactivate")
    return {
        "product_id": await create_product(client),
        "archived": archived,
        "inactive": inactive,
        "unknown": str(uuid.uuid4()),
    }


class TestMalformedInputNeverYields500:
    @pytest.mark.parametrize("body", WHOLE_BODIES, ids=lambda b: b[:12].decode())
    @pytest.mark.parametrize(("method", "path"), NO_BODY_ROUTES)
    async def test_a_body_sent_to_a_command_its_aggregate_refuses_is_a_problem(
        self, client, refusing, method, path, body
    ):
        response = await client.request(
            method, path.format(**refusing), content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code in {404, 409}, response.text
        assert_problem(response, response.status_code)

    @pytest.mark.parametrize(
        "query",
        ["limit=1e400", f"limit={10**40}", "limit=%00", "status=%00", "category_id=%00", "cursor=%ff%fe",
         "include_inactive=maybe", "limit=1&limit=2"],
    )  # fmt: skip
    async def test_hostile_queries_are_answered_below_500(self, client, query):
        for path in ("/products", f"/sellers/{uuid.uuid4()}/products", "/categories"):
            response = await client.get(f"{path}?{query}")
            assert response.status_code < 500, response.text
            if response.status_code >= 400:
                assert_problem(response, response.status_code)
