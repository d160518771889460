"""Updating a customer's profile: omitted fields stay, `null` clears an optional one."""

from __future__ import annotations

from datetime import date

from msgspec import UNSET, UnsetType

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.identity.commands import CustomerCommand
from contexts.identity.repository import change_customer, latest_date_on_earth


@message
class UpdateProfile(CustomerCommand, frozen=True, kw_only=True, tag="identity.UpdateProfile"):
    """Change any of the customer's names, phone and date of birth."""

    first_name: str | UnsetType = UNSET
    last_name: str | UnsetType = UNSET
    phone: str | UnsetType | None = UNSET
    date_of_birth: date | UnsetType | None = UNSET


async def update_profile(command: UpdateProfile, uow: UnitOfWork) -> Outcome:
    return await change_customer(
        uow,
        command,
        lambda customer: customer.update_profile(
            today=latest_date_on_earth(),
            first_name=command.first_name,
            last_name=command.last_name,
            phone=command.phone,
            date_of_birth=command.date_of_birth,
        ),
    )
