"""State conflicts (409) and missing sub-entities (404) of the catalogue context."""

from __future__ import annotations

from decimal import Decimal

from bus.errors import Conflict, Forbidden, NotFound


class ProductArchived(Conflict):
    kind = "product-archived"

    def __init__(self, product_id: str) -> None:
        super().__init__(f"product {product_id} is archived and accepts no further changes")


class TransitionNotAllowed(Conflict):
    kind = "transition-not-allowed"

    def __init__(self, action: str, status: str) -> None:
        super().__init__(f"cannot {action} a product whose status is {status}")


class VariantRequired(Conflict):
    kind = "variant-required"

    def __init__(self) -> None:
        super().__init__("a product needs at least one active variant before it can be activated")


class ActiveVariantRequired(Conflict):
    kind = "active-variant-required"

    def __init__(self, variant_id: str) -> None:
        super().__init__(
            f"variant {variant_id} is the last active one of an Active product; it cannot be deactivated"
        )


class VariantAlreadyInactive(Conflict):
    kind = "variant-already-inactive"

    def __init__(self, variant_id: str) -> None:
        super().__init__(f"variant {variant_id} is already inactive")


class VariantAlreadyActive(Conflict):
    kind = "variant-already-active"

    def __init__(self, variant_id: str) -> None:
        super().__init__(f"variant {variant_id} is already active")


class VariantLimitReached(Conflict):
    kind = "variant-limit-reached"

    def __init__(self, limit: int) -> None:
        super().__init__(f"a product has at most {limit} variants")


class ImageLimitReached(Conflict):
    kind = "image-limit-reached"

    def __init__(self, limit: int) -> None:
        super().__init__(f"a product has at most {limit} images")


class TierPriceNotBelowBase(Conflict):
    kind = "tier-price-not-below-base"

    def __init__(self, tier: str, price: Decimal, base_price: Decimal) -> None:
        super().__init__(f"the {tier} price {price} must stay below the base price {base_price}")


class CurrencyMismatch(Conflict):
    kind = "currency-mismatch"

    def __init__(self, expected: str, given: str) -> None:
        super().__init__(f"every variant of a product is priced in one currency: {expected}, not {given}")


class TierPriceCurrencyMismatch(Conflict):
    """A currency change would leave a tier price with more minor digits than the new currency has."""

    kind = "tier-price-currency-mismatch"

    def __init__(self, tier: str, price: Decimal, currency: str) -> None:
        super().__init__(f"the {tier} price {price} cannot be expressed in {currency}")


class CategoryInactive(Conflict):
    kind = "category-inactive"

    def __init__(self, category_id: str) -> None:
        super().__init__(f"category {category_id} is inactive; nothing can be filed under it")


class CategoryTooDeep(Conflict):
    kind = "category-too-deep"

    def __init__(self, limit: int) -> None:
        super().__init__(f"categories nest at most {limit} levels below a root")


class CategoryAlreadyInactive(Conflict):
    kind = "category-already-inactive"

    def __init__(self, category_id: str) -> None:
        super().__init__(f"category {category_id} is already inactive")


class CategoryAlreadyActive(Conflict):
    kind = "category-already-active"

    def __init__(self, category_id: str) -> None:
        super().__init__(f"category {category_id} is already active")


class CategoryCycle(Conflict):
    kind = "category-cycle"

    def __init__(self, category_id: str, parent_id: str) -> None:
        super().__init__(
            f"category {parent_id} is {category_id} or lies below it; a category cannot move under itself"
        )


class SkuTaken(Conflict):
    """Raised when the database refuses a second product with the same SKU (in any case)."""

    kind = "sku-taken"

    def __init__(self, sku: str) -> None:
        super().__init__(f"a product with SKU {sku} already exists")


class SlugTaken(Conflict):
    """Raised when the database refuses a slug another product that is not archived holds (in any case)."""

    kind = "slug-taken"

    def __init__(self, slug: str | None) -> None:
        super().__init__(f"another product already has the slug {slug}")


class VariantSkuTaken(Conflict):
    """Variant SKUs are unique across every product: the product checks its own, the database the rest."""

    kind = "variant-sku-taken"

    def __init__(self, variant_sku: str) -> None:
        super().__init__(f"a variant with SKU {variant_sku} already exists")


class VariantExists(Conflict):
    kind = "variant-exists"

    def __init__(self, variant_id: str) -> None:
        super().__init__(f"variant {variant_id} already exists")


class ImageExists(Conflict):
    kind = "image-exists"

    def __init__(self, image_id: str) -> None:
        super().__init__(f"image {image_id} already exists")


class AnotherSellersProduct(Forbidden):
    def __init__(self, product_id: str) -> None:
        super().__init__(f"product {product_id} is listed by another seller")


class VariantNotFound(NotFound):
    def __init__(self, variant_id: str) -> None:
        super().__init__("variant", variant_id)


class ImageNotFound(NotFound):
    def __init__(self, image_id: str) -> None:
        super().__init__("image", image_id)
