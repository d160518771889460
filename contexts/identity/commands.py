"""The base of every command addressed to one customer."""

from __future__ import annotations

from bus.messages import Command


class CustomerCommand(Command, frozen=True, kw_only=True):
    customer_id: str
    # A customer acting on its own behalf (its external id): the customer addressed must be itself.
    acting_external_id: str | None = None

    @property
    def aggregate_id(self) -> str:
        return self.customer_id
