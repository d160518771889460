"""Customers as the catalogue knows them: tier and status by external id, fed by identity's events.

The catalogue never imports identity, and identity publishes no classes for others. The inbox hands this
read model each identity event decoded by the message registry (identity's own classes, registered
because a projection of another context's events runs only where that context is served, and already
upcast to their current shape), and the read model takes what it needs from it by field name into
the small structs below, its side of the contract. Decoding `envelope.payload` with its own decoders
instead would skip identity's upcasters, and copying identity's classes would clash with their tags.
Identity's other events (profile, addresses, suspension) change nothing here: they write nothing.

A suspended customer keeps its tier; a closed one is kept as Closed, which every read treats as
anonymous (`viewer`); one whose personal data is erased is dropped, its external id free for another.
The root row's `version` is the customer's version when the row last changed. Identity seals the
personal fields of its events; none of them is needed here, so this read model opens none (no key).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from bus.messages import Envelope
from bus.readmodel import ReadModel
from contexts.contracts import Tier


class Registered(msgspec.Struct, frozen=True):
    customer_id: str
    external_id: str
    tier: Tier
    status: str


class Upgraded(msgspec.Struct, frozen=True):
    customer_id: str
    new_tier: Tier


class Closed(msgspec.Struct, frozen=True):
    customer_id: str


class Erased(msgspec.Struct, frozen=True):
    customer_id: str


_FACTS: dict[str, type[msgspec.Struct]] = {
    "identity.CustomerRegistered": Registered,
    "identity.TierUpgraded": Upgraded,
    "identity.AccountClosed": Closed,
    "identity.PersonalDataErased": Erased,
}


class CustomerTiers(ReadModel):
    name = "catalogue.customer_tiers"
    source = "identity"
    tables = ("catalogue.customer_tiers",)
    key = "customer_id"
    timestamped = False
    stamps = ()  # each statement writes the version itself

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        fact = _FACTS.get(envelope.type)
        if fact is not None:
            await super().apply(conn, envelope, msgspec.convert(event, fact, from_attributes=True))

    async def project(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        match event:
            case Registered():
                await conn.execute(
                    "INSERT INTO catalogue.customer_tiers (customer_id, external_id, tier, status, version)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    event.customer_id, event.external_id, event.tier, event.status, envelope.aggregate_version,
                )  # fmt: skip
            case Upgraded():
                await conn.execute(
                    "UPDATE catalogue.customer_tiers SET tier = $2, version = $3 WHERE customer_id = $1",
                    event.customer_id, event.new_tier, envelope.aggregate_version,
                )  # fmt: skip
            case Closed():
                await conn.execute(
                    "UPDATE catalogue.customer_tiers SET status = 'Closed', version = $2 WHERE customer_id = $1",
                    event.customer_id, envelope.aggregate_version,
                )  # fmt: skip
            case Erased():
                await conn.execute(
                    "DELETE FROM catalogue.customer_tiers WHERE customer_id = $1", event.customer_id
                )
