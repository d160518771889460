"""Events of the Product and Category aggregates; each carries the ids and the new values a projection
needs, money as `Decimal` (a decimal string on the wire), never an inexact binary number.

Every event is self-sufficient: when a primary image moves as a side effect, the event names the image
that lost the flag (`previous_primary_id`) or gained it (`new_primary_id`); a details change carries
every detail, so a reader overwrites its copy without reading the aggregate.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from bus.messages import Event, message


@message
class ProductCreated(Event, frozen=True, kw_only=True, tag="catalogue.ProductCreated"):
    """A seller listed a new product; it starts as a Draft with no variants and no images."""

    product_id: str
    sku: str
    seller_id: str | None
    title: str
    description: str | None
    category_id: str | None
    brand: str | None
    attributes: dict[str, Any]
    visibility: str
    meta_title: str | None
    meta_description: str | None
    slug: str | None
    status: str
    created_at: datetime
    restricted_to_tier: str = "Silver"  # added later: events stored before it were all Silver


@message
class ProductDetailsUpdated(Event, frozen=True, kw_only=True, tag="catalogue.ProductDetailsUpdated"):
    """The product's descriptive details changed; it carries all of them after the change."""

    product_id: str
    title: str
    description: str | None
    brand: str | None
    attributes: dict[str, Any]
    meta_title: str | None
    meta_description: str | None
    slug: str | None


@message
class VariantAdded(Event, frozen=True, kw_only=True, tag="catalogue.VariantAdded"):
    """A purchasable variant joined the product, with its price, tier prices and measures."""

    product_id: str
    variant_id: str
    variant_sku: str
    attributes: dict[str, Any]
    base_price: Decimal
    currency: str
    tier_prices: dict[str, Decimal]
    weight_value: Decimal | None
    weight_unit: str
    length: Decimal | None
    width: Decimal | None
    height: Decimal | None
    dimension_unit: str
    is_active: bool


@message
class VariantPriceChanged(Event, frozen=True, kw_only=True, tag="catalogue.VariantPriceChanged"):
    """A variant's base price changed; its tier prices stayed as they were."""

    product_id: str
    variant_id: str
    previous_price: Decimal
    new_price: Decimal
    previous_currency: str
    currency: str


@message
class TierPriceSet(Event, frozen=True, kw_only=True, tag="catalogue.TierPriceSet"):
    """Customers of a loyalty tier now pay this price for the variant."""

    product_id: str
    variant_id: str
    tier: str
    price: Decimal
    currency: str


@message
class ProductImageAdded(Event, frozen=True, kw_only=True, tag="catalogue.ProductImageAdded"):
    """An image joined the product; if primary, it took the flag from `previous_primary_id`."""

    product_id: str
    image_id: str
    url: str
    alt_text: str | None
    is_primary: bool
    display_order: int
    previous_primary_id: str | None = None


@message
class ProductImageRemoved(Event, frozen=True, kw_only=True, tag="catalogue.ProductImageRemoved"):
    """An image left the product; if it was the primary, `new_primary_id` took the flag."""

    product_id: str
    image_id: str
    new_primary_id: str | None = None


@message
class ProductActivated(Event, frozen=True, kw_only=True, tag="catalogue.ProductActivated"):
    """The product went on sale."""

    product_id: str


@message
class ProductDiscontinued(Event, frozen=True, kw_only=True, tag="catalogue.ProductDiscontinued"):
    """The product is no longer sold."""

    product_id: str


@message
class ProductArchived(Event, frozen=True, kw_only=True, tag="catalogue.ProductArchived"):
    """The product was archived for good; it accepts no further changes."""

    product_id: str


@message
class ProductCategoryChanged(Event, frozen=True, kw_only=True, tag="catalogue.ProductCategoryChanged"):
    """The product was filed in another category (`category_id`), or in none (null)."""

    product_id: str
    category_id: str | None
    previous_category_id: str | None


@message
class ProductVisibilityChanged(Event, frozen=True, kw_only=True, tag="catalogue.ProductVisibilityChanged"):
    """Who may see and find the product changed; it carries the visibility and its least tier after the change."""

    product_id: str
    visibility: str
    restricted_to_tier: str


@message
class VariantUpdated(Event, frozen=True, kw_only=True, tag="catalogue.VariantUpdated"):
    """A variant's attributes or measures changed; it carries all of them after the change."""

    product_id: str
    variant_id: str
    attributes: dict[str, Any]
    weight_value: Decimal | None
    weight_unit: str
    length: Decimal | None
    width: Decimal | None
    height: Decimal | None
    dimension_unit: str


@message
class VariantDeactivated(Event, frozen=True, kw_only=True, tag="catalogue.VariantDeactivated"):
    """The variant is no longer sold; it leaves the product's prices and searches."""

    product_id: str
    variant_id: str


@message
class VariantActivated(Event, frozen=True, kw_only=True, tag="catalogue.VariantActivated"):
    """A deactivated variant is sold again."""

    product_id: str
    variant_id: str


@message
class PrimaryImageChanged(Event, frozen=True, kw_only=True, tag="catalogue.PrimaryImageChanged"):
    """Another image became the product's primary image, taking the flag from `previous_primary_id`."""

    product_id: str
    image_id: str
    previous_primary_id: str | None


@message
class ProductImagesReordered(Event, frozen=True, kw_only=True, tag="catalogue.ProductImagesReordered"):
    """The gallery was put in a new order: each image's `display_order` is its place in `image_ids`."""

    product_id: str
    image_ids: list[str]


@message
class CategoryCreated(Event, frozen=True, kw_only=True, tag="catalogue.CategoryCreated"):
    """A category was created, active, as a root (level 0) or under an active parent."""

    category_id: str
    name: str
    parent_category_id: str | None
    level: int
    attributes: dict[str, Any]
    is_active: bool
    display_order: int
    created_at: datetime


@message
class CategoryDetailsUpdated(Event, frozen=True, kw_only=True, tag="catalogue.CategoryDetailsUpdated"):
    """The category's name or attributes changed; it carries both after the change."""

    category_id: str
    name: str
    attributes: dict[str, Any]


@message
class CategoryReordered(Event, frozen=True, kw_only=True, tag="catalogue.CategoryReordered"):
    """The category moved to another place among its siblings."""

    category_id: str
    previous_display_order: int
    display_order: int


@message
class CategoryDeactivated(Event, frozen=True, kw_only=True, tag="catalogue.CategoryDeactivated"):
    """The category was deactivated: no product or child category can be filed in it any more."""

    category_id: str


@message
class CategoryMoved(Event, frozen=True, kw_only=True, tag="catalogue.CategoryMoved"):
    """The category, with its whole subtree, moved under another parent (or became a root), at `level`."""

    category_id: str
    previous_parent_category_id: str | None
    parent_category_id: str | None
    level: int


@message
class CategoryLevelChanged(Event, frozen=True, kw_only=True, tag="catalogue.CategoryLevelChanged"):
    """An ancestor of the category moved, taking it along to another depth of the tree."""

    category_id: str
    level: int


@message
class CategoryActivated(Event, frozen=True, kw_only=True, tag="catalogue.CategoryActivated"):
    """The category was activated again: products and child categories can be filed in it."""

    category_id: str
