"""Changing a customer's e-mail address: unique regardless of case, enforced by the database at commit."""

from __future__ import annotations

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.identity.commands import CustomerCommand
from contexts.identity.repository import change_customer


@message
class ChangeEmail(CustomerCommand, frozen=True, kw_only=True, tag="identity.ChangeEmail"):
    """Give the customer another e-mail address."""

    email: str


async def change_email(command: ChangeEmail, uow: UnitOfWork) -> Outcome:
    return await change_customer(uow, command, lambda customer: customer.change_email(command.email))
