"""A product's images: adding one (optionally as the primary), removing one, choosing the primary and
putting the gallery in order."""

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


@message
class SetPrimaryImage(ProductCommand, frozen=True, kw_only=True, tag="catalogue.SetPrimaryImage"):
    """Make an image the primary one; the image that had the flag loses it."""

    image_id: str


@message
class ReorderProductImages(ProductCommand, frozen=True, kw_only=True, tag="catalogue.ReorderProductImages"):
    """Put the gallery in a new order, naming every image exactly once."""

    image_ids: list[str]


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


async def set_primary_image(command: SetPrimaryImage, uow: UnitOfWork) -> Outcome:
    return await change_product(uow, command, lambda p: p.make_primary(command.image_id, now=now()))


async def reorder_product_images(command: ReorderProductImages, uow: UnitOfWork) -> Outcome:
    return await change_product(uow, command, lambda p: p.reorder_images(command.image_ids, now=now()))
