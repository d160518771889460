"""Changing a product's descriptive details and SEO data."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, UnsetType

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.catalogue.commands import ProductCommand
from contexts.catalogue.product import DETAILS
from contexts.catalogue.repository import change_product, now


@message
class UpdateProductDetails(ProductCommand, frozen=True, kw_only=True, tag="catalogue.UpdateProductDetails"):
    """Change any of the product's details; omitted fields stay as they are, `null` clears an optional one."""

    title: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    brand: str | UnsetType | None = UNSET
    attributes: dict[str, Any] | UnsetType = UNSET
    meta_title: str | UnsetType | None = UNSET
    meta_description: str | UnsetType | None = UNSET
    slug: str | UnsetType | None = UNSET


async def update_product_details(command: UpdateProductDetails, uow: UnitOfWork) -> Outcome:
    changes = {name: getattr(command, name) for name in DETAILS}
    return await change_product(uow, command, lambda p: p.update_details(now=now(), **changes))
