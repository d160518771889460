"""Finding products over HTTP (SPEC §9): `GET /products` with q, filters, sorts and facets, and
`GET /products/by-slug/{slug}`. Every test lists its own seller's products, so tests sharing the module's
database never see each other's cards."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from litestar.testing import AsyncTestClient

from contexts.catalogue.search import BANDS
from tests.apps import created, eventually, until
from tests.catalogue.test_api import category_chain, move, product, unique
from tests.problems import assert_accepted, assert_problem

pytestmark = pytest.mark.anyio


async def listed(
    client: AsyncTestClient,
    seller: str,
    *,
    prices: tuple[str, ...] = (),
    currency: str = "USD",
    **fields: Any,
) -> str:
    """A product of `seller` with a variant per price, shown in the seller's cards with all of them."""
    product_id = await created(client, "/products", product(seller_id=seller, **fields), "product_id")
    for price in prices:
        body = {"variant_sku": unique("V"), "base_price": price, "currency": currency}
        await created(client, f"/products/{product_id}/variants", body, "variant_id")
    await eventually(client, f"/products/{product_id}", 1 + len(prices))
    return product_id


def query(seller: str, **params: Any) -> str:
    pairs = [("seller_id", seller)]
    for name, value in params.items():
        for one in value if isinstance(value, list) else [value]:
            pairs.append((name.replace("__", "."), one))
    return "/products?" + urlencode(pairs)


async def shown(client: AsyncTestClient, seller: str, expected: int, **params: Any) -> list[str]:
    """The ids of the seller's cards matching `params`, in order, once the cards show `expected` of them."""
    page = await until(
        client, query(seller, limit=100, **params), lambda body: len(body["items"]) == expected
    )
    return [card["product_id"] for card in page.json()["items"]]


async def every_page(client: AsyncTestClient, path: str, between: Any = None) -> list[dict[str, Any]]:
    """Every card of a listing, following `next_cursor`, awaiting `between()` after each page."""
    cards, cursor = [], None
    while True:
        response = await client.get(path + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.text
        page = response.json()
        cards += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return cards
        if between is not None:
            await between()


class TestFullTextSearch:
    async def test_a_title_hit_outranks_a_brand_and_a_description_hit(self, client):
        seller = str(uuid.uuid4())
        in_description = await listed(client, seller, title="Plain tee", description="Made of merino wool")
        in_title = await listed(client, seller, title="Merino crew", description="Soft and warm")
        in_brand = await listed(client, seller, title="Crew socks", brand="Merino Mills")
        await listed(client, seller, title="Cotton tee", description="Nothing of the kind")
        assert await shown(client, seller, 3, q="merino") == [in_title, in_brand, in_description]

    async def test_stemming_finds_other_forms_of_a_word(self, client):
        seller = str(uuid.uuid4())
        shirt = await listed(client, seller, title="Linen shirt")
        assert await shown(client, seller, 1, q="shirts") == [shirt]

    async def test_web_search_syntax_phrases_exclusions_and_or(self, client):
        seller = str(uuid.uuid4())
        running_shoe = await listed(client, seller, title="Running shoe", description="For the road")
        shoe_running = await listed(client, seller, title="Shoe for running", description="Trail")
        hat = await listed(client, seller, title="Wool hat")
        assert await shown(client, seller, 1, q='"running shoe"') == [running_shoe]
        assert await shown(client, seller, 1, q="shoe -road") == [shoe_running]
        assert sorted(await shown(client, seller, 2, q="hat or road")) == sorted([hat, running_shoe])

    async def test_a_sku_or_variant_sku_typed_whole_finds_its_product(self, client):
        seller = str(uuid.uuid4())
        sku = unique("TEE-BLK")
        own = await listed(client, seller, sku=sku, title="Tee")
        other = await listed(client, seller, sku=sku + "X", title="Tee")
        assert await shown(client, seller, 1, q=sku.lower()) == [own]
        variant_sku = unique("SOCK-RED")
        await created(
            client,
            f"/products/{other}/variants",
            {"variant_sku": variant_sku, "base_price": "5"},
            "variant_id",
        )
        assert await shown(client, seller, 1, q=variant_sku) == [other]

    async def test_a_query_of_stop_words_alone_finds_nothing(self, client):
        seller = str(uuid.uuid4())
        await listed(client, seller, title="The tee")
        response = await client.get(query(seller, q="the"))
        assert response.status_code == 200 and response.json()["items"] == []


class TestFilters:
    async def test_a_category_with_or_without_its_subcategories(self, client):
        seller = str(uuid.uuid4())
        root, child, grandchild = await category_chain(client, ["Clothing", "Tops", "Tees"])
        other = (await category_chain(client, ["Garden"]))[0]
        in_root = await listed(client, seller, category_id=root)
        in_grandchild = await listed(client, seller, category_id=grandchild)
        await listed(client, seller, category_id=other)
        assert sorted(await shown(client, seller, 2, category_id=root)) == sorted([in_root, in_grandchild])
        assert await shown(client, seller, 1, category_id=child) == [in_grandchild]
        assert await shown(client, seller, 1, category_id=root, include_subcategories="false") == [in_root]

    async def test_brands_repeatable_and_exact(self, client):
        seller = str(uuid.uuid4())
        north = await listed(client, seller, brand="Northwind")
        acme = await listed(client, seller, brand="Acme")
        await listed(client, seller, brand="Northwind Traders")
        assert await shown(client, seller, 1, brand="Northwind") == [north]
        assert sorted(await shown(client, seller, 2, brand=["Northwind", "Acme"])) == sorted([north, acme])

    async def test_a_price_range_in_a_currency_matches_any_active_variant_in_it(self, client):
        seller = str(uuid.uuid4())
        cheap_and_dear = await listed(client, seller, prices=("5.00", "60.00"))
        middle = await listed(client, seller, prices=("25.00",))
        await listed(client, seller, prices=("30",), currency="EUR")
        await listed(client, seller)
        assert await shown(client, seller, 1, currency="USD", price_min="20", price_max="30") == [middle]
        both = await shown(client, seller, 2, currency="USD", price_min="25", price_max="60")
        assert sorted(both) == sorted([cheap_and_dear, middle])
        assert await shown(client, seller, 1, currency="USD", price_max="5") == [cheap_and_dear]
        assert len(await shown(client, seller, 2, currency="USD")) == 2

    async def test_attributes_by_containment_alternatives_within_a_key(self, client):
        seller = str(uuid.uuid4())
        navy_m = await listed(client, seller, attributes={"colour": "navy", "size": "M", "pockets": 2})
        black_m = await listed(client, seller, attributes={"colour": "black", "size": "M"})
        navy_l = await listed(client, seller, attributes={"colour": "navy", "size": "L"})
        assert sorted(await shown(client, seller, 2, attr__colour="navy")) == sorted([navy_m, navy_l])
        assert await shown(client, seller, 1, attr__colour="navy", attr__size="M") == [navy_m]
        either = await shown(client, seller, 2, attr__colour=["navy", "black"], attr__size="M")
        assert sorted(either) == sorted([navy_m, black_m])
        assert await shown(client, seller, 1, attr__pockets="2") == [navy_m]


PRICES = ["30.00", "9.99", "120.00", "9.99", "45.50", "75.00", "18.00", "5.00"]


def in_order(sort: str, cards: list[dict[str, Any]]) -> list[str]:
    """The ids of `cards` in the order `sort` says, computed here."""
    lowest = lambda c: Decimal(c["min_price"]) if c["min_price"] is not None else None  # noqa: E731
    priced = [c for c in cards if c["min_price"] is not None]
    unpriced = [c for c in cards if c["min_price"] is None]
    if sort == "newest":
        ordered = sorted(cards, key=lambda c: (c["created_at"], c["product_id"]), reverse=True)
    elif sort == "price_asc":
        ordered = sorted(priced, key=lambda c: (lowest(c), c["product_id"])) + sorted(
            unpriced, key=lambda c: c["product_id"]
        )
    elif sort == "price_desc":
        ordered = sorted(priced, key=lambda c: (lowest(c), c["product_id"]), reverse=True) + sorted(
            unpriced, key=lambda c: c["product_id"], reverse=True
        )
    else:
        ordered = sorted(cards, key=lambda c: (c["title"].encode(), c["product_id"]))
    return [c["product_id"] for c in ordered]


class TestSortsAndPaging:
    @pytest.mark.parametrize("sort", ["newest", "price_asc", "price_desc", "title", "relevance"])
    async def test_pages_show_each_card_once_in_order_while_products_are_added(self, client, sort):
        seller = str(uuid.uuid4())
        before = [
            await listed(client, seller, title=f"Tee {'ZAYCB'[n % 5]}{n}", prices=(price,) if n != 3 else ())
            for n, price in enumerate(PRICES)
        ]
        await shown(client, seller, len(before))
        params = {"q": "tee"} if sort == "relevance" else {}
        added: list[str] = []

        async def add_some() -> None:
            added.append(await listed(client, seller, title="Tee A0", prices=("9.99",)))

        path = query(seller, sort=sort, limit=3, **params)
        cards = await every_page(client, path, add_some)
        ids = [c["product_id"] for c in cards]
        assert len(ids) == len(set(ids)), "a card repeated"
        assert set(before) <= set(ids), "a card skipped"
        assert set(ids) <= set(before) | set(added)
        old = [c for c in cards if c["product_id"] in before]
        if sort != "relevance":
            assert [c["product_id"] for c in old] == in_order(sort, old)

    async def test_relevance_is_the_default_with_q_and_needs_q(self, client):
        seller = str(uuid.uuid4())
        weak = await listed(client, seller, title="Plain", description="a tee")
        strong = await listed(client, seller, title="Tee")
        assert await shown(client, seller, 2, q="tee") == [strong, weak]
        assert await shown(client, seller, 2, q="tee", sort="newest") == [strong, weak]
        assert_problem(await client.get(query(seller, sort="relevance")), 422, "sort")

    async def test_a_cursor_of_another_sort_is_422(self, client):
        seller = str(uuid.uuid4())
        for _ in range(3):
            await listed(client, seller, prices=("10",))
        page = (await until(client, query(seller, sort="title", limit=1), lambda b: b["next_cursor"])).json()
        bad = await client.get(query(seller, sort="price_asc", limit=1, cursor=page["next_cursor"]))
        assert_problem(bad, 422, "cursor")


def band_of(price: Decimal) -> int:
    return max(n for n, low in enumerate(BANDS) if price >= low)


class TestFacets:
    async def test_counts_equal_a_count_of_the_whole_result_set(self, client):
        seller = str(uuid.uuid4())
        tops, shoes = await category_chain(client, ["Tops"]), await category_chain(client, ["Shoes"])
        made: dict[str, tuple[str | None, str, list[str]]] = {}
        plan = [
            ("Northwind", tops[0], ["5.00", "12.00"]),
            ("Northwind", shoes[0], ["99.99"]),
            ("Acme", tops[0], ["24.99", "25.00"]),
            (None, None, ["1500"]),
            ("Acme", shoes[0], []),
            ("Zeta", tops[0], ["10.00"]),
        ]
        for brand, category_id, prices in plan:
            product_id = await listed(
                client, seller, brand=brand, category_id=category_id, prices=tuple(prices), title="Tee"
            )
            made[product_id] = (brand, category_id or "", prices)
        await shown(client, seller, len(plan))
        body = (
            await client.get(query(seller, limit=2, facets="brand,category,price", currency="USD", q="tee"))
        ).json()
        assert len(body["items"]) == 2 and body["next_cursor"] is not None
        # Brute force: the cards priced in USD (the currency filter), counted here.
        hits = {pid: m for pid, m in made.items() if m[2]}
        brands: dict[str, int] = {}
        categories: dict[str, int] = {}
        bands: dict[int, int] = {}
        for brand, category_id, prices in hits.values():
            if brand:
                brands[brand] = brands.get(brand, 0) + 1
            if category_id:
                categories[category_id] = categories.get(category_id, 0) + 1
            for band in {band_of(Decimal(p)) for p in prices}:
                bands[band] = bands.get(band, 0) + 1
        facets = body["facets"]
        assert {f["value"]: f["count"] for f in facets["brand"]} == brands
        assert [f["count"] for f in facets["brand"]] == sorted(brands.values(), reverse=True)
        assert {f["value"]: f["count"] for f in facets["category"]} == categories
        assert [f["count"] for f in facets["price"]] == [bands.get(n, 0) for n in range(len(BANDS))]
        assert facets["price"][1] == {
            "value": "10-25",
            "price_min": "10.00",
            "price_max": "24.99",
            "count": 3,
        }
        assert facets["price"][-1]["price_max"] is None

    async def test_a_band_fed_back_as_a_range_finds_its_count(self, client):
        seller = str(uuid.uuid4())
        for price in ("10.00", "24.99", "25.00"):
            await listed(client, seller, prices=(price,))
        await shown(client, seller, 3)
        facets = (await client.get(query(seller, facets="price", currency="USD"))).json()["facets"]
        band = facets["price"][1]
        ranged = await client.get(
            query(seller, currency="USD", price_min=band["price_min"], price_max=band["price_max"])
        )
        assert len(ranged.json()["items"]) == band["count"] == 2

    async def test_only_when_asked(self, client):
        seller = str(uuid.uuid4())
        body = (await client.get(query(seller))).json()
        assert set(body) == {"items", "next_cursor"}
        body = (await client.get(query(seller, facets="brand"))).json()
        assert body["facets"] == {"brand": []}


class TestBySlug:
    async def test_found_in_any_case_with_the_same_body_and_etag_as_by_id(self, client):
        slug = f"classic-tee-{uuid.uuid4().hex[:8]}"
        product_id = await listed(client, str(uuid.uuid4()), slug=slug)
        by_id = await client.get(f"/products/{product_id}")
        by_slug = await client.get(f"/products/by-slug/{slug.upper()}")
        assert by_slug.status_code == 200
        assert by_slug.json() == by_id.json()
        assert by_slug.headers["etag"] == by_id.headers["etag"] == '"1"'

    @pytest.mark.parametrize("slug", ["no-such-slug-at-all", "Not a slug", "a" * 201, "%00"])
    async def test_unknown_or_malformed_is_404(self, client, slug):
        assert_problem(await client.get(f"/products/by-slug/{slug}"), 404)

    async def test_an_archived_product_releases_its_slug(self, client):
        slug = f"retired-tee-{uuid.uuid4().hex[:8]}"
        old, _ = await listed(client, str(uuid.uuid4()), slug=slug, prices=("5",)), None
        await move(client, old, "activate", "discontinue")
        assert_problem(await client.post("/products", json=product(slug=slug)), 409)
        await move(client, old, "archive")
        await until(client, f"/products/{old}", lambda body: body["status"] == "Archived")
        assert_problem(await client.get(f"/products/by-slug/{slug}"), 404)
        new = await listed(client, str(uuid.uuid4()), slug=slug)
        assert (await client.get(f"/products/by-slug/{slug}")).json()["product_id"] == new

    async def test_a_taken_slug_is_409_on_create_and_on_details(self, client):
        slug = f"taken-tee-{uuid.uuid4().hex[:8]}"
        await listed(client, str(uuid.uuid4()), slug=slug)
        problem = assert_problem(await client.post("/products", json=product(slug=slug)), 409)
        assert problem["type"].endswith("slug-taken")
        other = await listed(client, str(uuid.uuid4()))
        problem = assert_problem(await client.put(f"/products/{other}/details", json={"slug": slug}), 409)
        assert problem["type"].endswith("slug-taken")
        assert_accepted(await client.put(f"/products/{other}/details", json={"slug": slug + "-2"}), 2)

    async def test_of_concurrent_creates_with_one_slug_exactly_one_wins(self, client):
        slug = f"rush-tee-{uuid.uuid4().hex[:8]}"
        answers = await asyncio.gather(*(client.post("/products", json=product(slug=slug)) for _ in range(8)))
        assert sorted(a.status_code for a in answers) == [201] + [409] * 7


def cursor_of(sort: str, key: str) -> str:
    raw = json.dumps({"s": sort, "k": key, "id": str(uuid.uuid4())}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_SEARCHES = [
    ("q=", "q"),
    ("q=%20%20", "q"),
    ("q=" + "x" * 201, "q"),
    ("q=a%00b", "q"),
    ("sort=cheapest", "sort"),
    ("sort=relevance", "sort"),
    ("price_min=10", "currency"),
    ("facets=price", "currency"),
    ("currency=XXX", "currency"),
    ("currency=USD&price_min=abc", "price_min"),
    ("currency=USD&price_min=-1", "price_min"),
    ("currency=USD&price_max=1.999", "price_max"),
    ("currency=JPY&price_max=10.5", "price_max"),
    ("currency=USD&price_min=1e3", "price_min"),
    ("currency=USD&price_min=20&price_max=10", "price_max"),
    ("facets=brand,colour", "facets"),
    ("facets=", "facets"),
    ("brand=", "brand"),
    ("attr.=x", "attr."),
    ("attr.colour=", "attr.colour"),
    ("category_id=tops", "category_id"),
    ("include_subcategories=maybe", "include_subcategories"),
    ("cursor=eyJzIjoibmV3ZXN0IiwiayI6Im5vdCBhIHRpbWUiLCJpZCI6IngifQ", "cursor"),
    ("sort=price_asc&cursor=" + cursor_of("price_asc", "1E+999999"), "cursor"),
    ("sort=price_asc&cursor=" + cursor_of("price_asc", "NaN"), "cursor"),
    ("q=tee&cursor=" + cursor_of("relevance", "inf"), "cursor"),
    ("sort=newest&cursor=" + cursor_of("newest", "2026-01-01T00:00:00"), "cursor"),
]


class TestBadParameters:
    @pytest.mark.parametrize(("params", "field"), BAD_SEARCHES)
    async def test_is_422_naming_the_parameter(self, client, params, field):
        assert_problem(await client.get(f"/products?{params}"), 422, field)

    @pytest.mark.parametrize(
        "params",
        [
            "sort=newest&cursor=" + cursor_of("newest", "2026-01-01T00:00:00+23:59"),
            "sort=newest&cursor=" + cursor_of("newest", "20260101T000000Z"),
            "sort=price_desc&cursor=" + cursor_of("price_desc", "-Infinity"),
            "sort=title&cursor=" + cursor_of("title", "\u00e9t\u00e9"),
            "q=tee&cursor=" + cursor_of("relevance", "1e-30"),
            "attr.size=1e999&attr.size=-0.5E-7&attr.fit=true",
        ],
    )
    async def test_any_key_a_cursor_of_its_sort_may_hold_is_answered(self, client, params):
        response = await client.get(f"/products?{params}")
        assert response.status_code == 200, response.text
