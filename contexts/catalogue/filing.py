"""Filing a product in another category (an existing, active one, still active at commit), or in none."""

from __future__ import annotations

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.catalogue.commands import ProductCommand
from contexts.catalogue.repository import Categories, load_product, now


@message
class ChangeProductCategory(ProductCommand, frozen=True, kw_only=True, tag="catalogue.ChangeProductCategory"):
    """File the product in another active category, or in none (`null`)."""

    category_id: str | None


async def change_product_category(command: ChangeProductCategory, uow: UnitOfWork) -> Outcome:
    async with uow:
        product = await load_product(uow, command)
        product.ensure_open()
        category = await Categories(uow).referenced("category_id", command.category_id)
        product.file_under(category, now=now())
        return await uow.commit()
