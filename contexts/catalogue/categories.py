"""The category tree: creating a category (under an existing, active parent), renaming, reordering,
moving (with its whole subtree), deactivating and activating one.

What a command decided on still holds at commit, also when it decided on other categories. No commit
ever leaves a cycle, a level above 4, or a stored `level` that is not the category's depth:

- A create under Q reads Q and its ancestors (Q's lineage) and inserts the child. A move of X under P
  reads P's lineage and the subtree below X (its rows and which they are), and writes X and, when its
  level changes, every node below it. Activation reads the parent and writes the category.
- Every command re-checks its whole read at commit, after its writes and in the same transaction:
  each row read must still be at the version read (`FOR SHARE`, held until commit), and the subtree
  below X must still hold exactly the categories read.
- Two commands where one writes a row R the other read: if the write comes first, the reader's check
  waits for the writer's commit, sees a new version and fails; if the check comes first, the write waits
  until the reader has committed, so the reader comes first in commit order and decided on the state
  before the write. Each pair crossing both ways ends in a failed check or a deadlock that PostgreSQL
  breaks by rolling one back. A failed command re-runs on fresh state.
- A create (or a move) under Q adds a row to every subtree Q lies in, a row no version check sees. But
  it tracks Q's whole lineage, which holds the root X of any such subtree, and a move of X writes X.
  If the create's check of X comes first, the move's write of X waits until the create commits, so
  the move's subtree re-check, later in its transaction, sees the new child and fails; otherwise the
  create's check waits for the move and fails.
- So the commits are equivalent to running the commands one at a time in commit order, each deciding on
  exactly the state the previous ones left; each decision keeps the tree acyclic and every level at most
  4, so every committed state does.
"""

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


@message
class MoveCategory(CategoryCommand, frozen=True, kw_only=True, tag="catalogue.MoveCategory"):
    """Move a category and its whole subtree under another active parent, or make it a root."""

    parent_category_id: str | None


@message
class ActivateCategory(CategoryCommand, frozen=True, kw_only=True, tag="catalogue.ActivateCategory"):
    """Activate an inactive category under an active parent."""


async def create_category(command: CreateCategory, uow: UnitOfWork) -> Outcome:
    async with uow:
        categories = Categories(uow)
        lineage = await categories.lineage("parent_category_id", command.parent_category_id)
        category = Category.create(
            command.category_id,
            name=command.name,
            parent=lineage[0] if lineage else None,
            attributes=command.attributes,
            now=now(),
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


async def move_category(command: MoveCategory, uow: UnitOfWork) -> Outcome:
    async with uow:
        categories = Categories(uow)
        category = await categories.get(command.category_id, command.expected_version)
        lineage = await categories.lineage("parent_category_id", command.parent_category_id)
        category.move(lineage, await categories.subtree(category), now=now())
        return await uow.commit()


async def activate_category(command: ActivateCategory, uow: UnitOfWork) -> Outcome:
    async with uow:
        categories = Categories(uow)
        category = await categories.get(command.category_id, command.expected_version)
        parent_id = category.state.parent_category_id
        category.activate(None if parent_id is None else await categories.find(parent_id), now=now())
        return await uow.commit()
