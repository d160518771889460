"""Erasing a closed customer's personal data (SPEC §11): the data key goes with the erased state."""

from __future__ import annotations

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.identity.commands import CustomerCommand
from contexts.identity.repository import change_customer


@message
class ErasePersonalData(CustomerCommand, frozen=True, kw_only=True, tag="identity.ErasePersonalData"):
    """Forget everything personal about a closed customer; its events stay, unreadable."""


async def erase_personal_data(command: ErasePersonalData, uow: UnitOfWork) -> Outcome:
    return await change_customer(uow, command, lambda customer: customer.erase_personal_data())
