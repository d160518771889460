"""The account lifecycle: suspend, reactivate, close."""

from __future__ import annotations

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.identity.commands import CustomerCommand
from contexts.identity.repository import change_customer


@message
class SuspendAccount(CustomerCommand, frozen=True, kw_only=True, tag="identity.SuspendAccount"):
    """Suspend an active account for a stated reason."""

    reason: str


@message
class ReactivateAccount(CustomerCommand, frozen=True, kw_only=True, tag="identity.ReactivateAccount"):
    """Make a suspended account active again."""


@message
class CloseAccount(CustomerCommand, frozen=True, kw_only=True, tag="identity.CloseAccount"):
    """Close an account for good."""


async def suspend_account(command: SuspendAccount, uow: UnitOfWork) -> Outcome:
    return await change_customer(uow, command, lambda c: c.suspend(command.reason))


async def reactivate_account(command: ReactivateAccount, uow: UnitOfWork) -> Outcome:
    return await change_customer(uow, command, lambda c: c.reactivate())


async def close_account(command: CloseAccount, uow: UnitOfWork) -> Outcome:
    return await change_customer(uow, command, lambda c: c.close())
