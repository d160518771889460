"""The bases of every command addressed to one product or one category."""

from __future__ import annotations

from bus.messages import Command


class ProductCommand(Command, frozen=True, kw_only=True):
    product_id: str
    # A seller acting on its own behalf: the product must be one it listed (checked in the transaction).
    acting_seller_id: str | None = None

    @property
    def aggregate_id(self) -> str:
        return self.product_id


class CategoryCommand(Command, frozen=True, kw_only=True):
    category_id: str

    @property
    def aggregate_id(self) -> str:
        return self.category_id
