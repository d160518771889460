"""A product's lifecycle: Draft → Active → Discontinued → Archived, and nothing else."""

from __future__ import annotations

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.catalogue.commands import ProductCommand
from contexts.catalogue.repository import change_product, now


@message
class ActivateProduct(ProductCommand, frozen=True, kw_only=True, tag="catalogue.ActivateProduct"):
    """Put a Draft product with at least one variant on sale."""


@message
class DiscontinueProduct(ProductCommand, frozen=True, kw_only=True, tag="catalogue.DiscontinueProduct"):
    """Stop selling an Active product."""


@message
class ArchiveProduct(ProductCommand, frozen=True, kw_only=True, tag="catalogue.ArchiveProduct"):
    """Archive a Discontinued product for good."""


async def activate_product(command: ActivateProduct, uow: UnitOfWork) -> Outcome:
    return await change_product(uow, command, lambda p: p.activate(now=now()))


async def discontinue_product(command: DiscontinueProduct, uow: UnitOfWork) -> Outcome:
    return await change_product(uow, command, lambda p: p.discontinue(now=now()))


async def archive_product(command: ArchiveProduct, uow: UnitOfWork) -> Outcome:
    return await change_product(uow, command, lambda p: p.archive(now=now()))
