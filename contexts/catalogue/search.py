"""Finding products (SPEC §9): full-text search, filters, sorts and facets over the product cards, a page
at a time by keyset, stable while products are added.

`search_terms.filters(...)` validates the raw parameters into a `Search` (422 naming the parameter), `statement(...)`
builds the page's SQL and arguments, `search_products(...)` runs it — plus one statement for the facets
when asked. The caller's scope (`viewer.scope`: what it may list, and its tier for `your_*` prices) takes
the statement's first arguments; the search's own follow.

Decisions: `q` is matched with `websearch_to_tsquery('english', q)` (see migration 0006); `relevance`
ranks by `ts_rank_cd`. A price range needs `currency`: a card matches when one of its active variants in
that currency is priced within the range (both ends included). Price sorts order by the card's lowest
price (cards without one last), whatever its currency: pass `currency` to compare like with like.
`attr.<key>=<value>` values of one key are alternatives, different keys must all hold; a value matches
the attribute as a string, or as the number or boolean it spells. Facets count the whole result set:
brands and categories (cards with none are not counted; the 100 largest, by count then value) and the
fixed price bands of `BANDS` in `currency` (a card counts in each band one of its variants is priced in).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
import msgspec
from msgspec import UNSET, UnsetType

from contexts.catalogue.queries import ProductCard, _eg, _plain, _unstorable, card_columns
from contexts.catalogue.search_terms import (
    BANDS,
    MAX_FACET_VALUES,
    Facet,
    Search,
    Sort,
    encode_cursor,
    filters,
)
from contexts.catalogue.values import Currency
from contexts.catalogue.viewer import EVERYTHING, Scope, Viewer, scope

_LITERAL = re.compile(r"-?(?:0|[1-9][0-9]{0,30})(?:\.[0-9]{1,30})?(?:[eE][-+]?[0-9]{1,3})?|true|false")


class FacetCount(msgspec.Struct, frozen=True, kw_only=True):
    value: Annotated[str, _eg("Northwind")]
    count: Annotated[int, _eg(3)]


class PriceBand(msgspec.Struct, frozen=True, kw_only=True):
    value: Annotated[str, _eg("10-25")]
    price_min: Annotated[Decimal, _eg("10.00")]
    price_max: Annotated[Decimal | None, _eg("24.99")]  # the band's highest price; null: no upper end
    count: Annotated[int, _eg(3)]


class Facets(msgspec.Struct, frozen=True, kw_only=True):
    brand: list[FacetCount] | UnsetType = UNSET
    category: list[FacetCount] | UnsetType = UNSET
    price: list[PriceBand] | UnsetType = UNSET


class SearchPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ProductCard]
    next_cursor: Annotated[
        str | None, _eg("eyJzIjoibmV3ZXN0IiwiayI6IjIwMjYtMTEtMjdUMTE6NTE6NDNaIiwiaWQiOiI2ZjFjIn0")
    ]
    facets: Facets | UnsetType = UNSET


# --- SQL -------------------------------------------------------------------------------------------


class Arguments:
    """The arguments of one statement: each value added is handed its `$n`."""

    def __init__(self, values: Sequence[object] = ()) -> None:
        self.values: list[object] = list(values)

    def __call__(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


_TSQUERY = "websearch_to_tsquery('english', {})"
_SUBTREE = (
    "c.category_id = ANY(ARRAY(WITH RECURSIVE subtree (id) AS (SELECT {0}::text UNION"
    " SELECT n.category_id FROM catalogue.category_nodes n JOIN subtree ON n.parent_category_id = subtree.id)"
    " SELECT id FROM subtree))"
)
# (sort key expression, direction, cast of the cursor's key); the expressions are those of the indexes.
_ORDER: dict[Sort, tuple[str, str, str]] = {
    Sort.NEWEST: ("c.created_at", "DESC", "timestamptz"),
    Sort.PRICE_ASC: ("coalesce(c.min_price, 'Infinity'::numeric)", "ASC", "numeric"),
    Sort.PRICE_DESC: ("coalesce(c.min_price, '-Infinity'::numeric)", "DESC", "numeric"),
    Sort.TITLE: ("c.title", "ASC", "text"),
    Sort.RELEVANCE: ("ts_rank_cd(c.search, {tsquery})", "DESC", "text::real"),
}


def _variant_priced(search: Search, args: Arguments, low: Decimal | None, high: Decimal | None) -> str:
    conditions = [f"v.currency = {args(search.currency)}"]
    if low is not None:
        conditions.append(f"v.base_price >= {args(low)}")
    if high is not None:
        conditions.append(f"v.base_price <= {args(high)}")
    return (
        "EXISTS (SELECT 1 FROM catalogue.product_card_variants v"
        f" WHERE v.product_id = c.product_id AND v.is_active AND {' AND '.join(conditions)})"
    )


def _alternatives(value: str) -> list[str]:
    """The attribute values a query value matches: the string, and the number or boolean it spells."""
    return [json.dumps(value), *([value] if _LITERAL.fullmatch(value) else [])]


def _conditions(search: Search, args: Arguments, scoped: Scope) -> tuple[list[str], str]:
    """The WHERE conditions of the search (cursor excluded), and its tsquery expression if any."""
    conditions: list[str] = []
    tsquery = ""
    if search.q is not None:
        tsquery = _TSQUERY.format(args(search.q))
        conditions.append(f"c.search @@ {tsquery}")
    if search.category_id is not None:
        if search.include_subcategories:
            conditions.append(_SUBTREE.format(args(search.category_id)))
        else:
            conditions.append(f"c.category_id = {args(search.category_id)}")
    for column in ("seller_id", "status"):
        if (value := getattr(search, column)) is not None:
            conditions.append(f"c.{column} = {args(value)}")
    if search.brands:
        conditions.append(f"c.brand = ANY({args(list(search.brands))}::text[])")
    if search.currency is not None:
        conditions.append(_variant_priced(search, args, search.price_min, search.price_max))
    for key, values in search.attributes:
        matches = [
            f"c.attributes @> {args(f'{{{json.dumps(key)}: {v}}}')}::jsonb"
            for value in values
            for v in _alternatives(value)
        ]
        conditions.append("(" + " OR ".join(matches) + ")")
    if scoped.where != EVERYTHING.where:
        conditions.append(scoped.where)
    return conditions, tsquery


def statement(search: Search, scoped: Scope = EVERYTHING) -> tuple[str, list[object]]:
    """The SQL of one page of the search and its arguments; each row is a card and its `sort_key`. The
    viewer's scope (built from `$1`) comes first."""
    args = Arguments(scoped.args)
    conditions, tsquery = _conditions(search, args, scoped)
    expression, direction, cast = _ORDER[search.sort]
    key = expression.format(tsquery=tsquery)
    selected = f"({key})::text" if search.sort is Sort.RELEVANCE else key
    if search.after is not None:
        after_key, after_id = search.after
        typed = f"{args(after_key)}::{cast}"
        comparison = "<" if direction == "DESC" else ">"
        conditions.append(f"({key}, c.product_id) {comparison} ({typed}, {args(after_id)})")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (
        f"SELECT {card_columns(scoped.tier)}, {selected} AS sort_key FROM catalogue.product_cards c{where}"
        f" ORDER BY {key} {direction}, c.product_id {direction} LIMIT {args(search.limit + 1)}"
    )
    return sql, args.values


def _facet_statement(search: Search, scoped: Scope) -> tuple[str, list[object]]:
    args = Arguments(scoped.args)
    conditions, _ = _conditions(search, args, scoped)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    parts: list[str] = []
    top = f"ORDER BY count(*) DESC, 2 LIMIT {MAX_FACET_VALUES}"
    if Facet.BRAND in search.facets:
        parts.append(
            f"(SELECT 'brand', brand, count(*) FROM hits WHERE brand IS NOT NULL GROUP BY brand {top})"
        )
    if Facet.CATEGORY in search.facets:
        parts.append(
            "(SELECT 'category', category_id, count(*) FROM hits WHERE category_id IS NOT NULL"
            f" GROUP BY category_id {top})"
        )
    if Facet.PRICE in search.facets:
        parts.append(
            "(SELECT 'price', band::text, count(DISTINCT v.product_id) FROM hits"
            " JOIN catalogue.product_card_variants v ON v.product_id = hits.product_id"
            f" CROSS JOIN LATERAL width_bucket(v.base_price, {args(list(BANDS))}::numeric[]) AS band"
            f" WHERE v.is_active AND v.currency = {args(search.currency)} GROUP BY band)"
        )
    sql = (
        "WITH hits AS MATERIALIZED (SELECT c.product_id, c.brand, c.category_id"
        f" FROM catalogue.product_cards c{where}) " + " UNION ALL ".join(parts)
    )
    return sql, args.values


def _bands(counts: dict[str, int], currency: Currency) -> list[PriceBand]:
    unit = Decimal(1).scaleb(-currency.minor_digits)
    bands = []
    for n, low in enumerate(BANDS, start=1):
        high = BANDS[n] if n < len(BANDS) else None
        bands.append(
            PriceBand(
                value=f"{low}-{high if high is not None else ''}",
                price_min=low.quantize(unit),
                price_max=None if high is None else (high - unit).quantize(unit),
                count=counts.get(str(n), 0),
            )
        )
    return bands


async def facets(pool: asyncpg.Pool, search: Search, scoped: Scope = EVERYTHING) -> Facets:
    """Counts over the whole result set of the search, for the facets it asks for."""
    sql, args = _facet_statement(search, scoped)
    found: dict[str, dict[str, int]] = {facet: {} for facet in search.facets}
    ordered: dict[str, list[FacetCount]] = {facet: [] for facet in search.facets}
    for facet, value, count in await pool.fetch(sql, *args):
        found[facet][value] = count
        ordered[facet].append(FacetCount(value=value, count=count))
    return Facets(
        brand=ordered["brand"] if Facet.BRAND in search.facets else UNSET,
        category=ordered["category"] if Facet.CATEGORY in search.facets else UNSET,
        price=_bands(found["price"], Currency(str(search.currency)))
        if Facet.PRICE in search.facets
        else UNSET,
    )


async def search_products(pool: asyncpg.Pool, search: Search, scoped: Scope = EVERYTHING) -> SearchPage:
    """One page of the cards a viewer's scope lets it list that match `search`, in its order; the facets
    when asked."""
    if _unstorable(search.category_id, search.seller_id, search.status):
        return SearchPage(items=[], next_cursor=None)  # no stored row holds U+0000
    sql, args = statement(search, scoped)
    rows = await pool.fetch(sql, *args)
    items = [
        ProductCard(
            **{
                k: v
                for k, v in _plain(row, "min_price", "max_price", "your_min_price", "your_max_price").items()
                if k != "sort_key"
            }
        )
        for row in rows[: search.limit]
    ]
    last = rows[search.limit - 1] if len(rows) > search.limit else None
    return SearchPage(
        items=items,
        next_cursor=None
        if last is None
        else encode_cursor(search.sort, last["sort_key"], last["product_id"]),
        facets=await facets(pool, search, scoped) if search.facets else UNSET,
    )


async def list_product_cards(pool: asyncpg.Pool, *, viewer: Viewer, **given: Any) -> SearchPage:
    """The cards `viewer` may list that match the raw parameters `given` (those of `filters`): what
    `GET /products` and `GET /sellers/{id}/products` answer."""
    return await search_products(pool, filters(**given), scope(viewer, listed=True, param=1, alias="c"))
