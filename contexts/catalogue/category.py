"""The Category aggregate: a node of the category tree, at most four levels below a root. Pure domain code.

Each category keeps its own `level`. The handler loads the parent and hands it in, so the depth and
"parent is active" rules are checked here. A move hands in the new parent's lineage (the cycle rule) and
the moved category's whole subtree, whose levels shift with it (the depth rule). Deactivating a category
does not touch its children or products; it only stops new ones being filed under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType
from msgspec.structs import asdict, replace

from bus.aggregate import Aggregate
from bus.errors import Validation
from bus.messages import Event
from contexts.catalogue import errors, values
from contexts.catalogue.events import (
    CategoryActivated,
    CategoryCreated,
    CategoryDeactivated,
    CategoryDetailsUpdated,
    CategoryLevelChanged,
    CategoryMoved,
    CategoryReordered,
)

MAX_LEVEL = 4
MAX_NAME = 100


class CategoryState(msgspec.Struct, frozen=True, kw_only=True):
    category_id: str
    name: str
    parent_category_id: str | None = None
    level: int = 0
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    is_active: bool = True
    display_order: int = 0
    created_at: datetime
    updated_at: datetime


class Category(Aggregate):
    aggregate_type = "Category"

    def __init__(self, state: CategoryState, version: int = 0) -> None:
        super().__init__(state.category_id, version)
        self.state = state

    @classmethod
    def create(
        cls,
        category_id: str,
        *,
        name: str,
        parent: Category | None,
        attributes: dict[str, Any] | None = None,
        now: datetime,
    ) -> Category:
        """A root (level 0) or a child one level below an active `parent`, first among its siblings."""
        check = Validation()
        state = CategoryState(
            category_id=category_id,
            name=check.check(values.text, "name", name, MAX_NAME),
            parent_category_id=parent.id if parent else None,
            level=parent.state.level + 1 if parent else 0,
            attributes=check.check(values.attributes, "attributes", attributes),
            created_at=now,
            updated_at=now,
        )
        check.done()
        if parent and not parent.is_active:
            raise errors.CategoryInactive(parent.id)
        if state.level > MAX_LEVEL:
            raise errors.CategoryTooDeep(MAX_LEVEL)
        category = cls(state)
        created = asdict(state)
        del created["updated_at"]
        category.raise_event(CategoryCreated(**created))
        return category

    @property
    def is_active(self) -> bool:
        return self.state.is_active

    @property
    def level(self) -> int:
        return self.state.level

    def update_details(
        self,
        *,
        now: datetime,
        name: str | UnsetType = UNSET,
        attributes: dict[str, Any] | UnsetType | None = UNSET,
    ) -> None:
        """Omitted fields stay as they are; `None` empties the attributes."""
        old = self.state
        check = Validation()
        new = replace(
            old,
            name=old.name if name is UNSET else check.check(values.text, "name", name, MAX_NAME),
            attributes=old.attributes
            if attributes is UNSET
            else check.check(values.attributes, "attributes", attributes),
        )
        check.done()
        if new == old:
            return
        self._change(
            new, now, CategoryDetailsUpdated(category_id=self.id, name=new.name, attributes=new.attributes)
        )

    def reorder(self, new_display_order: int, *, now: datetime) -> None:
        order = values.display_order("new_display_order", new_display_order)
        previous = self.state.display_order
        if order == previous:
            return
        reordered = CategoryReordered(
            category_id=self.id, previous_display_order=previous, display_order=order
        )
        self._change(replace(self.state, display_order=order), now, reordered)

    def deactivate(self, *, now: datetime) -> None:
        if not self.state.is_active:
            raise errors.CategoryAlreadyInactive(self.id)
        self._change(replace(self.state, is_active=False), now, CategoryDeactivated(category_id=self.id))

    def activate(self, parent: Category | None, *, now: datetime) -> None:
        """Active again, under an active `parent` (the category's own, or None for a root)."""
        if self.state.is_active:
            raise errors.CategoryAlreadyActive(self.id)
        if parent and not parent.is_active:
            raise errors.CategoryInactive(parent.id)
        self._change(replace(self.state, is_active=True), now, CategoryActivated(category_id=self.id))

    def move(self, lineage: Sequence[Category], descendants: Sequence[Category], *, now: datetime) -> None:
        """Under `lineage[0]`, or a root when `lineage` is empty, taking `descendants` (the whole subtree)
        along. `lineage` is the new parent and its ancestors, nearest first. The same parent is no change."""
        parent = lineage[0] if lineage else None
        parent_id = parent.id if parent else None
        previous = self.state.parent_category_id
        if parent_id == previous:
            return
        if any(ancestor.id == self.id for ancestor in lineage):
            raise errors.CategoryCycle(self.id, parent_id or "")
        if parent and not parent.is_active:
            raise errors.CategoryInactive(parent.id)
        level = parent.level + 1 if parent else 0
        shift = level - self.level
        if max((d.level for d in descendants), default=self.level) + shift > MAX_LEVEL or level > MAX_LEVEL:
            raise errors.CategoryTooDeep(MAX_LEVEL)
        moved = CategoryMoved(
            category_id=self.id,
            previous_parent_category_id=previous,
            parent_category_id=parent_id,
            level=level,
        )
        self._change(replace(self.state, parent_category_id=parent_id, level=level), now, moved)
        if shift:
            for descendant in descendants:
                descendant._relevel(descendant.level + shift, now)

    def _relevel(self, level: int, now: datetime) -> None:
        self._change(
            replace(self.state, level=level), now, CategoryLevelChanged(category_id=self.id, level=level)
        )

    def _change(self, new: CategoryState, now: datetime, event: Event) -> None:
        self.state = replace(new, updated_at=now)
        self.raise_event(event)
