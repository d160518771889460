"""Finding products (SPEC §9): full-text search, filters, sorts and facets over the product cards, a page
at a time by keyset, stable while products are added.

`filters(...)` validates the raw parameters into a `Search` (422 naming the parameter), `statement(...)`
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

import base64
import binascii
import json
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

import asyncpg
import msgspec
from msgspec import UNSET, UnsetType

from bus.errors import Invalid
from contexts.catalogue.queries import ProductCard, _eg, _plain, _unstorable, card_columns
from contexts.catalogue.values import MAX_MONEY, Currency
from contexts.catalogue.viewer import EVERYTHING, Scope, Viewer, scope

MAX_QUERY = 200
# A JSON number (with an exponent NUMERIC can hold) or boolean.
_LITERAL = re.compile(r"-?(?:0|[1-9][0-9]{0,30})(?:\.[0-9]{1,30})?(?:[eE][-+]?[0-9]{1,3})?|true|false")
_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")
MAX_FACET_VALUES = 100
BANDS = (
    Decimal(0),
    Decimal(10),
    Decimal(25),
    Decimal(50),
    Decimal(100),
    Decimal(250),
    Decimal(500),
    Decimal(1000),
)


class Sort(StrEnum):
    NEWEST = "newest"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    TITLE = "title"
    RELEVANCE = "relevance"


class Facet(StrEnum):
    BRAND = "brand"
    CATEGORY = "category"
    PRICE = "price"


class Search(msgspec.Struct, frozen=True, kw_only=True):
    """Validated filters, sort and page of a search; every filter given must hold."""

    q: str | None = None
    category_id: str | None = None
    include_subcategories: bool = True
    seller_id: str | None = None
    status: str | None = None
    brands: tuple[str, ...] = ()
    currency: str | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (key, alternative values)
    sort: Sort = Sort.NEWEST
    facets: tuple[Facet, ...] = ()
    limit: int = 20
    after: tuple[object, str] | None = None  # the last card's sort key and product id


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


# --- validation ------------------------------------------------------------------------------------


def _text(field: str, value: str, max_length: int) -> str:
    """The text stripped: 1 to `max_length` characters, no U+0000."""
    if "\x00" in value:
        raise Invalid(field, "must not contain U+0000")
    if not 1 <= len(value.strip()) <= max_length:
        raise Invalid(field, f"must be 1 to {max_length} characters, not blank")
    return value.strip()


def _money(field: str, raw: str | None, currency: Currency | None) -> Decimal | None:
    if raw is None:
        return None
    if currency is None:
        raise Invalid("currency", f"is needed with {field}")
    digits = currency.minor_digits
    if not _AMOUNT.fullmatch(raw) or (number := Decimal(raw)) != round(number, digits):
        raise Invalid(field, f"must be an amount below {MAX_MONEY:f} with at most {digits} decimals")
    return number


def _attributes(raw: Sequence[tuple[str, str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    grouped: dict[str, list[str]] = {}
    for key, value in raw:
        field = f"attr.{key}"
        if not key or "\x00" in key or len(key) > 100:
            raise Invalid(field, "needs a key of 1 to 100 characters")
        grouped.setdefault(key, []).append(_text(field, value, 500))
    if len(grouped) > 20 or sum(map(len, grouped.values())) > 50:
        raise Invalid("attr", "at most 20 keys and 50 values")
    return tuple((key, tuple(values)) for key, values in grouped.items())


def filters(
    *,
    q: str | None = None,
    category_id: str | None = None,
    include_subcategories: bool = True,
    seller_id: str | None = None,
    status: str | None = None,
    brands: Sequence[str] = (),
    currency: str | None = None,
    price_min: str | None = None,
    price_max: str | None = None,
    attributes: Sequence[tuple[str, str]] = (),
    sort: str | None = None,
    facets: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> Search:
    """The raw parameters of a search, validated; ids and status are the caller's to check."""
    q = None if q is None else _text("q", q, MAX_QUERY)
    if sort is None:
        chosen = Sort.RELEVANCE if q is not None else Sort.NEWEST
    elif sort in Sort.__members__.values():
        chosen = Sort(sort)
    else:
        raise Invalid("sort", "must be one of " + ", ".join(Sort))
    if chosen is Sort.RELEVANCE and q is None:
        raise Invalid("sort", "relevance needs q")
    if currency is not None and currency not in Currency.__members__.values():
        raise Invalid("currency", "must be one of " + ", ".join(Currency))
    money = None if currency is None else Currency(currency)
    low, high = _money("price_min", price_min, money), _money("price_max", price_max, money)
    if low is not None and high is not None and low > high:
        raise Invalid("price_max", "must not be below price_min")
    asked = [] if facets is None else facets.split(",")
    if any(name not in Facet.__members__.values() for name in asked):
        raise Invalid("facets", "must list some of " + ", ".join(Facet))
    if Facet.PRICE in asked and money is None:
        raise Invalid("currency", "is needed with the price facet")
    if len(brands) > 50:
        raise Invalid("brand", "at most 50 brands")
    return Search(
        q=q,
        category_id=category_id,
        include_subcategories=include_subcategories,
        seller_id=seller_id,
        status=status,
        brands=tuple(_text("brand", brand, 100) for brand in brands),
        currency=currency,
        price_min=low,
        price_max=high,
        attributes=_attributes(attributes),
        sort=chosen,
        facets=tuple(dict.fromkeys(Facet(name) for name in asked)),
        limit=min(max(limit, 1), 100),
        after=None if cursor is None else _decode_cursor(cursor, chosen),
    )


# --- cursors ---------------------------------------------------------------------------------------


class _Cursor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The sort, and the sort key and id of the last card of a page (the key as text)."""

    s: str
    k: str
    id: str


_cursor_decoder = msgspec.json.Decoder(_Cursor)
_RANKS = (Decimal("1e-37"), Decimal("1e38"))  # within what a `real` holds


def _encode_cursor(sort: Sort, key: object, product_id: str) -> str:
    if isinstance(key, datetime):
        text = key.isoformat()
    elif isinstance(key, Decimal) and key.is_finite():
        text = f"{key:f}"
    else:
        text = str(key)
    raw = msgspec.json.encode(_Cursor(s=sort, k=text, id=product_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _typed_key(sort: Sort, key: str) -> object:
    """The cursor's key as the value its sort compares, or None if it is not one this service issues."""
    try:
        if sort is Sort.NEWEST:
            moment = datetime.fromisoformat(key)
            return moment if moment.tzinfo is not None else None
        if sort in (Sort.PRICE_ASC, Sort.PRICE_DESC):
            price = Decimal(key)
            return price if price.is_infinite() or (price.is_finite() and abs(price) < MAX_MONEY) else None
        if sort is Sort.RELEVANCE:  # a `real` as PostgreSQL writes it, read back exactly by it
            rank = Decimal(key)
            return key if rank.is_finite() and (rank == 0 or _RANKS[0] < rank < _RANKS[1]) else None
    except (ValueError, InvalidOperation):
        return None
    return key if "\x00" not in key else None


def _decode_cursor(cursor: str, sort: Sort) -> tuple[object, str]:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        after = _cursor_decoder.decode(raw)
    except (ValueError, binascii.Error, msgspec.MsgspecError):
        raise Invalid("cursor", "is not a cursor this service issued") from None
    if after.s != sort:
        raise Invalid("cursor", f"was issued for another sort than {sort}")
    key = _typed_key(sort, after.k)
    if key is None or "\x00" in after.id:
        raise Invalid("cursor", "is not a cursor this service issued")
    return key, after.id


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
        else _encode_cursor(search.sort, last["sort_key"], last["product_id"]),
        facets=await facets(pool, search, scoped) if search.facets else UNSET,
    )


async def list_product_cards(pool: asyncpg.Pool, *, viewer: Viewer, **given: Any) -> SearchPage:
    """The cards `viewer` may list that match the raw parameters `given` (those of `filters`): what
    `GET /products` and `GET /sellers/{id}/products` answer."""
    return await search_products(pool, filters(**given), scope(viewer, listed=True, param=1, alias="c"))
