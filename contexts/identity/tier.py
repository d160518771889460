"""Loyalty tiers: a customer only moves up."""

from __future__ import annotations

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.identity.commands import CustomerCommand
from contexts.identity.repository import change_customer


@message
class UpgradeTier(CustomerCommand, frozen=True, kw_only=True, tag="identity.UpgradeTier"):
    """Move the customer up to a higher loyalty tier."""

    new_tier: str


async def upgrade_tier(command: UpgradeTier, uow: UnitOfWork) -> Outcome:
    return await change_customer(uow, command, lambda c: c.upgrade_tier(command.new_tier))
