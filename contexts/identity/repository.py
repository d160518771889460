"""The Customer repository: the whole state as JSON, uniqueness of external id and e-mail enforced by
the database, and the customer's data key beside them (`contexts.identity.datakeys`): the personal
fields of every event it appends are sealed with that key (`contexts.identity.personal`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import asyncpg
import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bus.messages import Event
from bus.repository import Repository, change
from bus.uow import Outcome, UnitOfWork
from contexts.identity.commands import CustomerCommand
from contexts.identity.customer import Customer, CustomerState
from contexts.identity.errors import EmailAlreadyRegistered, ExternalIdAlreadyRegistered, NotYourAccount
from contexts.identity.events import PersonalDataErased
from contexts.identity.personal import is_personal, personal_data_of, seal_event

_state_decoder = msgspec.json.Decoder(CustomerState)
_state_encoder = msgspec.json.Encoder()

_SELECT = "SELECT state::text AS state, version, data_kek, data_key FROM identity.customers WHERE id = $1"
_INSERT = (
    "INSERT INTO identity.customers (id, state, version, external_id, email_key, data_kek, data_key)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
_SET = "state = $3, version = $4, external_id = $5, email_key = $6"
# A customer an earlier release registered gets its data key with its next change.
_UPDATE_GIVING_KEY = (
    f"UPDATE identity.customers SET {_SET}, data_kek = $7, data_key = $8"
    " WHERE id = $1 AND version = $2 AND data_key IS NULL"
)
# The erasure destroys the key in the statement that saves the erased state (and appends its event).
_UPDATE_ERASING = (
    f"UPDATE identity.customers SET {_SET}, data_kek = NULL, data_key = NULL WHERE id = $1 AND version = $2"
)


class Customers(Repository[Customer]):
    table = "identity.customers"
    what = "customer"
    lookups = ("external_id", "email_key")
    unique = {
        "customers_external_id_key": lambda _: ExternalIdAlreadyRegistered(),
        "customers_email_key_key": lambda _: EmailAlreadyRegistered(),
    }

    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow)
        self._personal = personal_data_of(uow.outbox)
        self._keys = self._personal.keys
        self._loaded: list[Customer] = []
        self._ciphers: dict[str, AESGCM] = {}
        self._new_keys: dict[str, tuple[str, bytes]] = {}  # customer → KEK id and wrapped key to store

    def load(self, state: str, version: int) -> Customer:
        return Customer(_state_decoder.decode(state), version)

    def dump(self, customer: Customer) -> str:
        return _state_encoder.encode(customer.state).decode()

    def lookup_values(self, customer: Customer) -> tuple[object, ...]:
        """An erased customer holds neither its external id nor its e-mail address any more."""
        if customer.state.personal_data_erased:
            return None, None
        return customer.state.external_id, customer.email_key

    async def find(self, aggregate_id: str) -> Customer | None:
        row = await self.uow.conn.fetchrow(_SELECT, aggregate_id)
        if row is None:
            return None
        customer = self.load(row["state"], row["version"])
        self._loaded.append(customer)
        if row["data_key"] is not None:
            self._ciphers[aggregate_id] = self._keys.cipher(aggregate_id, row["data_kek"], row["data_key"])
        self.uow.track(self, customer)
        return customer

    def write(self, customer: Customer) -> tuple[str, tuple[object, ...]]:
        statement, args = super().write(customer)
        if customer.state.personal_data_erased:
            return (_UPDATE_ERASING, args) if customer.loaded_version else (statement, args)
        self._cipher_of(customer.id)
        new_key = self._new_keys.get(customer.id)
        if new_key is None:
            return statement, args
        return (_UPDATE_GIVING_KEY if customer.loaded_version else _INSERT), (*args, *new_key)

    @property
    def saves_alone(self) -> bool:
        """An erasure also blanks what an earlier release left in plain text (`save_more`)."""
        return not any(_erasing(c) for c in self._loaded)

    async def save_more(self, conn: asyncpg.Connection, customer: Customer) -> None:
        if _erasing(customer):
            await self._personal.erase_plain_events(conn, customer.id)

    def encode_event(self, customer: Customer, event: Event) -> str:
        if not is_personal(event):
            return super().encode_event(customer, event)
        return seal_event(self._cipher_of(customer.id), customer.id, event)

    def _cipher_of(self, customer_id: str) -> AESGCM:
        cipher = self._ciphers.get(customer_id)
        if cipher is None:
            cipher, kek, wrapped = self._keys.new(customer_id)
            self._ciphers[customer_id] = cipher
            self._new_keys[customer_id] = (kek, wrapped)
        return cipher


def _erasing(customer: Customer) -> bool:
    return any(isinstance(event, PersonalDataErased) for event in customer.pending_events)


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
