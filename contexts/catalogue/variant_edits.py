"""Changing a variant once added: its attributes and measures, and whether it is sold at all."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from msgspec import UNSET, UnsetType

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.catalogue.commands import ProductCommand
from contexts.catalogue.product import MEASURES
from contexts.catalogue.repository import change_product, now


@message
class UpdateVariant(ProductCommand, frozen=True, kw_only=True, tag="catalogue.UpdateVariant"):
    """Change any of a variant's attributes and measures; omitted fields stay, `null` clears a measure."""

    variant_id: str
    attributes: dict[str, Any] | UnsetType = UNSET
    weight_value: Decimal | UnsetType | None = UNSET
    weight_unit: str | UnsetType = UNSET
    length: Decimal | UnsetType | None = UNSET
    width: Decimal | UnsetType | None = UNSET
    height: Decimal | UnsetType | None = UNSET
    dimension_unit: str | UnsetType = UNSET


@message
class DeactivateVariant(ProductCommand, frozen=True, kw_only=True, tag="catalogue.DeactivateVariant"):
    """Stop selling a variant; an Active product keeps at least one active variant."""

    variant_id: str


@message
class ActivateVariant(ProductCommand, frozen=True, kw_only=True, tag="catalogue.ActivateVariant"):
    """Sell a deactivated variant again."""

    variant_id: str


async def update_variant(command: UpdateVariant, uow: UnitOfWork) -> Outcome:
    changes = {name: getattr(command, name) for name in MEASURES}
    return await change_product(
        uow, command, lambda p: p.update_variant(command.variant_id, now=now(), **changes)
    )


async def deactivate_variant(command: DeactivateVariant, uow: UnitOfWork) -> Outcome:
    return await change_product(uow, command, lambda p: p.deactivate_variant(command.variant_id, now=now()))


async def activate_variant(command: ActivateVariant, uow: UnitOfWork) -> Outcome:
    return await change_product(uow, command, lambda p: p.activate_variant(command.variant_id, now=now()))
