"""Reads of the identity read models: `get_*` for one, `list_*` for many."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import asyncpg
import msgspec

from contexts.identity.values import Status, Tier, email_key


def _eg(value: object) -> msgspec.Meta:
    return msgspec.Meta(examples=[value])


class CustomerCard(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: Annotated[str, _eg("0b5e6c1e-3f4a-4c55-9a43-2f1d8f0c9e21")]
    external_id: Annotated[str, _eg("crm-10042")]
    email: Annotated[str, _eg("ada@example.com")]
    first_name: Annotated[str, _eg("Ada")]
    last_name: Annotated[str, _eg("Lovelace")]
    phone: Annotated[str | None, _eg("+44 20 7946 0958")]
    date_of_birth: Annotated[date | None, _eg("1990-12-10")]
    status: Annotated[str, _eg("Active")]
    tier: Annotated[str, _eg("Gold")]
    registered_at: Annotated[datetime, _eg("2026-11-27T11:51:43.454232Z")]
    version: Annotated[int, _eg(5)]


class AddressView(msgspec.Struct, frozen=True, kw_only=True):
    address_id: str
    label: str
    street: str
    city: str
    state: str | None
    postal_code: str
    country: str
    is_default: bool
    geo_lat: float | None
    geo_lng: float | None


class AddressList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[AddressView]
    version: int


class SegmentCounts(msgspec.Struct, frozen=True, kw_only=True):
    tiers: Annotated[dict[str, int], _eg({"Standard": 120, "Silver": 30, "Gold": 8, "Platinum": 2})]
    statuses: Annotated[dict[str, int], _eg({"Active": 150, "Suspended": 6, "Closed": 4})]


_CARD = (
    "SELECT customer_id, external_id, email, first_name, last_name, phone, date_of_birth, status, tier,"
    " registered_at, version FROM identity.customer_cards"
)


def _card(row: asyncpg.Record | None) -> CustomerCard | None:
    return None if row is None else CustomerCard(**dict(row))


async def get_customer_card(pool: asyncpg.Pool, customer_id: str) -> CustomerCard | None:
    return _card(await pool.fetchrow(f"{_CARD} WHERE customer_id = $1", customer_id))


async def get_customer_card_by(
    pool: asyncpg.Pool, *, email: str | None = None, external_id: str | None = None
) -> CustomerCard | None:
    """Look a customer up by e-mail (case-insensitive; its newest holder, see `CustomerLookup`) or
    external id."""
    if email is not None:
        which, value = (
            "l.email_key = $1 ORDER BY l.email_since DESC, l.customer_id DESC LIMIT 1",
            email_key(email),
        )
    else:
        which, value = (
            "l.external_id = $1 ORDER BY l.email_since DESC, l.customer_id DESC LIMIT 1",
            external_id or "",
        )
    if "\x00" in value:
        return None  # registration refuses U+0000, and PostgreSQL text cannot even carry it
    row = await pool.fetchrow(
        f"{_CARD} c WHERE c.customer_id = (SELECT l.customer_id FROM identity.customer_lookup l WHERE {which})",
        value,
    )
    return _card(row)


async def is_own(
    pool: asyncpg.Pool, external_id: str, *, customer_id: str | None = None, email: str | None = None
) -> bool:
    """Whether the customer of `external_id` is the one named by id or by e-mail. Read from the write
    model, not a projection, so a customer registered a moment ago is already recognised as itself."""
    column, value = ("id", customer_id) if customer_id is not None else ("email_key", email_key(email or ""))
    if "\x00" in value or "\x00" in external_id:
        return False  # PostgreSQL text cannot carry U+0000, and no customer has it
    found = await pool.fetchval(
        f"SELECT 1 FROM identity.customers WHERE {column} = $1 AND external_id = $2", value, external_id
    )
    return found is not None


async def list_addresses(pool: asyncpg.Pool, customer_id: str) -> AddressList | None:
    """The address book, default first, then in the order the addresses were added."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        version = await conn.fetchval(
            "SELECT version FROM identity.address_books WHERE customer_id = $1", customer_id
        )
        if version is None:
            return None
        rows = await conn.fetch(
            "SELECT address_id, label, street, city, state, postal_code, country, is_default, geo_lat, geo_lng"
            " FROM identity.addresses WHERE customer_id = $1 ORDER BY is_default DESC, added",
            customer_id,
        )
    return AddressList(items=[AddressView(**dict(r)) for r in rows], version=version)


_SEGMENTS = """
SELECT 'tier' AS dimension, tier AS value, count(*) AS members FROM identity.segment_members GROUP BY tier
UNION ALL
SELECT 'status', status, count(*) FROM identity.segment_members GROUP BY status
"""


async def get_segments(pool: asyncpg.Pool) -> SegmentCounts:
    """Counted when read, in one snapshot: exact, and no count row that every writer would update."""
    rows = await pool.fetch(_SEGMENTS)
    counts = {(r["dimension"], r["value"]): r["members"] for r in rows}
    return SegmentCounts(
        tiers={t.value: counts.get(("tier", t.value), 0) for t in Tier},
        statuses={s.value: counts.get(("status", s.value), 0) for s in Status},
    )
