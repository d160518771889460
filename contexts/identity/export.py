"""Everything identity holds about one customer, as one document (SPEC §11): the write model, every
identity read model, and the customer's event history with its personal fields opened (or erased).

Read in one snapshot (a read-only repeatable-read transaction), so the parts agree with each other as
far as the read models had caught up at that instant. Other contexts keep nothing personal (the
catalogue's replica of tiers holds ids, tier and status), so they are not part of it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import msgspec

from bus.messages import registry
from bus.outbox import Outbox
from contexts.identity.personal import personal_data_of
from contexts.identity.queries import AddressList, AddressView, CustomerCard


def _eg(value: object) -> msgspec.Meta:
    return msgspec.Meta(examples=[value])


class ExportedEvent(msgspec.Struct, frozen=True, kw_only=True):
    event_id: Annotated[str, _eg("5c7f0e7e-8a1b-4a8e-9d51-0c2f7b1e9a44")]
    type: Annotated[str, _eg("identity.CustomerRegistered")]
    aggregate_version: Annotated[int, _eg(1)]
    occurred_at: Annotated[datetime, _eg("2026-11-27T11:51:43.454232Z")]
    payload: Annotated[
        dict[str, Any],
        _eg({"customer_id": "0b5e6c1e-3f4a-4c55-9a43-2f1d8f0c9e21", "email": "ada@example.com"}),
    ]


class LookupEntry(msgspec.Struct, frozen=True, kw_only=True):
    email_key: Annotated[str, _eg("ada@example.com")]
    external_id: Annotated[str, _eg("crm-10042")]
    email_since: datetime


class SegmentEntry(msgspec.Struct, frozen=True, kw_only=True):
    tier: Annotated[str, _eg("Gold")]
    status: Annotated[str, _eg("Active")]


class PersonalDataExport(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: Annotated[str, _eg("0b5e6c1e-3f4a-4c55-9a43-2f1d8f0c9e21")]
    exported_at: datetime
    personal_data_erased: Annotated[bool, _eg(False)]
    version: Annotated[int, _eg(5)]
    account: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description="the write model: the customer's whole state as the commands see it",
            examples=[{"email": "ada@example.com", "first_name": "Ada", "status": "Active", "addresses": []}],
        ),
    ]
    customer_card: CustomerCard | None
    address_book: AddressList | None
    lookup: LookupEntry | None
    segment: SegmentEntry | None
    events: list[ExportedEvent]


_ACCOUNT = "SELECT state::text AS state, version FROM identity.customers WHERE id = $1"
_CARD = (
    "SELECT customer_id, external_id, email, first_name, last_name, phone, date_of_birth, status, tier,"
    " registered_at, version FROM identity.customer_cards WHERE customer_id = $1"
)
_BOOK = "SELECT version FROM identity.address_books WHERE customer_id = $1"
_ADDRESSES = (
    "SELECT address_id, label, street, city, state, postal_code, country, is_default, geo_lat, geo_lng"
    " FROM identity.addresses WHERE customer_id = $1 ORDER BY is_default DESC, added"
)
_LOOKUP = "SELECT email_key, external_id, email_since FROM identity.customer_lookup WHERE customer_id = $1"
_SEGMENT = "SELECT tier, status FROM identity.segment_members WHERE customer_id = $1"


async def export_customer(pool: asyncpg.Pool, outbox: Outbox, customer_id: str) -> PersonalDataExport | None:
    """The customer's document; None if no customer has the id."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        account = await conn.fetchrow(_ACCOUNT, customer_id)
        if account is None:
            return None
        state = msgspec.json.decode(account["state"])
        card = await conn.fetchrow(_CARD, customer_id)
        book_version = await conn.fetchval(_BOOK, customer_id)
        addresses = await conn.fetch(_ADDRESSES, customer_id) if book_version is not None else []
        lookup = await conn.fetchrow(_LOOKUP, customer_id)
        segment = await conn.fetchrow(_SEGMENT, customer_id)
        events = await _history(conn, outbox, customer_id)
    return PersonalDataExport(
        customer_id=customer_id,
        exported_at=datetime.now(UTC),
        personal_data_erased=bool(state.get("personal_data_erased", False)),
        version=account["version"],
        account=state,
        customer_card=None if card is None else CustomerCard(**dict(card)),
        address_book=None
        if book_version is None
        else AddressList(items=[AddressView(**dict(a)) for a in addresses], version=book_version),
        lookup=None if lookup is None else LookupEntry(**dict(lookup)),
        segment=None if segment is None else SegmentEntry(**dict(segment)),
        events=events,
    )


async def _history(conn: asyncpg.Connection, outbox: Outbox, customer_id: str) -> list[ExportedEvent]:
    rows = await conn.fetch(
        f"SELECT {outbox.columns()} FROM {outbox.table} WHERE aggregate_id = $1 ORDER BY aggregate_version",
        customer_id,
    )
    envelopes = [outbox.envelope(row) for row in rows]
    payloads = await personal_data_of(outbox).open(conn, envelopes, unsealed=True)
    return [
        ExportedEvent(
            event_id=str(env.event_id),
            type=env.type,
            aggregate_version=env.aggregate_version,
            occurred_at=env.occurred_at,
            payload=msgspec.to_builtins(registry.decode(env.type, payload, env.schema_version)),
        )
        for env, payload in zip(envelopes, payloads, strict=True)
    ]
