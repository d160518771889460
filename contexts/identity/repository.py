"""The Customer repository: the whole state as JSON, uniqueness enforced by the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import asyncpg
import msgspec

from bus.repository import Repository
from bus.uow import Outcome, UnitOfWork
from contexts.identity.customer import Customer, CustomerState
from contexts.identity.errors import EmailAlreadyRegistered, ExternalIdAlreadyRegistered

_state_decoder = msgspec.json.Decoder(CustomerState)
_UNIQUE = {
    "customers_external_id_key": ExternalIdAlreadyRegistered,
    "customers_email_key_key": EmailAlreadyRegistered,
}


class Customers(Repository[Customer]):
    select_sql = "SELECT state::text AS state, version FROM identity.customers WHERE id = $1"
    insert_sql = "INSERT INTO identity.customers (id, external_id, email_key, state, version) VALUES ($1, $2, $3, $4, $5)"
    update_sql = "UPDATE identity.customers SET state = $3, version = $4 WHERE id = $1 AND version = $2"

    def load(self, row: asyncpg.Record) -> Customer:
        return Customer(_state_decoder.decode(row["state"]), row["version"])

    def insert_args(self, customer: Customer) -> tuple[object, ...]:
        state = msgspec.json.encode(customer.state).decode()
        return customer.id, customer.state.external_id, customer.email_key, state, customer.version

    def update_args(self, customer: Customer) -> tuple[object, ...]:
        return msgspec.json.encode(customer.state).decode(), customer.version

    async def save(self, conn: asyncpg.Connection, customer: Customer) -> None:
        try:
            await super().save(conn, customer)
        except asyncpg.UniqueViolationError as exc:
            clash = _UNIQUE.get(exc.constraint_name or "")
            if clash is None:
                raise
            raise clash() from None


async def change_customer(
    uow: UnitOfWork, customer_id: str, expected_version: int | None, action: Callable[[Customer], object]
) -> Outcome:
    """The shape of every command on an existing customer: load, act, commit."""
    async with uow:
        customer = await Customers(uow).get(customer_id, expected_version)
        action(customer)
        return await uow.commit()


def latest_date_on_earth() -> date:
    """Today where it is latest (UTC+14): a birth date is refused only if it is future everywhere."""
    return (datetime.now(UTC) + timedelta(hours=14)).date()
