"""Search at the SQL level: every filter and sort of `GET /products` uses an index on 50,000 cards, an
extra condition is renumbered after the search's own arguments, and migration 0006 refuses to guess
when products that are not archived share a slug."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bench.search import CARDS, ROOT, fill_cards
from contexts.catalogue import module as catalogue
from contexts.catalogue import search
from contexts.catalogue.viewer import EVERYTHING, Scope
from shopstream.bootstrap import BUS
from shopstream.migrate import Component, migrate

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def filled(context_settings) -> AsyncIterator[asyncpg.Connection]:
    settings = await context_settings("search_plans", [catalogue])
    conn = await asyncpg.connect(settings.database_url)
    try:
        await fill_cards(conn, CARDS)
        yield conn
    finally:
        await conn.close()


FILTERS: dict[str, dict[str, Any]] = {
    "q": {"q": "style42"},
    "q phrase and exclusion": {"q": '"running shoe" style41 -wool'},
    "category subtree": {"category_id": ROOT},  # 3 % of the cards (bench.search says how they are made)
    "category alone": {"category_id": ROOT, "include_subcategories": False},
    "brand": {"brands": ["Brand 7", "Brand 8"]},
    "price range": {"currency": "USD", "price_min": "10", "price_max": "12"},
    "attr": {"attributes": [("colour", "red"), ("model", "m42")]},
    "seller": {"seller_id": "5f1b1a0c-0000-4000-8000-000000000000"},
}
SORTS = [s for s in search.Sort if s is not search.Sort.RELEVANCE]


async def plan(conn: asyncpg.Connection, sql: str, args: list[object]) -> str:
    return "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {sql}", *args))


class TestQueryPlans:
    @pytest.mark.parametrize("name", list(FILTERS))
    async def test_each_filter_uses_an_index(self, filled, name):
        for sql, args in [search.statement(search.filters(**FILTERS[name]))]:
            shown = await plan(filled, sql, args)
            assert "Seq Scan on product_cards" not in shown, shown

    @pytest.mark.parametrize("sort", SORTS)
    async def test_each_sort_uses_an_index_on_the_first_page_and_after_a_cursor(self, filled, sort):
        first = search.statement(search.filters(sort=sort))
        rows = await filled.fetch(first[0], *first[1])
        cursor = search.encode_cursor(sort, rows[-1]["sort_key"], rows[-1]["product_id"])
        for sql, args in (first, search.statement(search.filters(sort=sort, cursor=cursor))):
            shown = await plan(filled, sql, args)
            assert "Seq Scan" not in shown and "Sort" not in shown.split("->")[0], shown

    @pytest.mark.parametrize("sort", list(search.Sort))
    async def test_a_search_sorted_any_way_uses_an_index(self, filled, sort):
        sql, args = search.statement(search.filters(q="shoe style41", sort=sort))
        shown = await plan(filled, sql, args)
        assert "Seq Scan on product_cards" not in shown, shown

    @pytest.mark.parametrize("name", ["q", "category subtree", "brand", "price range", "attr"])
    async def test_facets_of_a_filtered_search_use_an_index(self, filled, name):
        found = search.filters(**{"currency": "USD", **FILTERS[name]}, facets="brand,category,price")
        sql, args = search._facet_statement(found, EVERYTHING)
        shown = await plan(filled, sql, args)
        assert "Seq Scan on product_cards" not in shown, shown

    async def test_the_filters_find_what_they_say(self, filled):
        found = search.filters(**FILTERS["price range"], attributes=[("colour", "red")], limit=100)
        sql, args = search.statement(found)
        rows = await filled.fetch(sql, *args)
        expected = await filled.fetchval(
            "SELECT count(*) FROM catalogue.product_cards WHERE min_price BETWEEN 10 AND 12"
            " AND attributes ->> 'colour' = 'red'"
        )
        assert 0 < len(rows) == expected


class TestExtraCondition:
    async def test_the_scopes_placeholders_come_before_the_searchs_own(self, filled):
        found = search.filters(q="shoe", brands=["Brand 1", "Brand 6"], limit=100)
        visible = Scope(
            "status = ANY($1::text[]) AND seller_id IS DISTINCT FROM $2", None, (["Active"], "nobody")
        )
        sql, args = search.statement(found, visible)
        assert len(args) == 5  # q, brands, the condition's two, the limit
        rows = await filled.fetch(sql, *args)
        assert rows and all(row["status"] == "Active" for row in rows)
        everything = await filled.fetch(search.statement(found)[0], *search.statement(found)[1])
        assert {r["product_id"] for r in rows} == {
            r["product_id"] for r in everything if r["status"] == "Active"
        }

    async def test_it_narrows_the_facets_too(self, filled):
        found = search.filters(brands=["Brand 1"], facets="brand")
        visible = Scope("status = $1", None, ("Active",))
        counted = await search.facets(filled, found, visible)
        drafts = await filled.fetchval(
            "SELECT count(*) FROM catalogue.product_cards WHERE brand = 'Brand 1' AND status = 'Active'"
        )
        assert counted.brand == [search.FacetCount(value="Brand 1", count=drafts)] and drafts > 0


class TestSlugMigration:
    async def _migrated_before_0006(self, create_database, tmp_path: Path) -> str:
        url = create_database("slugs")
        earlier = tmp_path / "catalogue"
        earlier.mkdir()
        source = Path(str(catalogue.migrations))
        for path in sorted(source.glob("*.sql")):
            if path.name < "0006":
                shutil.copy(path, earlier / path.name)
        await migrate(url, [BUS, Component("catalogue", earlier)])
        return url

    async def _product(self, conn: asyncpg.Connection, slug: str | None, status: str = "Active") -> str:
        product_id = str(uuid.uuid4())
        state = {"product_id": product_id, "sku": product_id[:8], "slug": slug, "status": status}
        await conn.execute(
            "INSERT INTO catalogue.products (id, state, version, sku_key) VALUES ($1, $2::jsonb, 1, $3)",
            product_id, json.dumps(state), product_id[:8].upper(),
        )  # fmt: skip
        return product_id

    async def test_it_stops_naming_the_products_that_share_a_slug(self, create_database, tmp_path):
        url = await self._migrated_before_0006(create_database, tmp_path)
        conn = await asyncpg.connect(url)
        try:
            one = await self._product(conn, "classic-tee")
            two = await self._product(conn, "Classic-Tee", status="Draft")
            await self._product(conn, "classic-tee", status="Archived")
            await self._product(conn, "other-tee")
            with pytest.raises(asyncpg.RaiseError) as refused:
                await migrate(url, [BUS, Component("catalogue", catalogue.migrations)])
            message = str(refused.value)
            assert "'classic-tee'" in message and one in message and two in message
            assert "other-tee" not in message
            assert await conn.fetchval("SELECT to_regclass('catalogue.products_slug_key_key')") is None
        finally:
            await conn.close()

    async def test_it_backfills_the_slugs_of_products_not_archived(self, create_database, tmp_path):
        url = await self._migrated_before_0006(create_database, tmp_path)
        conn = await asyncpg.connect(url)
        try:
            held = await self._product(conn, "Classic-Tee")
            archived = await self._product(conn, "classic-tee", status="Archived")
            none = await self._product(conn, None)
            await migrate(url, [BUS, Component("catalogue", catalogue.migrations)])
            keys = dict(await conn.fetch("SELECT id, slug_key FROM catalogue.products"))
            assert keys == {held: "classic-tee", archived: None, none: None}
        finally:
            await conn.close()
