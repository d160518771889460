"""A product's variants: the Variant entity and the rules that hold over all of them.

The list is an immutable tuple in the order variants were added; every operation returns a new one.
All variants of a product are priced in one currency, so a product card shows one price range, and
every tier price stays strictly below its variant's base price. An inactive variant stays in the list
(with its prices) but is not sold: it leaves the card's prices, searches and the customer's price.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

import msgspec
from msgspec.structs import replace

from bus.errors import Invalid, Validation
from contexts.catalogue import errors, values
from contexts.catalogue.values import Currency, DimensionUnit, WeightUnit
from contexts.contracts import Tier


class Variant(msgspec.Struct, frozen=True, kw_only=True):
    variant_id: str
    variant_sku: str
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    base_price: Decimal
    currency: Currency = Currency.USD
    tier_prices: dict[Tier, Decimal] = msgspec.field(default_factory=dict)
    weight_value: Decimal | None = None
    weight_unit: WeightUnit = WeightUnit.KG
    length: Decimal | None = None
    width: Decimal | None = None
    height: Decimal | None = None
    dimension_unit: DimensionUnit = DimensionUnit.CM
    is_active: bool = True

    @classmethod
    def create(
        cls,
        variant_id: str,
        *,
        variant_sku: str,
        base_price: Decimal,
        currency: str = Currency.USD,
        attributes: dict[str, Any] | None = None,
        weight_value: Decimal | None = None,
        weight_unit: str = WeightUnit.KG,
        length: Decimal | None = None,
        width: Decimal | None = None,
        height: Decimal | None = None,
        dimension_unit: str = DimensionUnit.CM,
    ) -> Variant:
        """A checked variant, active and without tier prices; each invalid value names its API field."""
        check = Validation()
        priced_in = check.check(values.choice, Currency, "currency", currency)
        if priced_in is not None:  # an unknown currency is reported once: no price can be judged without it
            base_price = check.check(values.money, "base_price", base_price, priced_in)
        variant = cls(
            variant_id=variant_id,
            variant_sku=check.check(values.sku, "variant_sku", variant_sku),
            attributes=check.check(values.attributes, "attributes", attributes),
            base_price=base_price,
            currency=priced_in,
            weight_value=check.check(values.measure, "weight_value", weight_value),
            weight_unit=check.check(values.choice, WeightUnit, "weight_unit", weight_unit),
            length=check.check(values.measure, "length", length),
            width=check.check(values.measure, "width", width),
            height=check.check(values.measure, "height", height),
            dimension_unit=check.check(values.choice, DimensionUnit, "dimension_unit", dimension_unit),
        )
        check.done()
        return variant


Variants = tuple[Variant, ...]


def find(variants: Variants, variant_id: str) -> Variant:
    for variant in variants:
        if variant.variant_id == variant_id:
            return variant
    raise errors.VariantNotFound(variant_id)


MAX_VARIANTS = 100  # every variant is repeated in each event and read of the product


def add(variants: Variants, variant: Variant) -> Variants:
    if len(variants) >= MAX_VARIANTS:
        raise errors.VariantLimitReached(MAX_VARIANTS)
    if any(v.variant_id == variant.variant_id for v in variants):
        raise errors.VariantExists(variant.variant_id)
    if any(v.variant_sku == variant.variant_sku for v in variants):
        raise errors.VariantSkuTaken(variant.variant_sku)
    if variants and variants[0].currency != variant.currency:
        raise errors.CurrencyMismatch(variants[0].currency, variant.currency)
    return (*variants, variant)


def reprice(variants: Variants, variant_id: str, base_price: Decimal, currency: Currency) -> Variants:
    """The list with a new base price (and currency) on one variant; its tier prices stay and must
    stay below the new base. The currency may change only while this is the product's one variant."""
    old = find(variants, variant_id)
    tier_prices = old.tier_prices
    if currency != old.currency:
        if len(variants) > 1:
            raise errors.CurrencyMismatch(old.currency, currency)
        tier_prices = {tier: _in_currency(tier, price, currency) for tier, price in tier_prices.items()}
    for tier, price in tier_prices.items():
        if price >= base_price:
            raise errors.TierPriceNotBelowBase(tier, price, base_price)
    return _replaced(
        variants, replace(old, base_price=base_price, currency=currency, tier_prices=tier_prices)
    )


def set_tier_price(variants: Variants, variant_id: str, tier: Tier, price: Decimal) -> Variants:
    old = find(variants, variant_id)
    if price >= old.base_price:
        raise errors.TierPriceNotBelowBase(tier, price, old.base_price)
    return _replaced(variants, replace(old, tier_prices={**old.tier_prices, tier: price}))


# The fields a variant's update may change, each with its check as on adding (`None` clears a measure).
MEASURES: dict[str, Any] = {
    "attributes": partial(values.attributes, "attributes"),
    "weight_value": partial(values.measure, "weight_value"),
    "weight_unit": partial(values.choice, WeightUnit, "weight_unit"),
    "length": partial(values.measure, "length"),
    "width": partial(values.measure, "width"),
    "height": partial(values.measure, "height"),
    "dimension_unit": partial(values.choice, DimensionUnit, "dimension_unit"),
}


def checked_measures(check: Validation, **given: Any) -> dict[str, Any]:
    """The checked value of each variant field given; every failure is collected in `check`."""
    return {name: check.check(MEASURES[name], value) for name, value in given.items()}


def update(variants: Variants, variant_id: str, changes: dict[str, Any]) -> Variants:
    return _replaced(variants, replace(find(variants, variant_id), **changes))


def set_active(variants: Variants, variant_id: str, active: bool, *, product_active: bool) -> Variants:
    """The list with the variant (de)activated; an Active product keeps at least one active variant."""
    old = find(variants, variant_id)
    if old.is_active == active:
        raise (errors.VariantAlreadyActive if active else errors.VariantAlreadyInactive)(variant_id)
    if not active and product_active and not any(v.is_active for v in variants if v is not old):
        raise errors.ActiveVariantRequired(variant_id)
    return _replaced(variants, replace(old, is_active=active))


def _in_currency(tier: Tier, price: Decimal, currency: Currency) -> Decimal:
    try:
        return values.money("price", price, currency)
    except Invalid:
        raise errors.TierPriceCurrencyMismatch(tier, price, currency) from None


def _replaced(variants: Variants, new: Variant) -> Variants:
    return tuple(new if v.variant_id == new.variant_id else v for v in variants)
