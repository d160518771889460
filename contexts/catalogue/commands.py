"""The bases of every command addressed to one product or one category."""

from __future__ import annotations

from bus.messages import Command


class ProductCommand(Command, frozen=True, kw_only=True):
    product_id: str

    @property
    def aggregate_id(self) -> str:
        return self.product_id


class CategoryCommand(Command, frozen=True, kw_only=True):
    category_id: str

    @property
    def aggregate_id(self) -> str:
        return self.category_id
