"""Reads of the catalogue read models: `get_*` for one, `list_*` for many; money as `Decimal`, which a
view sends as a decimal string.

Every read takes the `Viewer` and answers only what it may see (`viewer.scope`): a product it may not
see reads as None, exactly like an unknown one. `your_price`, `your_min_price` and `your_max_price` are
the customer's prices (its tier's price where a variant has one, else the base price; active variants
only); they are present and null for everyone else: anonymous callers, sellers, admins, and customers
the catalogue does not know or knows as closed.

Breadcrumbs and product counts are computed here, at read time, from the category tree's rows (see
`projections`). The tree shows by default only active categories whose every ancestor is active: an
inactive category hides its whole subtree. A category whose parent has not arrived yet is left out of
the tree until it does, and an ancestor that has not arrived is missing from a breadcrumb until then.
While the events of a move are on their way (each category's in its own order), a breadcrumb or the tree
may show a moment no commit had, even a loop the walks stop at; they settle with the last event.
"""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
import msgspec

from bus.errors import Invalid
from contexts.catalogue.values import MAX_SLUG
from contexts.catalogue.viewer import Scope, Viewer, scope

_ID = "6f1c2b9e-8d4a-4e37-9b52-0c7a1d3e5f88"
_AT = "2026-11-27T11:51:43.454232Z"


def _eg(value: object) -> msgspec.Meta:
    return msgspec.Meta(examples=[value])


class VariantView(msgspec.Struct, frozen=True, kw_only=True):
    variant_id: Annotated[str, _eg("1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5")]
    variant_sku: Annotated[str, _eg("TEE-BLK-M")]
    attributes: Annotated[dict[str, Any], _eg({"colour": "black", "size": "M"})]
    base_price: Annotated[Decimal, _eg("19.99")]
    currency: Annotated[str, _eg("EUR")]
    tier_prices: Annotated[dict[str, Decimal], _eg({"Silver": "18.99", "Gold": "17.99"})]
    weight_value: Annotated[Decimal | None, _eg("0.25")]
    weight_unit: Annotated[str, _eg("kg")]
    length: Annotated[Decimal | None, _eg("30")]
    width: Annotated[Decimal | None, _eg("20")]
    height: Annotated[Decimal | None, _eg("2")]
    dimension_unit: Annotated[str, _eg("cm")]
    is_active: Annotated[bool, _eg(True)]
    your_price: Annotated[
        Decimal | None,
        msgspec.Meta(
            examples=["17.99"],
            description="what the calling customer pays: its tier's price, else the base price;"
            " null for other callers and inactive variants",
        ),
    ] = None


class ImageView(msgspec.Struct, frozen=True, kw_only=True):
    image_id: Annotated[str, _eg("9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d")]
    url: Annotated[str, _eg("https://img.example.com/tee-black.jpg")]
    alt_text: Annotated[str | None, _eg("Black tee, front")]
    is_primary: Annotated[bool, _eg(True)]
    display_order: Annotated[int, _eg(0)]


class ProductDetail(msgspec.Struct, frozen=True, kw_only=True):
    product_id: Annotated[str, _eg(_ID)]
    sku: Annotated[str, _eg("TEE-BLK")]
    seller_id: Annotated[str | None, _eg("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f")]
    title: Annotated[str, _eg("Organic cotton tee")]
    description: Annotated[str | None, _eg("A heavyweight tee, knitted in Portugal.")]
    category_id: Annotated[str | None, _eg("7e6d5c4b-3a29-4817-9605-f4e3d2c1b0a9")]
    brand: Annotated[str | None, _eg("Northwind")]
    attributes: Annotated[dict[str, Any], _eg({"material": "cotton"})]
    visibility: Annotated[str, _eg("Public")]
    restricted_to_tier: Annotated[
        str,
        msgspec.Meta(
            examples=["Silver"],
            description="with visibility Tier_Restricted, the least customer tier that sees the product",
        ),
    ]
    meta_title: Annotated[str | None, _eg("Organic cotton tee | Northwind")]
    meta_description: Annotated[str | None, _eg("A heavyweight organic cotton tee.")]
    slug: Annotated[str | None, _eg("organic-cotton-tee")]
    status: Annotated[str, _eg("Active")]
    variants: list[VariantView]
    images: list[ImageView]
    created_at: Annotated[datetime, _eg(_AT)]
    updated_at: Annotated[datetime, _eg(_AT)]
    version: Annotated[int, _eg(7)]


class ProductCard(msgspec.Struct, frozen=True, kw_only=True):
    product_id: Annotated[str, _eg(_ID)]
    sku: Annotated[str, _eg("TEE-BLK")]
    title: Annotated[str, _eg("Organic cotton tee")]
    brand: Annotated[str | None, _eg("Northwind")]
    category_id: Annotated[str | None, _eg("7e6d5c4b-3a29-4817-9605-f4e3d2c1b0a9")]
    seller_id: Annotated[str | None, _eg("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f")]
    primary_image_url: Annotated[str | None, _eg("https://img.example.com/tee-black.jpg")]
    min_price: Annotated[Decimal | None, _eg("19.99")]
    max_price: Annotated[Decimal | None, _eg("24.99")]
    currency: Annotated[str | None, _eg("EUR")]
    status: Annotated[str, _eg("Active")]
    variant_count: Annotated[int, _eg(3)]
    created_at: Annotated[datetime, _eg(_AT)]
    version: Annotated[int, _eg(7)]
    your_min_price: Annotated[
        Decimal | None,
        msgspec.Meta(
            examples=["17.99"],
            description="the calling customer's lowest price over the active variants; null for other callers",
        ),
    ] = None
    your_max_price: Annotated[
        Decimal | None,
        msgspec.Meta(
            examples=["22.99"],
            description="the calling customer's highest price over the active variants; null for other callers",
        ),
    ] = None


class PriceChange(msgspec.Struct, frozen=True, kw_only=True):
    variant_id: Annotated[str, _eg("1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5")]
    previous_price: Annotated[Decimal, _eg("24.99")]
    new_price: Annotated[Decimal, _eg("19.99")]
    currency: Annotated[str, _eg("EUR")]
    changed_at: Annotated[datetime, _eg(_AT)]


class PriceHistory(msgspec.Struct, frozen=True, kw_only=True):
    items: list[PriceChange]
    next_cursor: Annotated[str | None, _eg("eyJ2IjoxMn0")]
    version: Annotated[int, _eg(7)]


class CategoryNode(msgspec.Struct, frozen=True, kw_only=True):
    category_id: Annotated[str, _eg("7e6d5c4b-3a29-4817-9605-f4e3d2c1b0a9")]
    name: Annotated[str, _eg("T-shirts")]
    parent_category_id: Annotated[str | None, _eg("5b4a3928-1706-4f5e-8d4c-3b2a19087f6e")]
    level: Annotated[int, _eg(2)]
    is_active: Annotated[bool, _eg(True)]
    display_order: Annotated[int, _eg(0)]
    breadcrumb: Annotated[list[str], _eg(["Clothing", "Tops", "T-shirts"])]
    product_count: Annotated[int, _eg(42)]
    version: Annotated[int, _eg(3)]


class CategoryTreeNode(msgspec.Struct, frozen=True, kw_only=True):
    category_id: Annotated[str, _eg("7e6d5c4b-3a29-4817-9605-f4e3d2c1b0a9")]
    name: Annotated[str, _eg("T-shirts")]
    level: Annotated[int, _eg(2)]
    is_active: Annotated[bool, _eg(True)]
    display_order: Annotated[int, _eg(0)]
    children: list[CategoryTreeNode]


class CategoryTree(msgspec.Struct, frozen=True, kw_only=True):
    items: list[CategoryTreeNode]


def _columns(view: type[msgspec.Struct], prefix: str = "", but: tuple[str, ...] = ()) -> str:
    return ", ".join(f"{prefix}{name}" for name in view.__struct_fields__ if name not in but)


def _plain(row: asyncpg.Record, *money: str) -> dict[str, Any]:
    """The row's columns with money in plain digits: asyncpg reads NUMERIC 50000 as Decimal('5E+4'),
    which a view would send as "5E+4"."""
    columns = dict(row)
    for name in money:
        if columns[name] is not None:
            columns[name] = Decimal(f"{columns[name]:f}")
    return columns


def _unstorable(*values: str | None) -> bool:
    """True if a value holds U+0000: PostgreSQL text cannot, so no stored row matches it."""
    return any(value is not None and "\x00" in value for value in values)


_NO_PRICE = "NULL::numeric"


def _your_price(tier: str | None, prices: str, variant: str) -> str:
    """The customer's price of each active variant row `variant`: its tier's price in `prices`, else the
    base price; NULL for anyone but a customer the catalogue knows (see `Scope.tier`)."""
    if tier is None:
        return _NO_PRICE
    return (
        f"CASE WHEN {variant}.is_active AND {tier} IS NOT NULL THEN coalesce((SELECT yt.price FROM {prices} yt"
        f" WHERE yt.product_id = {variant}.product_id AND yt.variant_id = {variant}.variant_id"
        f" AND yt.tier = {tier}), {variant}.base_price) END"
    )


_BY_ID = "d.product_id = $1"
# Only products not archived hold a slug; should the read model briefly show two (one archived since),
# the newest is the holder.
_BY_SLUG = (
    "d.product_id = (SELECT product_id FROM catalogue.product_details"
    " WHERE slug = $1 AND status <> 'Archived' ORDER BY created_at DESC, product_id DESC LIMIT 1)"
)


def _detail(scoped: Scope, which: str) -> str:
    your_price = _your_price(scoped.tier, "catalogue.product_detail_tier_prices", "v")
    return f"""
SELECT {_columns(ProductDetail, "d.", but=("variants", "images"))},
    coalesce((SELECT jsonb_agg(to_jsonb(v) || jsonb_build_object('tier_prices', coalesce(
                (SELECT jsonb_object_agg(t.tier, t.price) FROM catalogue.product_detail_tier_prices t
                 WHERE t.product_id = v.product_id AND t.variant_id = v.variant_id), '{{}}'),
                'your_price', {your_price})
              ORDER BY v.added)
              FROM catalogue.product_detail_variants v WHERE v.product_id = d.product_id), '[]') AS variants,
    coalesce((SELECT jsonb_agg(to_jsonb(i) ORDER BY i.display_order, i.added)
              FROM catalogue.product_detail_images i WHERE i.product_id = d.product_id), '[]') AS images
FROM catalogue.product_details d WHERE {which} AND {scoped.where}
"""


# jsonb keeps NUMERIC's exact digits and msgspec decodes a JSON number into `Decimal` exactly.
_object = msgspec.json.Decoder(dict[str, Any])
_variants = msgspec.json.Decoder(list[VariantView])
_images = msgspec.json.Decoder(list[ImageView])


async def get_product(pool: asyncpg.Pool, product_id: str, *, viewer: Viewer) -> ProductDetail | None:
    """The product with its variants in the order added and its images in display order; None if the
    viewer may not see it."""
    if _unstorable(product_id):
        return None
    scoped = scope(viewer, listed=False, param=2, alias="d")
    return _view(await pool.fetchrow(_detail(scoped, _BY_ID), product_id, *scoped.args))


async def get_product_by_slug(pool: asyncpg.Pool, slug: str, *, viewer: Viewer) -> ProductDetail | None:
    """The product that holds the slug (in any case), as `get_product`."""
    if _unstorable(slug) or len(slug) > MAX_SLUG:
        return None
    scoped = scope(viewer, listed=False, param=2, alias="d")
    return _view(await pool.fetchrow(_detail(scoped, _BY_SLUG), slug.lower(), *scoped.args))


def _view(row: asyncpg.Record | None) -> ProductDetail | None:
    if row is None:
        return None
    return ProductDetail(
        **{
            **dict(row),
            "attributes": _object.decode(row["attributes"]),
            "variants": _variants.decode(row["variants"]),
            "images": _images.decode(row["images"]),
        }
    )


_YOURS = ("your_min_price", "your_max_price")


def card_columns(tier: str | None) -> str:
    """The select list of a card of `catalogue.product_cards c`, for a caller of `Scope.tier` `tier`."""
    cards = _columns(ProductCard, "c.", but=_YOURS)
    if tier is None:
        return f"{cards}, {_NO_PRICE} AS your_min_price, {_NO_PRICE} AS your_max_price"
    price = _your_price(tier, "catalogue.product_card_tier_prices", "v")
    mine = "FROM catalogue.product_card_variants v WHERE v.product_id = c.product_id AND v.is_active"
    return (
        f"{cards}, (SELECT min({price}) {mine}) AS your_min_price,"
        f" (SELECT max({price}) {mine}) AS your_max_price"
    )


class _HistoryCursor(msgspec.Struct, frozen=True):
    v: int  # the product version of the last change on the page


_history_cursor = msgspec.json.Decoder(_HistoryCursor)


def encode_history_cursor(version: int) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(_HistoryCursor(version))).decode().rstrip("=")


def decode_history_cursor(cursor: str) -> int:
    """The version a page of price history starts below; 422 for anything this service did not issue."""
    try:
        after = _history_cursor.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, msgspec.DecodeError):
        raise Invalid("cursor", "is not a cursor this service issued") from None
    if not 0 < after.v < 2**63:
        raise Invalid("cursor", "is not a cursor this service issued")
    return after.v


async def get_price_history(
    pool: asyncpg.Pool, product_id: str, *, viewer: Viewer, limit: int = 20, cursor: str | None = None
) -> PriceHistory | None:
    """A page of the base-price changes of the product's variants, newest first (keyset on the product
    version each change made, so a change made meanwhile never shifts a later page); None if the
    product is unknown or the viewer may not see it. Header and page come from one statement."""
    before = decode_history_cursor(cursor) if cursor is not None else None
    if _unstorable(product_id):
        return None
    scoped = scope(viewer, listed=False, param=4, alias="h")
    rows = await pool.fetch(
        f"SELECT h.version AS product_version, c.version AS change_version, {_columns(PriceChange, 'c.')}"
        " FROM catalogue.price_histories h LEFT JOIN LATERAL ("
        " SELECT * FROM catalogue.price_changes c WHERE c.product_id = h.product_id"
        " AND ($2::bigint IS NULL OR c.version < $2) ORDER BY c.version DESC LIMIT $3) c ON true"
        f" WHERE h.product_id = $1 AND {scoped.where} ORDER BY c.version DESC",
        product_id,
        before,
        limit + 1,
        *scoped.args,
    )
    if not rows:
        return None
    changes = [_plain(row, "previous_price", "new_price") for row in rows if row["variant_id"] is not None]
    items = [PriceChange(**{name: c[name] for name in PriceChange.__struct_fields__}) for c in changes]
    more = len(items) > limit
    return PriceHistory(
        items=items[:limit],
        next_cursor=encode_history_cursor(changes[limit - 1]["change_version"]) if more else None,
        version=rows[0]["product_version"],
    )


def _category(scoped: Scope) -> str:
    return f"""
WITH RECURSIVE chain (category_id, parent_category_id, name, depth, path) AS (
    SELECT category_id, parent_category_id, name, 0, ARRAY[category_id]
    FROM catalogue.category_nodes WHERE category_id = $1
    UNION ALL
    SELECT n.category_id, n.parent_category_id, n.name, chain.depth + 1, chain.path || n.category_id
    FROM catalogue.category_nodes n JOIN chain ON n.category_id = chain.parent_category_id
    WHERE chain.depth < 16 AND n.category_id <> ALL(chain.path)
)
SELECT {_columns(CategoryNode, "n.", but=("breadcrumb", "product_count"))},
    ARRAY(SELECT name FROM chain ORDER BY depth DESC) AS breadcrumb,
    (SELECT count(*) FROM catalogue.category_products p
     WHERE p.category_id = n.category_id AND {scoped.where}) AS product_count
FROM catalogue.category_nodes n WHERE n.category_id = $1
"""


async def get_category(pool: asyncpg.Pool, category_id: str, *, viewer: Viewer) -> CategoryNode | None:
    """The category with its breadcrumb (names root → self) and the number of products filed in it
    directly that are not archived and that the viewer may list, all read in one statement."""
    if _unstorable(category_id):
        return None
    scoped = scope(viewer, listed=True, param=2, alias="p")
    row = await pool.fetchrow(_category(scoped), category_id, *scoped.args)
    return None if row is None else CategoryNode(**dict(row))


# Walks down from the roots, so a category whose parent is missing (or, by default, inactive) is never
# reached, nor anything below it.
_TREE = """
WITH RECURSIVE tree AS (
    SELECT category_id, parent_category_id, name, level, is_active, display_order
    FROM catalogue.category_nodes WHERE parent_category_id IS NULL AND (is_active OR $1)
    UNION ALL
    SELECT n.category_id, n.parent_category_id, n.name, n.level, n.is_active, n.display_order
    FROM catalogue.category_nodes n JOIN tree ON n.parent_category_id = tree.category_id
    WHERE n.is_active OR $1
)
SELECT * FROM tree ORDER BY display_order, name, category_id
"""


async def get_category_tree(pool: asyncpg.Pool, *, include_inactive: bool = False) -> CategoryTree:
    """The category tree, children nested and ordered by display_order then name at every level."""
    children: dict[str | None, list[asyncpg.Record]] = {}
    for row in await pool.fetch(_TREE, include_inactive):
        children.setdefault(row["parent_category_id"], []).append(row)

    def nodes(parent_id: str | None) -> list[CategoryTreeNode]:
        return [
            CategoryTreeNode(
                category_id=row["category_id"],
                name=row["name"],
                level=row["level"],
                is_active=row["is_active"],
                display_order=row["display_order"],
                children=nodes(row["category_id"]),
            )
            for row in children.get(parent_id, [])
        ]

    return CategoryTree(items=nodes(None))
