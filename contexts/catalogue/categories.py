"""The category tree: creating a category (under an existing, active parent), renaming, reordering and
deactivating one."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, UnsetType

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.catalogue.category import Category
from contexts.catalogue.commands import CategoryCommand
from contexts.catalogue.repository import Categories, change_category, now


@message
class CreateCategory(CategoryCommand, frozen=True, kw_only=True, tag="catalogue.CreateCategory"):
    """Create a root category, or a child of an active one, at most four levels below a root."""

    name: str
    parent_category_id: str | None = None
    attributes: dict[str, Any] | None = None


@message
class UpdateCategory(CategoryCommand, frozen=True, kw_only=True, tag="catalogue.UpdateCategory"):
    """Rename a category or change its attributes; omitted fields stay as they are."""

    name: str | UnsetType = UNSET
    attributes: dict[str, Any] | UnsetType = UNSET


@message
class ReorderCategory(CategoryCommand, frozen=True, kw_only=True, tag="catalogue.ReorderCategory"):
    """Move a category to another place among its siblings."""

    new_display_order: int


@message
class DeactivateCategory(CategoryCommand, frozen=True, kw_only=True, tag="catalogue.DeactivateCategory"):
    """Deactivate a category: nothing new can be filed in it."""


async def create_category(command: CreateCategory, uow: UnitOfWork) -> Outcome:
    async with uow:
        categories = Categories(uow)
        parent = await categories.referenced("parent_category_id", command.parent_category_id)
        category = Category.create(
            command.category_id, name=command.name, parent=parent, attributes=command.attributes, now=now()
        )
        categories.add(category)
        return await uow.commit(created_id=command.category_id)


async def update_category(command: UpdateCategory, uow: UnitOfWork) -> Outcome:
    return await change_category(
        uow,
        command.category_id,
        command.expected_version,
        lambda c: c.update_details(name=command.name, attributes=command.attributes, now=now()),
    )


async def reorder_category(command: ReorderCategory, uow: UnitOfWork) -> Outcome:
    return await change_category(
        uow,
        command.category_id,
        command.expected_version,
        lambda c: c.reorder(command.new_display_order, now=now()),
    )


async def deactivate_category(command: DeactivateCategory, uow: UnitOfWork) -> Outcome:
    return await change_category(
        uow, command.category_id, command.expected_version, lambda c: c.deactivate(now=now())
    )
