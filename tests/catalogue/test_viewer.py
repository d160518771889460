"""The visibility rule (SPEC §9) as `viewer.scope` states it in SQL, checked on PostgreSQL over every
combination of status, visibility, restricted tier and seller, for every kind of caller, in lists and
by id, against the rule written out plainly here; and the caller's tier expression."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contexts.catalogue import viewer
from contexts.catalogue.viewer import Viewer
from shopstream.bootstrap import BUS
from shopstream.migrate import Component, migrate_all

pytestmark = pytest.mark.anyio

MIGRATIONS = Path(__file__).resolve().parents[2] / "contexts" / "catalogue" / "migrations"
RANK = {"Standard": 0, "Silver": 1, "Gold": 2, "Platinum": 3}
OWN, OTHER = str(uuid.uuid4()), str(uuid.uuid4())
# external id → (tier, status) as the customer tiers read model holds them
CUSTOMERS = {
    "crm-standard": ("Standard", "Active"),
    "crm-silver": ("Silver", "Active"),
    "crm-gold": ("Gold", "Active"),
    "crm-platinum": ("Platinum", "Active"),
    "crm-suspended-gold": ("Gold", "Suspended"),
    "crm-closed-platinum": ("Platinum", "Closed"),
}
PRODUCTS = [
    {
        "id": f"p{n}",
        "status": status,
        "visibility": visibility,
        "restricted_to_tier": tier,
        "seller_id": seller,
    }
    for n, (status, visibility, tier, seller) in enumerate(
        itertools.product(
            ("Draft", "Active", "Discontinued", "Archived"),
            ("Public", "Unlisted", "Tier_Restricted"),
            ("Silver", "Gold", "Platinum"),
            (OWN, OTHER, None),
        )
    )
]
VIEWERS = {
    "admin": viewer.ADMIN,
    "anonymous": viewer.ANONYMOUS,
    "own seller": viewer.seller(OWN),
    "unknown customer": viewer.customer("crm-nobody"),
    **{name.removeprefix("crm-"): viewer.customer(name) for name in CUSTOMERS},
}


def may_see(who: Viewer, product: dict[str, Any], *, listed: bool) -> bool:
    """SPEC §9, plainly."""
    if who.kind is viewer.Kind.ADMIN:
        return True
    if who.kind is viewer.Kind.SELLER and product["seller_id"] == who.subject:
        return True
    if product["status"] not in ("Active", "Discontinued"):
        return False
    if product["visibility"] == "Public":
        return True
    if product["visibility"] == "Unlisted":
        return not listed
    known = CUSTOMERS.get(who.subject or "") if who.kind is viewer.Kind.CUSTOMER else None
    if known is None or known[1] == "Closed":
        return False
    return RANK[known[0]] >= RANK[product["restricted_to_tier"]]


@pytest.fixture(scope="module")
async def database_url(create_database) -> str:
    url = create_database("catalogue_viewer")
    await migrate_all({url: [BUS, Component("catalogue", MIGRATIONS)]})
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO catalogue.customer_tiers (customer_id, external_id, tier, status, version)"
            " VALUES ($1, $2, $3, $4, 1)",
            [(str(uuid.uuid4()), external_id, *held) for external_id, held in CUSTOMERS.items()],
        )
    finally:
        await conn.close()
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _seen(db: asyncpg.Connection, who: Viewer, *, listed: bool) -> set[str]:
    scoped = viewer.scope(who, listed=listed, param=2, alias="p")
    rows = await db.fetch(
        "SELECT p.id FROM jsonb_to_recordset($1::jsonb)"
        " AS p(id text, status text, visibility text, restricted_to_tier text, seller_id text)"
        f" WHERE {scoped.where}",
        json.dumps(PRODUCTS),
        *scoped.args,
    )
    return {row["id"] for row in rows}


@pytest.mark.parametrize("listed", [True, False], ids=["in lists", "by id"])
@pytest.mark.parametrize("name", list(VIEWERS))
async def test_each_caller_sees_what_the_rule_allows(db, name, listed):
    who = VIEWERS[name]
    expected = {p["id"] for p in PRODUCTS if may_see(who, p, listed=listed)}
    assert await _seen(db, who, listed=listed) == expected


async def test_a_seller_sees_of_other_sellers_what_a_standard_customer_sees(db):
    others = {p["id"] for p in PRODUCTS if p["seller_id"] != OWN}
    for listed in (True, False):
        standard = await _seen(db, viewer.customer("crm-standard"), listed=listed)
        assert await _seen(db, viewer.ANONYMOUS, listed=listed) == standard
        assert await _seen(db, viewer.seller(OWN), listed=listed) & others == standard & others


async def test_a_qualifying_customer_finds_a_restricted_product_in_lists_too(db):
    gold = await _seen(db, viewer.customer("crm-gold"), listed=True)
    restricted = {
        p["id"]
        for p in PRODUCTS
        if p["status"] == "Active"
        and p["visibility"] == "Tier_Restricted"
        and p["restricted_to_tier"] == "Gold"
    }
    assert restricted and restricted <= gold


@pytest.mark.parametrize(
    ("who", "tier"),
    [
        (viewer.customer("crm-gold"), "Gold"),
        (viewer.customer("crm-standard"), "Standard"),
        (viewer.customer("crm-suspended-gold"), "Gold"),
        (viewer.customer("crm-closed-platinum"), None),
        (viewer.customer("crm-nobody"), None),
    ],
)
async def test_a_customers_tier_is_looked_up_in_the_statement_itself(db, who, tier):
    scoped = viewer.scope(who, listed=True, param=1)
    assert scoped.tier is not None
    assert await db.fetchval(f"SELECT {scoped.tier}", *scoped.args) == tier


@pytest.mark.parametrize("who", [viewer.ADMIN, viewer.ANONYMOUS, viewer.seller(OWN)])
def test_only_customers_have_a_tier_expression(who):
    assert viewer.scope(who, listed=False, param=1).tier is None


def test_an_admin_adds_no_condition_and_no_argument():
    assert viewer.scope(viewer.ADMIN, listed=True, param=1) == viewer.Scope("true", None, ())
