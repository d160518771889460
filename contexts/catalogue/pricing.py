"""Variants and their prices: adding a variant, changing its base price, setting a tier price."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from msgspec import UNSET, UnsetType

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.catalogue.commands import ProductCommand
from contexts.catalogue.repository import change_product, now


@message
class AddVariant(ProductCommand, frozen=True, kw_only=True, tag="catalogue.AddVariant"):
    """Add a purchasable variant with its base price and measures."""

    variant_id: str
    variant_sku: str
    base_price: Decimal
    currency: str = "USD"
    attributes: dict[str, Any] | None = None
    weight_value: Decimal | None = None
    weight_unit: str = "kg"
    length: Decimal | None = None
    width: Decimal | None = None
    height: Decimal | None = None
    dimension_unit: str = "cm"


@message
class ChangeVariantPrice(ProductCommand, frozen=True, kw_only=True, tag="catalogue.ChangeVariantPrice"):
    """Change a variant's base price; its tier prices stay and must remain below it."""

    variant_id: str
    base_price: Decimal
    currency: str | UnsetType = UNSET


@message
class SetTierPrice(ProductCommand, frozen=True, kw_only=True, tag="catalogue.SetTierPrice"):
    """Set the price customers of one loyalty tier pay for a variant."""

    variant_id: str
    tier: str
    price: Decimal


_VARIANT_FIELDS = tuple(
    name
    for name in AddVariant.__struct_fields__
    if name not in ("product_id", "expected_version", "acting_seller_id", "variant_id")
)


async def add_variant(command: AddVariant, uow: UnitOfWork) -> Outcome:
    fields = {name: getattr(command, name) for name in _VARIANT_FIELDS}
    return await change_product(
        uow,
        command,
        lambda p: p.add_variant(command.variant_id, now=now(), **fields),
        created_id=command.variant_id,
    )


async def change_variant_price(command: ChangeVariantPrice, uow: UnitOfWork) -> Outcome:
    return await change_product(
        uow,
        command,
        lambda p: p.change_price(
            command.variant_id, base_price=command.base_price, currency=command.currency, now=now()
        ),
    )


async def set_tier_price(command: SetTierPrice, uow: UnitOfWork) -> Outcome:
    return await change_product(
        uow,
        command,
        lambda p: p.set_tier_price(command.variant_id, tier=command.tier, price=command.price, now=now()),
    )
