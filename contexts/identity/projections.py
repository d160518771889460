"""Identity read models, each kept by its own consumer: customer card, address book, lookup, segments.

The card and the address book are stamped with the customer's version after every event (`ReadModel`),
so a read's version (and ETag) is always the aggregate's version it reflects. Each only writes, so a
consumer's batch of events is sent as one pipelined round trip per statement (`BatchedWrites`).

The card, the address book and the lookup need personal data (`reads_sealed`): their consumers open
the sealed fields with each customer's data key. After `PersonalDataErased` they hold none: the card
keeps only what is not personal, the addresses and the lookup row are gone; replayed or rebuilt, the
customer's earlier events read as erased, since the key is gone too. Segments need no personal data.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from bus.batch import BatchedWrites
from bus.messages import Envelope
from bus.readmodel import ReadModel
from contexts.identity import events as e
from contexts.identity.values import ERASED, email_key


class CustomerCards(ReadModel):
    name = "identity.customer_card"
    tables = ("identity.customer_cards",)
    key = "customer_id"
    timestamped = False
    creates = (e.CustomerRegistered,)
    reads_sealed = True

    async def project(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        match event:
            case e.CustomerRegistered():
                await conn.execute(
                    "INSERT INTO identity.customer_cards (customer_id, external_id, email, first_name, last_name,"
                    " phone, date_of_birth, status, tier, registered_at, version)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    event.customer_id, event.external_id, event.email, event.first_name, event.last_name,
                    event.phone, event.date_of_birth, event.status, event.tier, event.registered_at,
                    envelope.aggregate_version,
                )  # fmt: skip
            case e.ProfileUpdated():
                await conn.execute(
                    "UPDATE identity.customer_cards SET first_name = $2, last_name = $3, phone = $4,"
                    " date_of_birth = $5 WHERE customer_id = $1",
                    event.customer_id, event.first_name, event.last_name, event.phone, event.date_of_birth,
                )  # fmt: skip
            case e.EmailChanged():
                await conn.execute(
                    "UPDATE identity.customer_cards SET email = $2 WHERE customer_id = $1",
                    event.customer_id, event.email,
                )  # fmt: skip
            case e.AccountSuspended() | e.AccountReactivated() | e.AccountClosed():
                await conn.execute(
                    "UPDATE identity.customer_cards SET status = $2 WHERE customer_id = $1",
                    event.customer_id, _STATUS_AFTER[type(event)],
                )  # fmt: skip
            case e.TierUpgraded():
                await conn.execute(
                    "UPDATE identity.customer_cards SET tier = $2 WHERE customer_id = $1",
                    event.customer_id, event.new_tier,
                )  # fmt: skip
            case e.PersonalDataErased():
                await conn.execute(
                    "UPDATE identity.customer_cards SET external_id = $2, email = $2, first_name = $2,"
                    " last_name = $2, phone = NULL, date_of_birth = NULL WHERE customer_id = $1",
                    event.customer_id, ERASED,
                )  # fmt: skip


_STATUS_AFTER: dict[type, str] = {
    e.AccountSuspended: "Suspended",
    e.AccountReactivated: "Active",
    e.AccountClosed: "Closed",
}

_ADDRESS_COLUMNS = "label, street, city, state, postal_code, country, is_default, geo_lat, geo_lng"
_UNFLAG = "UPDATE identity.addresses SET is_default = false WHERE customer_id = $1 AND address_id = $2"
_FLAG = "UPDATE identity.addresses SET is_default = true WHERE customer_id = $1 AND address_id = $2"


def _address_values(event: e.AddressAdded | e.AddressUpdated) -> tuple[object, ...]:
    return (
        event.label, event.street, event.city, event.state, event.postal_code, event.country,
        event.is_default, event.geo_lat, event.geo_lng,
    )  # fmt: skip


class AddressBooks(ReadModel):
    name = "identity.address_book"
    tables = ("identity.address_books", "identity.addresses")
    key = "customer_id"
    timestamped = False
    creates = (e.CustomerRegistered,)
    reads_sealed = True

    async def project(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        customer_id = envelope.aggregate_id
        match event:
            case e.CustomerRegistered():
                await conn.execute(
                    "INSERT INTO identity.address_books (customer_id, version) VALUES ($1, $2)",
                    customer_id, envelope.aggregate_version,
                )  # fmt: skip
            case e.AddressAdded():
                if event.previous_default_id:
                    await conn.execute(_UNFLAG, customer_id, event.previous_default_id)
                await conn.execute(
                    f"INSERT INTO identity.addresses (customer_id, address_id, added, {_ADDRESS_COLUMNS})"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    customer_id, event.address_id, envelope.aggregate_version, *_address_values(event),
                )  # fmt: skip
            case e.AddressUpdated():
                if event.previous_default_id:
                    await conn.execute(_UNFLAG, customer_id, event.previous_default_id)
                await conn.execute(
                    "UPDATE identity.addresses SET label = $3, street = $4, city = $5, state = $6,"
                    " postal_code = $7, country = $8, is_default = $9, geo_lat = $10, geo_lng = $11"
                    " WHERE customer_id = $1 AND address_id = $2",
                    customer_id, event.address_id, *_address_values(event),
                )  # fmt: skip
            case e.AddressRemoved():
                await conn.execute(
                    "DELETE FROM identity.addresses WHERE customer_id = $1 AND address_id = $2",
                    customer_id, event.address_id,
                )  # fmt: skip
                if event.new_default_id:
                    await conn.execute(_FLAG, customer_id, event.new_default_id)
            case e.DefaultAddressChanged():
                await conn.execute(_UNFLAG, customer_id, event.previous_default_id)
                await conn.execute(_FLAG, customer_id, event.address_id)
            case e.PersonalDataErased():
                await conn.execute("DELETE FROM identity.addresses WHERE customer_id = $1", customer_id)


class CustomerLookup(BatchedWrites):
    """Events of two customers may apply in another order than they happened, so a row that gave its
    e-mail address (or, erased, its external id) up may hold it beside its new holder's for a moment:
    each row notes when it took its address (`email_since`), and a lookup answers with the newest holder."""

    name = "identity.customer_lookup"
    tables = ("identity.customer_lookup",)
    reads_sealed = True

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        match event:
            case e.CustomerRegistered():
                await conn.execute(
                    "INSERT INTO identity.customer_lookup (customer_id, email_key, email_since, external_id)"
                    " VALUES ($1, $2, $3, $4)",
                    event.customer_id, email_key(event.email), envelope.occurred_at, event.external_id,
                )  # fmt: skip
            case e.EmailChanged():
                await conn.execute(
                    "UPDATE identity.customer_lookup SET email_key = $2, email_since = $3 WHERE customer_id = $1",
                    event.customer_id, email_key(event.email), envelope.occurred_at,
                )  # fmt: skip
            case e.PersonalDataErased():
                await conn.execute(
                    "DELETE FROM identity.customer_lookup WHERE customer_id = $1", event.customer_id
                )


class Segments(BatchedWrites):
    """Each member's current tier and status; the counts are counted when read (`get_segments`), so no
    count row is shared by every writer and the counts are exact whatever order customers arrive in."""

    name = "identity.segments"
    tables = ("identity.segment_members",)

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        match event:
            case e.CustomerRegistered():
                await conn.execute(
                    "INSERT INTO identity.segment_members (customer_id, tier, status) VALUES ($1, $2, $3)",
                    event.customer_id, str(event.tier), str(event.status),
                )  # fmt: skip
            case e.AccountSuspended() | e.AccountReactivated() | e.AccountClosed():
                await conn.execute(
                    "UPDATE identity.segment_members SET status = $2 WHERE customer_id = $1",
                    event.customer_id, _STATUS_AFTER[type(event)],
                )  # fmt: skip
            case e.TierUpgraded():
                await conn.execute(
                    "UPDATE identity.segment_members SET tier = $2 WHERE customer_id = $1",
                    event.customer_id, str(event.new_tier),
                )  # fmt: skip


PROJECTIONS = (CustomerCards(), AddressBooks(), CustomerLookup(), Segments())
