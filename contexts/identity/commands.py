"""The base of every command addressed to one customer."""

from __future__ import annotations

from bus.messages import Command


class CustomerCommand(Command, frozen=True, kw_only=True):
    customer_id: str

    @property
    def aggregate_id(self) -> str:
        return self.customer_id
