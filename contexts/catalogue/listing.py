"""Listing a new product, filed in an existing, active category if one is given."""

from __future__ import annotations

from typing import Any

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.catalogue.commands import ProductCommand
from contexts.catalogue.product import Product
from contexts.catalogue.repository import Categories, Products, now


@message
class CreateProduct(ProductCommand, frozen=True, kw_only=True, tag="catalogue.CreateProduct"):
    """List a new product as a Draft."""

    sku: str
    title: str
    seller_id: str | None = None
    description: str | None = None
    category_id: str | None = None
    brand: str | None = None
    attributes: dict[str, Any] | None = None
    visibility: str = "Public"
    restricted_to_tier: str = "Silver"
    meta_title: str | None = None
    meta_description: str | None = None
    slug: str | None = None


async def create_product(command: CreateProduct, uow: UnitOfWork) -> Outcome:
    async with uow:
        category = await Categories(uow).referenced("category_id", command.category_id)
        product = Product.create(
            command.product_id,
            sku=command.sku,
            title=command.title,
            seller_id=command.seller_id,
            description=command.description,
            category=category,
            brand=command.brand,
            attributes=command.attributes,
            visibility=command.visibility,
            restricted_to_tier=command.restricted_to_tier,
            meta_title=command.meta_title,
            meta_description=command.meta_description,
            slug=command.slug,
            now=now(),
        )
        Products(uow).add(product)
        return await uow.commit(created_id=command.product_id)
