"""The Product aggregate: details, variants with their prices, the image gallery and the lifecycle.
Pure domain code.

`ProductState` is the whole persisted shape; the aggregate wraps one and replaces it on every change,
moving `updated_at`. Archived refuses every command before anything else is checked; after that a
missing variant or image is reported (404), then invalid values (422), then clashes with the state
(409). A command that would change nothing raises no event.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType
from msgspec.structs import asdict, replace

from bus.aggregate import Aggregate
from bus.errors import Validation
from bus.messages import Event
from contexts.catalogue import errors, images, values, variants
from contexts.catalogue.category import Category
from contexts.catalogue.events import (
    PrimaryImageChanged,
    ProductActivated,
    ProductArchived,
    ProductCategoryChanged,
    ProductCreated,
    ProductDetailsUpdated,
    ProductDiscontinued,
    ProductImageAdded,
    ProductImageRemoved,
    ProductImagesReordered,
    ProductVisibilityChanged,
    TierPriceSet,
    VariantActivated,
    VariantAdded,
    VariantDeactivated,
    VariantPriceChanged,
    VariantUpdated,
)
from contexts.catalogue.images import Image
from contexts.catalogue.values import Currency, ProductStatus, Visibility
from contexts.catalogue.variants import Variant
from contexts.contracts import Tier

__all__ = ["Image", "Product", "ProductState", "Variant"]

DETAILS = tuple(name for name in ProductDetailsUpdated.__struct_fields__ if name != "product_id")
MEASURES = tuple(
    name for name in VariantUpdated.__struct_fields__ if name not in ("product_id", "variant_id")
)
_NEXT = {
    "activate": (ProductStatus.DRAFT, ProductStatus.ACTIVE),
    "discontinue": (ProductStatus.ACTIVE, ProductStatus.DISCONTINUED),
    "archive": (ProductStatus.DISCONTINUED, ProductStatus.ARCHIVED),
}


class ProductState(msgspec.Struct, frozen=True, kw_only=True):
    product_id: str
    sku: str
    seller_id: str | None = None
    title: str
    description: str | None = None
    category_id: str | None = None
    brand: str | None = None
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    visibility: Visibility = Visibility.PUBLIC
    restricted_to_tier: Tier = Tier.SILVER
    meta_title: str | None = None
    meta_description: str | None = None
    slug: str | None = None
    status: ProductStatus = ProductStatus.DRAFT
    variants: tuple[Variant, ...] = ()
    images: tuple[Image, ...] = ()
    created_at: datetime
    updated_at: datetime


class Product(Aggregate):
    aggregate_type = "Product"

    def __init__(self, state: ProductState, version: int = 0) -> None:
        super().__init__(state.product_id, version)
        self.state = state

    @classmethod
    def create(
        cls,
        product_id: str,
        *,
        sku: str,
        title: str,
        seller_id: str | None = None,
        description: str | None = None,
        category: Category | None = None,
        brand: str | None = None,
        attributes: dict[str, Any] | None = None,
        visibility: str = Visibility.PUBLIC,
        restricted_to_tier: str = Tier.SILVER,
        meta_title: str | None = None,
        meta_description: str | None = None,
        slug: str | None = None,
        now: datetime,
    ) -> Product:
        """A Draft product; `category` is the one the handler loaded for `category_id`, if any."""
        check = Validation()
        state = ProductState(
            product_id=product_id,
            sku=check.check(values.sku, "sku", sku),
            seller_id=check.check(values.seller_id, seller_id),
            category_id=category.id if category else None,
            visibility=check.check(values.choice, Visibility, "visibility", visibility),
            restricted_to_tier=check.check(values.restricted_to_tier, restricted_to_tier),
            created_at=now,
            updated_at=now,
            **values.product_details(
                check,
                title=title,
                description=description,
                brand=brand,
                attributes=attributes,
                meta_title=meta_title,
                meta_description=meta_description,
                slug=slug,
            ),
        )
        check.done()
        if category and not category.is_active:
            raise errors.CategoryInactive(category.id)
        product = cls(state)
        created = asdict(state)
        for name in ("variants", "images", "updated_at"):
            del created[name]
        product.raise_event(ProductCreated(**created))
        return product

    @property
    def status(self) -> ProductStatus:
        return self.state.status

    @property
    def variants(self) -> tuple[Variant, ...]:
        return self.state.variants

    @property
    def images(self) -> tuple[Image, ...]:
        return self.state.images

    def variant(self, variant_id: str) -> Variant:
        return variants.find(self.state.variants, variant_id)

    def image(self, image_id: str) -> Image:
        return images.find(self.state.images, image_id)

    def update_details(
        self,
        *,
        now: datetime,
        title: str | UnsetType = UNSET,
        description: str | UnsetType | None = UNSET,
        brand: str | UnsetType | None = UNSET,
        attributes: dict[str, Any] | UnsetType | None = UNSET,
        meta_title: str | UnsetType | None = UNSET,
        meta_description: str | UnsetType | None = UNSET,
        slug: str | UnsetType | None = UNSET,
    ) -> None:
        """Omitted details stay as they are; `None` clears an optional one (and empties attributes)."""
        self._ensure_open()
        given = {
            "title": title,
            "description": description,
            "brand": brand,
            "attributes": attributes,
            "meta_title": meta_title,
            "meta_description": meta_description,
            "slug": slug,
        }
        check = Validation()
        changed = values.product_details(check, **{k: v for k, v in given.items() if v is not UNSET})
        check.done()
        new = replace(self.state, **changed)
        if new == self.state:
            return
        self._change(
            new,
            now,
            ProductDetailsUpdated(product_id=self.id, **{name: getattr(new, name) for name in DETAILS}),
        )

    def add_variant(
        self,
        variant_id: str,
        *,
        variant_sku: str,
        base_price: Decimal,
        currency: str = Currency.USD,
        attributes: dict[str, Any] | None = None,
        weight_value: Decimal | None = None,
        weight_unit: str = values.WeightUnit.KG,
        length: Decimal | None = None,
        width: Decimal | None = None,
        height: Decimal | None = None,
        dimension_unit: str = values.DimensionUnit.CM,
        now: datetime,
    ) -> Variant:
        """A new active variant without tier prices, in the currency of the product's other variants."""
        self._ensure_open()
        variant = Variant.create(
            variant_id,
            variant_sku=variant_sku,
            base_price=base_price,
            currency=currency,
            attributes=attributes,
            weight_value=weight_value,
            weight_unit=weight_unit,
            length=length,
            width=width,
            height=height,
            dimension_unit=dimension_unit,
        )
        listed = variants.add(self.state.variants, variant)
        self._change(
            replace(self.state, variants=listed), now, VariantAdded(product_id=self.id, **asdict(variant))
        )
        return variant

    def change_price(
        self, variant_id: str, *, base_price: Decimal, currency: str | UnsetType = UNSET, now: datetime
    ) -> None:
        """Tier prices are kept and must stay below the new base price. The currency may change only
        while the product has no other variant; kept tier prices must then fit the new currency."""
        self._ensure_open()
        old = self.variant(variant_id)
        check = Validation()
        priced_in = (
            old.currency if currency is UNSET else check.check(values.choice, Currency, "currency", currency)
        )
        if priced_in is not None:
            base_price = check.check(values.money, "base_price", base_price, priced_in)
        check.done()
        if base_price == old.base_price and priced_in == old.currency:
            return
        listed = variants.reprice(self.state.variants, variant_id, base_price, priced_in)
        changed = VariantPriceChanged(
            product_id=self.id,
            variant_id=variant_id,
            previous_price=old.base_price,
            new_price=base_price,
            previous_currency=old.currency,
            currency=priced_in,
        )
        self._change(replace(self.state, variants=listed), now, changed)

    def set_tier_price(self, variant_id: str, *, tier: str, price: Decimal, now: datetime) -> None:
        """Silver, Gold and Platinum customers may pay less than the base price, never as much."""
        self._ensure_open()
        old = self.variant(variant_id)
        check = Validation()
        priced_tier = check.check(values.priced_tier, tier)
        price = check.check(values.money, "price", price, old.currency)
        check.done()
        if old.tier_prices.get(priced_tier) == price:
            return
        listed = variants.set_tier_price(self.state.variants, variant_id, priced_tier, price)
        changed = TierPriceSet(
            product_id=self.id, variant_id=variant_id, tier=priced_tier, price=price, currency=old.currency
        )
        self._change(replace(self.state, variants=listed), now, changed)

    def add_image(
        self, image_id: str, *, url: str, alt_text: str | None = None, is_primary: bool = False, now: datetime
    ) -> Image:
        """The first image is primary; adding another with `is_primary` moves the flag to it."""
        self._ensure_open()
        image = Image.create(image_id, url=url, alt_text=alt_text, is_primary=is_primary)
        gallery, displaced = images.add(self.state.images, image)
        added = images.find(gallery, image_id)
        event = ProductImageAdded(product_id=self.id, **asdict(added), previous_primary_id=displaced)
        self._change(replace(self.state, images=gallery), now, event)
        return added

    def remove_image(self, image_id: str, *, now: datetime) -> None:
        """Removing the primary makes the remaining image first in display order the primary."""
        self._ensure_open()
        gallery, new_primary_id = images.remove(self.state.images, image_id)
        removed = ProductImageRemoved(product_id=self.id, image_id=image_id, new_primary_id=new_primary_id)
        self._change(replace(self.state, images=gallery), now, removed)

    def update_variant(self, variant_id: str, *, now: datetime, **given: Any) -> None:
        """Any of the variant's attributes and measures (`MEASURES`), checked as on adding; omitted ones
        (UNSET) stay, `None` clears a measure (and empties attributes)."""
        self._ensure_open()
        old = self.variant(variant_id)
        check = Validation()
        changed = variants.checked_measures(check, **{k: v for k, v in given.items() if v is not UNSET})
        check.done()
        new = replace(old, **changed)
        if new == old:
            return
        listed = variants.update(self.state.variants, variant_id, changed)
        updated = VariantUpdated(
            product_id=self.id, variant_id=variant_id, **{name: getattr(new, name) for name in MEASURES}
        )
        self._change(replace(self.state, variants=listed), now, updated)

    def deactivate_variant(self, variant_id: str, *, now: datetime) -> None:
        """The variant is no longer sold; an Active product keeps at least one active variant."""
        self._ensure_open()
        listed = variants.set_active(
            self.state.variants, variant_id, False, product_active=self.status == ProductStatus.ACTIVE
        )
        event = VariantDeactivated(product_id=self.id, variant_id=variant_id)
        self._change(replace(self.state, variants=listed), now, event)

    def activate_variant(self, variant_id: str, *, now: datetime) -> None:
        """An inactive variant is sold again."""
        self._ensure_open()
        listed = variants.set_active(self.state.variants, variant_id, True, product_active=False)
        event = VariantActivated(product_id=self.id, variant_id=variant_id)
        self._change(replace(self.state, variants=listed), now, event)

    def file_under(self, category: Category | None, *, now: datetime) -> None:
        """File the product in `category` (the one the handler loaded), which must be active, or in none.
        Naming the category it is already in changes nothing, even an inactive one."""
        self._ensure_open()
        category_id = category.id if category else None
        if category_id == self.state.category_id:
            return
        if category and not category.is_active:
            raise errors.CategoryInactive(category.id)
        moved = ProductCategoryChanged(
            product_id=self.id, category_id=category_id, previous_category_id=self.state.category_id
        )
        self._change(replace(self.state, category_id=category_id), now, moved)

    def change_visibility(
        self, *, visibility: str, restricted_to_tier: str = Tier.SILVER, now: datetime
    ) -> None:
        """Who may see the product: Public, Unlisted, or Tier_Restricted to customers of at least a tier."""
        self._ensure_open()
        check = Validation()
        new = replace(
            self.state,
            visibility=check.check(values.choice, Visibility, "visibility", visibility),
            restricted_to_tier=check.check(values.restricted_to_tier, restricted_to_tier),
        )
        check.done()
        if new == self.state:
            return
        changed = ProductVisibilityChanged(
            product_id=self.id, visibility=new.visibility, restricted_to_tier=new.restricted_to_tier
        )
        self._change(new, now, changed)

    def make_primary(self, image_id: str, *, now: datetime) -> None:
        """The image becomes the primary one; the flag leaves the image that had it."""
        self._ensure_open()
        if self.image(image_id).is_primary:
            return
        gallery, displaced = images.make_primary(self.state.images, image_id)
        event = PrimaryImageChanged(product_id=self.id, image_id=image_id, previous_primary_id=displaced)
        self._change(replace(self.state, images=gallery), now, event)

    def reorder_images(self, image_ids: list[str], *, now: datetime) -> None:
        """Put the gallery in the order of `image_ids`, every image exactly once; the primary stays."""
        self._ensure_open()
        gallery = images.reorder(self.state.images, image_ids)
        if [i.image_id for i in gallery] == [i.image_id for i in self.state.images]:
            return
        event = ProductImagesReordered(product_id=self.id, image_ids=[i.image_id for i in gallery])
        self._change(replace(self.state, images=gallery), now, event)

    def activate(self, *, now: datetime) -> None:
        """Draft → Active, once the product has at least one active variant to sell."""
        self._ensure_open()
        self._ensure_may("activate")
        if not any(v.is_active for v in self.state.variants):
            raise errors.VariantRequired()
        self._move("activate", now, ProductActivated(product_id=self.id))

    def discontinue(self, *, now: datetime) -> None:
        """Active → Discontinued."""
        self._ensure_open()
        self._ensure_may("discontinue")
        self._move("discontinue", now, ProductDiscontinued(product_id=self.id))

    def archive(self, *, now: datetime) -> None:
        """Discontinued → Archived, for good."""
        self._ensure_open()
        self._ensure_may("archive")
        self._move("archive", now, ProductArchived(product_id=self.id))

    def ensure_open(self) -> None:
        """Refuse (409) if the product is archived: checked before anything else a command reads."""
        self._ensure_open()

    def _ensure_open(self) -> None:
        if self.state.status == ProductStatus.ARCHIVED:
            raise errors.ProductArchived(self.id)

    def _ensure_may(self, action: str) -> None:
        if self.state.status != _NEXT[action][0]:
            raise errors.TransitionNotAllowed(action, self.state.status)

    def _move(self, action: str, now: datetime, event: Event) -> None:
        self._change(replace(self.state, status=_NEXT[action][1]), now, event)

    def _change(self, new: ProductState, now: datetime, event: Event) -> None:
        self.state = replace(new, updated_at=now)
        self.raise_event(event)
