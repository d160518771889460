"""Changing who may see and find a product: Public, Unlisted, or Tier_Restricted to a least tier."""

from __future__ import annotations

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.catalogue.commands import ProductCommand
from contexts.catalogue.repository import change_product, now


@message
class ChangeProductVisibility(
    ProductCommand, frozen=True, kw_only=True, tag="catalogue.ChangeProductVisibility"
):
    """Change the product's visibility; `restricted_to_tier` (default Silver) applies to Tier_Restricted."""

    visibility: str
    restricted_to_tier: str = "Silver"


async def change_product_visibility(command: ChangeProductVisibility, uow: UnitOfWork) -> Outcome:
    return await change_product(
        uow,
        command,
        lambda p: p.change_visibility(
            visibility=command.visibility, restricted_to_tier=command.restricted_to_tier, now=now()
        ),
    )
