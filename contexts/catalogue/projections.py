"""Catalogue read models, each kept by its own consumer: product detail, product cards, price history,
category tree, and the customers' tiers (from identity's events, `customers`).

Every read model has one root row per aggregate that carries the `version` and `updated_at` of the last
event it reflects, stamped by `ReadModel` after every event of the aggregate it serves.

Events of different aggregates arrive in any order, so no read model stores a value that one aggregate's
event would have to write into another aggregate's row. A product card's price range, variant count and
primary image are recomputed by the stamp from the card's own per-variant and per-image rows. The category
tree stores only each category's own fields (its parent and level too: a move raises an event on every
category whose level it changes) and which products are filed where: breadcrumbs (a recursive
walk up the parents) and product counts (`count(*)` of the filed products) are computed when read. So they
come out right whatever order the events came in — a child category before its parent, a product before
its category — a renamed ancestor shows in every descendant's breadcrumb at once, at any depth, and no
hot counter row serialises the writers. A product is counted in the category it is filed in directly, from
its creation (or its move there) until it is archived (or moved away); the tree keeps a row for every
product not archived, filed or not, so a move into a category needs nothing from another read model.

Every read model a caller reads products through keeps, per product, the columns the visibility rule
reads (`viewer`): status, visibility, restricted_to_tier and seller_id. The cards keep their own copy of
the tier prices, so `your_min_price`/`your_max_price` come from the cards' rows alone.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from bus.messages import Envelope, encoder
from bus.readmodel import ReadModel
from contexts.catalogue import events as e
from contexts.catalogue.customers import CustomerTiers
from contexts.catalogue.values import Currency

PRODUCT_EVENTS: tuple[type, ...] = (
    e.ProductCreated, e.ProductDetailsUpdated, e.VariantAdded, e.VariantPriceChanged, e.TierPriceSet,
    e.ProductImageAdded, e.ProductImageRemoved, e.ProductActivated, e.ProductDiscontinued, e.ProductArchived,
    e.ProductCategoryChanged, e.ProductVisibilityChanged, e.VariantUpdated, e.VariantDeactivated,
    e.VariantActivated, e.PrimaryImageChanged, e.ProductImagesReordered,
)  # fmt: skip
CATEGORY_EVENTS: tuple[type, ...] = (
    e.CategoryCreated, e.CategoryDetailsUpdated, e.CategoryReordered, e.CategoryDeactivated,
    e.CategoryMoved, e.CategoryLevelChanged, e.CategoryActivated,
)  # fmt: skip

_STATUS_AFTER: dict[type, str] = {
    e.ProductActivated: "Active",
    e.ProductDiscontinued: "Discontinued",
    e.ProductArchived: "Archived",
}


_VARIANT_COLUMNS = (
    "variant_sku, attributes, base_price, currency, weight_value, weight_unit, length, width, height,"
    " dimension_unit, is_active"
)


class ProductDetails(ReadModel):
    name = "catalogue.product_detail"
    tables = (
        "catalogue.product_details",
        "catalogue.product_detail_variants",
        "catalogue.product_detail_tier_prices",
        "catalogue.product_detail_images",
    )
    key = "product_id"
    stamps = PRODUCT_EVENTS
    version = 2  # restricted_to_tier

    async def project(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        match event:
            case e.ProductCreated():
                await conn.execute(
                    "INSERT INTO catalogue.product_details (product_id, sku, seller_id, title, description,"
                    " category_id, brand, attributes, visibility, restricted_to_tier, meta_title,"
                    " meta_description, slug, status, created_at, updated_at, version)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16)",
                    event.product_id, event.sku, event.seller_id, event.title, event.description,
                    event.category_id, event.brand, _json(event.attributes), event.visibility,
                    event.restricted_to_tier, event.meta_title, event.meta_description, event.slug, event.status,
                    event.created_at, envelope.aggregate_version,
                )  # fmt: skip
            case e.ProductDetailsUpdated():
                await conn.execute(
                    "UPDATE catalogue.product_details SET title = $2, description = $3, brand = $4,"
                    " attributes = $5, meta_title = $6, meta_description = $7, slug = $8"
                    " WHERE product_id = $1",
                    event.product_id, event.title, event.description, event.brand, _json(event.attributes),
                    event.meta_title, event.meta_description, event.slug,
                )  # fmt: skip
            case e.VariantAdded():
                await conn.execute(
                    "WITH variant AS ("
                    f" INSERT INTO catalogue.product_detail_variants (product_id, variant_id, added, {_VARIANT_COLUMNS})"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14))"
                    " INSERT INTO catalogue.product_detail_tier_prices (product_id, variant_id, tier, price)"
                    " SELECT $1, $2, tier, price FROM unnest($15::text[], $16::numeric[]) AS t(tier, price)",
                    event.product_id, event.variant_id, envelope.aggregate_version, event.variant_sku,
                    _json(event.attributes), event.base_price, event.currency, event.weight_value,
                    event.weight_unit, event.length, event.width, event.height, event.dimension_unit,
                    event.is_active, list(event.tier_prices), list(event.tier_prices.values()),
                )  # fmt: skip
            case e.VariantPriceChanged():
                # In a new currency the kept tier prices are written with its minor digits (80.00 → 80 JPY).
                await conn.execute(
                    "WITH tiers AS (UPDATE catalogue.product_detail_tier_prices SET price = round(price, $5)"
                    " WHERE product_id = $1 AND variant_id = $2 AND $6)"
                    " UPDATE catalogue.product_detail_variants SET base_price = $3, currency = $4"
                    " WHERE product_id = $1 AND variant_id = $2",
                    event.product_id, event.variant_id, event.new_price, event.currency,
                    Currency(event.currency).minor_digits, event.currency != event.previous_currency,
                )  # fmt: skip
            case e.TierPriceSet():
                await conn.execute(
                    "INSERT INTO catalogue.product_detail_tier_prices (product_id, variant_id, tier, price)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (product_id, variant_id, tier)"
                    " DO UPDATE SET price = EXCLUDED.price",
                    event.product_id, event.variant_id, event.tier, event.price,
                )  # fmt: skip
            case e.ProductImageAdded():
                await conn.execute(
                    "WITH unflagged AS (UPDATE catalogue.product_detail_images SET is_primary = false"
                    " WHERE product_id = $1 AND image_id = $7)"
                    " INSERT INTO catalogue.product_detail_images"
                    " (product_id, image_id, added, url, alt_text, is_primary, display_order)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $8)",
                    event.product_id, event.image_id, envelope.aggregate_version, event.url, event.alt_text,
                    event.is_primary, event.previous_primary_id, event.display_order,
                )  # fmt: skip
            case e.ProductImageRemoved():
                await conn.execute(
                    "WITH removed AS (DELETE FROM catalogue.product_detail_images"
                    " WHERE product_id = $1 AND image_id = $2)"
                    " UPDATE catalogue.product_detail_images SET is_primary = true"
                    " WHERE product_id = $1 AND image_id = $3",
                    event.product_id, event.image_id, event.new_primary_id,
                )  # fmt: skip
            case e.ProductActivated() | e.ProductDiscontinued() | e.ProductArchived():
                await conn.execute(
                    "UPDATE catalogue.product_details SET status = $2 WHERE product_id = $1",
                    event.product_id, _STATUS_AFTER[type(event)],
                )  # fmt: skip
            case e.ProductCategoryChanged():
                await conn.execute(
                    "UPDATE catalogue.product_details SET category_id = $2 WHERE product_id = $1",
                    event.product_id, event.category_id,
                )  # fmt: skip
            case e.ProductVisibilityChanged():
                await conn.execute(
                    "UPDATE catalogue.product_details SET visibility = $2, restricted_to_tier = $3"
                    " WHERE product_id = $1",
                    event.product_id, event.visibility, event.restricted_to_tier,
                )  # fmt: skip
            case e.VariantUpdated():
                await conn.execute(
                    "UPDATE catalogue.product_detail_variants SET attributes = $3, weight_value = $4,"
                    " weight_unit = $5, length = $6, width = $7, height = $8, dimension_unit = $9"
                    " WHERE product_id = $1 AND variant_id = $2",
                    event.product_id, event.variant_id, _json(event.attributes), event.weight_value,
                    event.weight_unit, event.length, event.width, event.height, event.dimension_unit,
                )  # fmt: skip
            case e.VariantDeactivated() | e.VariantActivated():
                await conn.execute(
                    "UPDATE catalogue.product_detail_variants SET is_active = $3"
                    " WHERE product_id = $1 AND variant_id = $2",
                    event.product_id, event.variant_id, isinstance(event, e.VariantActivated),
                )  # fmt: skip
            case e.PrimaryImageChanged():
                await conn.execute(
                    "UPDATE catalogue.product_detail_images SET is_primary = (image_id = $2)"
                    " WHERE product_id = $1 AND (image_id = $2 OR image_id = $3)",
                    event.product_id, event.image_id, event.previous_primary_id,
                )  # fmt: skip
            case e.ProductImagesReordered():
                await conn.execute(
                    "UPDATE catalogue.product_detail_images i SET display_order = o.position - 1"
                    " FROM unnest($2::text[]) WITH ORDINALITY AS o(image_id, position)"
                    " WHERE i.product_id = $1 AND i.image_id = o.image_id",
                    event.product_id, event.image_ids,
                )  # fmt: skip


class ProductCards(ReadModel):
    name = "catalogue.product_cards"
    tables = (
        "catalogue.product_cards",
        "catalogue.product_card_variants",
        "catalogue.product_card_images",
        "catalogue.product_card_tier_prices",
    )
    key = "product_id"
    stamps = PRODUCT_EVENTS
    version = 3  # v2: visibility, restricted_to_tier and tier prices; search columns
    # Exact on every event: min/max over the current prices of the active variants (one currency per
    # product, a domain rule), the active variants' SKUs a search finds it by, and the primary image as
    # the image rows say.
    derived = (
        ", (min_price, max_price, currency, variant_count, variant_skus) = ("
        "SELECT min(base_price) FILTER (WHERE is_active), max(base_price) FILTER (WHERE is_active),"
        " min(currency), count(*) FILTER (WHERE is_active),"
        " coalesce(string_agg(variant_sku, ' ' ORDER BY variant_id) FILTER (WHERE is_active), '')"
        " FROM catalogue.product_card_variants WHERE product_id = $1)"
        ", primary_image_url = (SELECT url FROM catalogue.product_card_images"
        " WHERE product_id = $1 AND is_primary ORDER BY image_id LIMIT 1)"
    )

    async def project(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        match event:
            case e.ProductCreated():
                await conn.execute(
                    "INSERT INTO catalogue.product_cards (product_id, sku, title, brand, category_id,"
                    " seller_id, status, visibility, restricted_to_tier, created_at, updated_at, version,"
                    " description, attributes)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13)",
                    event.product_id, event.sku, event.title, event.brand, event.category_id,
                    event.seller_id, event.status, event.visibility, event.restricted_to_tier, event.created_at,
                    envelope.aggregate_version, event.description, _json(event.attributes),
                )  # fmt: skip
            case e.ProductDetailsUpdated():
                await conn.execute(
                    "UPDATE catalogue.product_cards SET title = $2, brand = $3, description = $4,"
                    " attributes = $5 WHERE product_id = $1",
                    event.product_id, event.title, event.brand, event.description, _json(event.attributes),
                )  # fmt: skip
            case e.VariantAdded():
                await conn.execute(
                    "WITH variant AS (INSERT INTO catalogue.product_card_variants"
                    " (product_id, variant_id, base_price, currency, is_active, variant_sku)"
                    " VALUES ($1, $2, $3, $4, $5, $8))"
                    " INSERT INTO catalogue.product_card_tier_prices (product_id, variant_id, tier, price)"
                    " SELECT $1, $2, tier, price FROM unnest($6::text[], $7::numeric[]) AS t(tier, price)",
                    event.product_id, event.variant_id, event.base_price, event.currency, event.is_active,
                    list(event.tier_prices), list(event.tier_prices.values()), event.variant_sku,
                )  # fmt: skip
            case e.VariantPriceChanged():
                await conn.execute(
                    "WITH tiers AS (UPDATE catalogue.product_card_tier_prices SET price = round(price, $5)"
                    " WHERE product_id = $1 AND variant_id = $2 AND $6)"
                    " UPDATE catalogue.product_card_variants SET base_price = $3, currency = $4"
                    " WHERE product_id = $1 AND variant_id = $2",
                    event.product_id, event.variant_id, event.new_price, event.currency,
                    Currency(event.currency).minor_digits, event.currency != event.previous_currency,
                )  # fmt: skip
            case e.TierPriceSet():
                await conn.execute(
                    "INSERT INTO catalogue.product_card_tier_prices (product_id, variant_id, tier, price)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (product_id, variant_id, tier)"
                    " DO UPDATE SET price = EXCLUDED.price",
                    event.product_id, event.variant_id, event.tier, event.price,
                )  # fmt: skip
            case e.ProductImageAdded():
                await conn.execute(
                    "WITH unflagged AS (UPDATE catalogue.product_card_images SET is_primary = false"
                    " WHERE product_id = $1 AND image_id = $5)"
                    " INSERT INTO catalogue.product_card_images (product_id, image_id, url, is_primary)"
                    " VALUES ($1, $2, $3, $4)",
                    event.product_id, event.image_id, event.url, event.is_primary, event.previous_primary_id,
                )  # fmt: skip
            case e.ProductImageRemoved():
                await conn.execute(
                    "WITH removed AS (DELETE FROM catalogue.product_card_images"
                    " WHERE product_id = $1 AND image_id = $2)"
                    " UPDATE catalogue.product_card_images SET is_primary = true"
                    " WHERE product_id = $1 AND image_id = $3",
                    event.product_id, event.image_id, event.new_primary_id,
                )  # fmt: skip
            case e.ProductActivated() | e.ProductDiscontinued() | e.ProductArchived():
                await conn.execute(
                    "UPDATE catalogue.product_cards SET status = $2 WHERE product_id = $1",
                    event.product_id, _STATUS_AFTER[type(event)],
                )  # fmt: skip
            case e.ProductCategoryChanged():
                await conn.execute(
                    "UPDATE catalogue.product_cards SET category_id = $2 WHERE product_id = $1",
                    event.product_id, event.category_id,
                )  # fmt: skip
            case e.ProductVisibilityChanged():
                await conn.execute(
                    "UPDATE catalogue.product_cards SET visibility = $2, restricted_to_tier = $3"
                    " WHERE product_id = $1",
                    event.product_id, event.visibility, event.restricted_to_tier,
                )  # fmt: skip
            case e.VariantDeactivated() | e.VariantActivated():
                await conn.execute(
                    "UPDATE catalogue.product_card_variants SET is_active = $3"
                    " WHERE product_id = $1 AND variant_id = $2",
                    event.product_id, event.variant_id, isinstance(event, e.VariantActivated),
                )  # fmt: skip
            case e.PrimaryImageChanged():
                await conn.execute(
                    "UPDATE catalogue.product_card_images SET is_primary = (image_id = $2)"
                    " WHERE product_id = $1 AND (image_id = $2 OR image_id = $3)",
                    event.product_id, event.image_id, event.previous_primary_id,
                )  # fmt: skip


class PriceHistories(ReadModel):
    name = "catalogue.price_history"
    tables = ("catalogue.price_histories", "catalogue.price_changes")
    key = "product_id"
    stamps = PRODUCT_EVENTS
    version = 2  # status, visibility, restricted_to_tier and seller_id

    async def project(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        match event:
            case e.ProductCreated():
                await conn.execute(
                    "INSERT INTO catalogue.price_histories (product_id, seller_id, status, visibility,"
                    " restricted_to_tier, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    event.product_id, event.seller_id, event.status, event.visibility, event.restricted_to_tier,
                    event.created_at, envelope.aggregate_version,
                )  # fmt: skip
            case e.ProductActivated() | e.ProductDiscontinued() | e.ProductArchived():
                await conn.execute(
                    "UPDATE catalogue.price_histories SET status = $2 WHERE product_id = $1",
                    event.product_id, _STATUS_AFTER[type(event)],
                )  # fmt: skip
            case e.ProductVisibilityChanged():
                await conn.execute(
                    "UPDATE catalogue.price_histories SET visibility = $2, restricted_to_tier = $3"
                    " WHERE product_id = $1",
                    event.product_id, event.visibility, event.restricted_to_tier,
                )  # fmt: skip
            case e.VariantPriceChanged():
                await conn.execute(
                    "INSERT INTO catalogue.price_changes"
                    " (product_id, version, variant_id, previous_price, new_price, currency, changed_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    event.product_id, envelope.aggregate_version, event.variant_id, event.previous_price,
                    event.new_price, event.currency, envelope.occurred_at,
                )  # fmt: skip


class CategoryTree(ReadModel):
    name = "catalogue.category_tree"
    tables = ("catalogue.category_nodes", "catalogue.category_products")
    key = "category_id"
    stamps = CATEGORY_EVENTS
    version = 3  # v2: what the visibility rule reads of each filed product; v3: unfiled products too

    async def project(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        match event:
            case e.CategoryCreated():
                await conn.execute(
                    "INSERT INTO catalogue.category_nodes (category_id, name, parent_category_id, level,"
                    " attributes, is_active, display_order, created_at, updated_at, version)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
                    event.category_id, event.name, event.parent_category_id, event.level,
                    _json(event.attributes), event.is_active, event.display_order, event.created_at,
                    envelope.aggregate_version,
                )  # fmt: skip
            case e.CategoryDetailsUpdated():
                await conn.execute(
                    "UPDATE catalogue.category_nodes SET name = $2, attributes = $3"
                    " WHERE category_id = $1",
                    event.category_id, event.name, _json(event.attributes),
                )  # fmt: skip
            case e.CategoryReordered():
                await conn.execute(
                    "UPDATE catalogue.category_nodes SET display_order = $2 WHERE category_id = $1",
                    event.category_id, event.display_order,
                )  # fmt: skip
            case e.CategoryDeactivated() | e.CategoryActivated():
                await conn.execute(
                    "UPDATE catalogue.category_nodes SET is_active = $2 WHERE category_id = $1",
                    event.category_id, isinstance(event, e.CategoryActivated),
                )  # fmt: skip
            case e.CategoryMoved():
                await conn.execute(
                    "UPDATE catalogue.category_nodes SET parent_category_id = $2, level = $3"
                    " WHERE category_id = $1",
                    event.category_id, event.parent_category_id, event.level,
                )  # fmt: skip
            case e.CategoryLevelChanged():
                await conn.execute(
                    "UPDATE catalogue.category_nodes SET level = $2 WHERE category_id = $1",
                    event.category_id, event.level,
                )  # fmt: skip
            case e.ProductCreated():
                await conn.execute(
                    "INSERT INTO catalogue.category_products (product_id, category_id, seller_id, status,"
                    " visibility, restricted_to_tier) VALUES ($1, $2, $3, $4, $5, $6)",
                    event.product_id, event.category_id, event.seller_id, event.status, event.visibility,
                    event.restricted_to_tier,
                )  # fmt: skip
            case e.ProductActivated() | e.ProductDiscontinued():
                await conn.execute(
                    "UPDATE catalogue.category_products SET status = $2 WHERE product_id = $1",
                    event.product_id, _STATUS_AFTER[type(event)],
                )  # fmt: skip
            case e.ProductArchived():
                await conn.execute(
                    "DELETE FROM catalogue.category_products WHERE product_id = $1", event.product_id
                )
            case e.ProductCategoryChanged():
                await conn.execute(
                    "UPDATE catalogue.category_products SET category_id = $2 WHERE product_id = $1",
                    event.product_id, event.category_id,
                )  # fmt: skip
            case e.ProductVisibilityChanged():
                await conn.execute(
                    "UPDATE catalogue.category_products SET visibility = $2, restricted_to_tier = $3"
                    " WHERE product_id = $1",
                    event.product_id, event.visibility, event.restricted_to_tier,
                )  # fmt: skip


def _json(value: Any) -> str:
    return encoder.encode(value).decode()


PROJECTIONS = (ProductDetails(), ProductCards(), PriceHistories(), CategoryTree(), CustomerTiers())
