"""The Customer repository: the whole state as JSON, uniqueness of external id and e-mail enforced by
the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import msgspec

from bus.repository import Repository, change
from bus.uow import Outcome, UnitOfWork
from contexts.identity.commands import CustomerCommand
from contexts.identity.customer import Customer, CustomerState
from contexts.identity.errors import EmailAlreadyRegistered, ExternalIdAlreadyRegistered, NotYourAccount

_state_decoder = msgspec.json.Decoder(CustomerState)
_state_encoder = msgspec.json.Encoder()


class Customers(Repository[Customer]):
    table = "identity.customers"
    what = "customer"
    lookups = ("external_id", "email_key")
    unique = {
        "customers_external_id_key": lambda _: ExternalIdAlreadyRegistered(),
        "customers_email_key_key": lambda _: EmailAlreadyRegistered(),
    }

    def load(self, state: str, version: int) -> Customer:
        return Customer(_state_decoder.decode(state), version)

    def dump(self, customer: Customer) -> str:
        return _state_encoder.encode(customer.state).decode()

    def lookup_values(self, customer: Customer) -> tuple[object, ...]:
        return customer.state.external_id, customer.email_key


def _acting_for_itself(external_id: str) -> Callable[[Customer | None], None]:
    def check(customer: Customer | None) -> None:
        if customer is None or customer.state.external_id != external_id:
            raise NotYourAccount()

    return check


async def change_customer(
    uow: UnitOfWork,
    command: CustomerCommand,
    action: Callable[[Customer], object],
    created_id: str | None = None,
) -> Outcome:
    """The shape of every command on an existing customer: load, act, commit. The customer must exist
    (404) and be at `If-Match` (412); a customer acting for itself gets 403 alike for another customer
    and for nobody, checked on the row the command saves."""
    acting = command.acting_external_id
    owner_check = None if acting is None else _acting_for_itself(acting)
    return await change(
        Customers(uow), command.customer_id, command.expected_version, action, owner_check, created_id
    )


def latest_date_on_earth() -> date:
    """Today where it is latest (UTC+14): a birth date is refused only if it is future everywhere."""
    return (datetime.now(UTC) + timedelta(hours=14)).date()
