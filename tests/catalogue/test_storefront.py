"""What each caller may see and pay over HTTP (SPEC §9), with `SHOPSTREAM_AUTH=jwt`: every catalogue read
route for anonymous callers, customers of each tier (and a closed and an unknown one), the owning
seller, another seller and an admin; 404 exactly as for an unknown id; `your_price` and the card's
`your_min_price`/`your_max_price`.

One seller lists, in one category, a product of each kind; every read model has caught up before the
reads are checked.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from shopstream.bootstrap import product_modules
from shopstream.settings import Settings
from tests.apps import app_client, own_connection
from tests.tokens import AUDIENCE, ISSUER, SECRET, bearer, hs256

pytestmark = pytest.mark.anyio

SELLER, OTHER_SELLER = str(uuid.uuid4()), str(uuid.uuid4())
ADMIN = bearer(hs256("admin", "ops-1"))
RUN = uuid.uuid4().hex[:8]
TIERS = {"standard": "Standard", "silver": "Silver", "gold": "Gold", "platinum": "Platinum"}
CALLERS: dict[str, dict[str, str]] = {
    "anonymous": {},
    **{name: bearer(hs256("customer", f"crm-{name}-{RUN}")) for name in (*TIERS, "closed", "unknown")},
    "owner seller": bearer(hs256("seller", SELLER)),
    "other seller": bearer(hs256("seller", OTHER_SELLER)),
    "admin": ADMIN,
}
# name → (visibility, restricted_to_tier, lifecycle steps after creation)
KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "public": ("Public", "Silver", ("activate",)),
    "public draft": ("Public", "Silver", ()),
    "public discontinued": ("Public", "Silver", ("activate", "discontinue")),
    "public archived": ("Public", "Silver", ("activate", "discontinue", "archive")),
    "unlisted": ("Unlisted", "Silver", ("activate",)),
    "silver": ("Tier_Restricted", "Silver", ("activate",)),
    "gold": ("Tier_Restricted", "Gold", ("activate",)),
    "platinum": ("Tier_Restricted", "Platinum", ("activate",)),
    "gold draft": ("Tier_Restricted", "Gold", ()),
}
SHOWN = {"public", "public discontinued"}
LISTED: dict[str, set[str]] = {
    "anonymous": SHOWN,
    "standard": SHOWN,
    "silver": SHOWN | {"silver"},
    "gold": SHOWN | {"silver", "gold"},
    "platinum": SHOWN | {"silver", "gold", "platinum"},
    "closed": SHOWN,  # was Platinum: a closed customer is anonymous
    "unknown": SHOWN,
    "owner seller": set(KINDS),
    "other seller": SHOWN,
    "admin": set(KINDS),
}
BY_ID = {
    caller: seen | ({"unlisted"} if caller not in ("owner seller", "admin") else set())
    for caller, seen in LISTED.items()
}
# Variant 1: base 22.00, then 20.00, with Silver 18.00, Gold 16.00, Platinum 14.00; variant 2: base 30.00, Gold 25.00.
YOUR_PRICES = {
    "standard": ("20.00", "30.00"),
    "silver": ("18.00", "30.00"),
    "gold": ("16.00", "25.00"),
    "platinum": ("14.00", "30.00"),
}


@pytest.fixture(scope="module")
async def settings(context_settings) -> Settings:
    return await context_settings(
        "storefront", auth="jwt", jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    async with app_client(settings) as opened:
        yield opened


async def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


async def _register(client: AsyncTestClient, name: str) -> str:
    external_id = f"crm-{name}-{RUN}"
    body = {
        "external_id": external_id,
        "email": f"{name}.{RUN}@example.com",
        "first_name": "A",
        "last_name": "B",
    }
    created = await _ok(
        await client.post("/customers", json=body, headers=bearer(hs256("customer", external_id))), 201
    )
    return str(created["customer_id"])


async def _list(client: AsyncTestClient, category_id: str, kind: str) -> str:
    visibility, tier, steps = KINDS[kind]
    seller = CALLERS["owner seller"]
    body = {
        "sku": f"SKU-{uuid.uuid4().hex[:10]}",
        "title": kind,
        "category_id": category_id,
        "visibility": visibility,
        "restricted_to_tier": tier,
    }
    product_id = str(
        (await _ok(await client.post("/products", json=body, headers=seller), 201))["product_id"]
    )
    product = f"/products/{product_id}"
    cheap = {"variant_sku": f"V-{uuid.uuid4().hex[:10]}", "base_price": "22.00", "currency": "EUR"}
    dear = {"variant_sku": f"V-{uuid.uuid4().hex[:10]}", "base_price": "30.00", "currency": "EUR"}
    first = (await _ok(await client.post(f"{product}/variants", json=cheap, headers=seller), 201))[
        "variant_id"
    ]
    second = (await _ok(await client.post(f"{product}/variants", json=dear, headers=seller), 201))[
        "variant_id"
    ]
    for variant_id, tier_price in [(first, ("Silver", "18")), (first, ("Gold", "16")), (first, ("Platinum", "14")),
                                   (second, ("Gold", "25"))]:  # fmt: skip
        price = {"tier": tier_price[0], "price": tier_price[1]}
        await _ok(await client.put(f"{product}/variants/{variant_id}/tier-price", json=price, headers=seller))
    await _ok(
        await client.put(f"{product}/variants/{first}/price", json={"base_price": "20"}, headers=seller)
    )
    for step in steps:
        await _ok(await client.put(f"{product}/{step}", headers=seller))
    return product_id


async def _settled(conn: asyncpg.Connection) -> bool:
    """Every projection has applied every event of the log it reads."""
    for module in product_modules():
        for projection in module.projections:
            source = module.source_of(projection)
            pending = await conn.fetchval(
                f"SELECT count(*) FROM {source}.outbox o LEFT JOIN bus.consumer_positions p"
                " ON p.consumer = $1 AND p.aggregate_id = o.aggregate_id"
                " WHERE o.aggregate_version > coalesce(p.version, 0)",
                projection.name,
            )
            if pending:
                return False
    return True


async def _until_settled(settings: Settings, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with own_connection(settings) as conn:
        while not await _settled(conn):
            assert time.monotonic() < deadline, "the read models never caught up"
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def shop(client: AsyncTestClient, settings: Settings) -> dict[str, str]:
    """The category id under "category" and a product id per kind."""
    category = await _ok(await client.post("/categories", json={"name": f"Mugs {RUN}"}, headers=ADMIN), 201)
    ids = {"category": str(category["category_id"])}
    for kind in KINDS:
        ids[kind] = await _list(client, ids["category"], kind)
    customers = {name: await _register(client, name) for name in (*TIERS, "closed")}
    for name, tier in [
        ("silver", "Silver"),
        ("gold", "Gold"),
        ("platinum", "Platinum"),
        ("closed", "Platinum"),
    ]:
        await _ok(
            await client.put(f"/customers/{customers[name]}/tier", json={"new_tier": tier}, headers=ADMIN)
        )
    await _ok(await client.put(f"/customers/{customers['closed']}/close", headers=ADMIN))
    await _until_settled(settings)
    return ids


def _named(shop: dict[str, str], items: list[dict[str, Any]]) -> set[str]:
    by_id = {product_id: kind for kind, product_id in shop.items()}
    return {by_id[item["product_id"]] for item in items if item["product_id"] in by_id}


LATER_PAGE = "eyJ2IjoxfQ"  # {"v": 1}: the changes below version 1, of which there are none


def _not_found(response: httpx.Response, product_id: str) -> dict[str, Any]:
    """The problem body, with the id it names taken out."""
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return dict(json.loads(response.text.replace(product_id, "<id>")))


@pytest.mark.parametrize("caller", list(CALLERS))
class TestEachCaller:
    async def test_product_detail_and_price_history_show_exactly_what_it_may_see(self, client, shop, caller):
        headers = CALLERS[caller]
        unknown = str(uuid.uuid4())
        nothing = _not_found(await client.get(f"/products/{unknown}", headers=headers), unknown)
        no_history = _not_found(
            await client.get(f"/products/{unknown}/price-history", headers=headers), unknown
        )
        for kind in KINDS:
            product_id = shop[kind]
            detail = await client.get(f"/products/{product_id}", headers=headers)
            history = await client.get(f"/products/{product_id}/price-history", headers=headers)
            # A page further on (a cursor from any product: cursors name only a version) obeys the same rule.
            later = await client.get(
                f"/products/{product_id}/price-history?limit=1&cursor={LATER_PAGE}", headers=headers
            )
            if kind in BY_ID[caller]:
                assert detail.status_code == 200, (kind, detail.text)
                assert detail.json()["product_id"] == product_id
                assert history.status_code == 200, (kind, history.text)
                assert len(history.json()["items"]) == 1
                assert later.status_code == 200 and later.json()["items"] == [], (kind, later.text)
            else:
                assert _not_found(detail, product_id) == nothing, kind
                assert _not_found(history, product_id) == no_history, kind
                assert _not_found(later, product_id) == no_history, kind

    async def test_cards_list_exactly_what_it_may_list(self, client, shop, caller):
        headers = CALLERS[caller]
        page = await _ok(
            await client.get(f"/products?category_id={shop['category']}&limit=100", headers=headers)
        )
        assert _named(shop, page["items"]) == LISTED[caller]
        by_seller = await _ok(await client.get(f"/sellers/{SELLER}/products?limit=100", headers=headers))
        assert _named(shop, by_seller["items"]) == LISTED[caller]
        filtered = await _ok(await client.get(f"/products?seller_id={SELLER}&limit=100", headers=headers))
        assert _named(shop, filtered["items"]) == LISTED[caller]

    async def test_a_category_counts_what_it_may_list(self, client, shop, caller):
        node = await _ok(await client.get(f"/categories/{shop['category']}", headers=CALLERS[caller]))
        assert node["product_count"] == len(LISTED[caller] - {"public archived"})  # archived leave the count

    async def test_your_prices_are_the_customers_own_and_null_for_everyone_else(self, client, shop, caller):
        headers = CALLERS[caller]
        detail = await _ok(await client.get(f"/products/{shop['public']}", headers=headers))
        page = await _ok(
            await client.get(f"/products?category_id={shop['category']}&limit=100", headers=headers)
        )
        (card,) = [item for item in page["items"] if item["product_id"] == shop["public"]]
        expected = YOUR_PRICES.get(caller, (None, None))
        assert [v["your_price"] for v in detail["variants"]] == list(expected)
        assert (card["your_min_price"], card["your_max_price"]) == expected
        assert (card["min_price"], card["max_price"]) == ("20.00", "30.00")
