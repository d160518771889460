"""Registering a customer."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.identity.commands import CustomerCommand
from contexts.identity.customer import Customer
from contexts.identity.repository import Customers, latest_date_on_earth


@message
class RegisterCustomer(CustomerCommand, frozen=True, kw_only=True, tag="identity.RegisterCustomer"):
    """Open an account for a new customer."""

    external_id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None = None
    date_of_birth: date | None = None


async def register_customer(command: RegisterCustomer, uow: UnitOfWork) -> Outcome:
    customer = Customer.register(
        command.customer_id,
        command.external_id,
        command.email,
        command.first_name,
        command.last_name,
        command.phone,
        command.date_of_birth,
        registered_at=datetime.now(UTC),
        today=latest_date_on_earth(),
    )
    async with uow:
        Customers(uow).add(customer)
        return await uow.commit(created_id=command.customer_id)
