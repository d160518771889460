"""A product's images: adding one (optionally as the primary) and removing one."""

from __future__ import annotations

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.catalogue.commands import ProductCommand
from contexts.catalogue.repository import change_product, now


@message
class AddProductImage(ProductCommand, frozen=True, kw_only=True, tag="catalogue.AddProductImage"):
    """Add an image; the first, or one sent with `is_primary`, becomes the primary image."""

    image_id: str
    url: str
    alt_text: str | None = None
    is_primary: bool = False


@message
class RemoveProductImage(ProductCommand, frozen=True, kw_only=True, tag="catalogue.RemoveProductImage"):
    """Remove an image; removing the primary makes the first remaining one primary."""

    image_id: str


async def add_product_image(command: AddProductImage, uow: UnitOfWork) -> Outcome:
    return await change_product(
        uow,
        command,
        lambda p: p.add_image(
            command.image_id,
            url=command.url,
            alt_text=command.alt_text,
            is_primary=command.is_primary,
            now=now(),
        ),
        created_id=command.image_id,
    )


async def remove_product_image(command: RemoveProductImage, uow: UnitOfWork) -> Outcome:
    return await change_product(
        uow,
        command,
        lambda p: p.remove_image(command.image_id, now=now()),
    )
