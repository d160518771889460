"""Identity projections and queries on real PostgreSQL: events in, in any order across customers, views out.

The module gets a database of its own, migrated for the bus and identity; each event is applied to every
projection in its own transaction, as a consumer would, after a round trip through the wire format.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bus.messages import Envelope, registry
from contexts.identity import events as e
from contexts.identity.projections import PROJECTIONS
from contexts.identity.queries import get_customer_card, get_customer_card_by
from tests.projections import Aggregate, migrated_for, moment
from tests.projections import apply as apply_to

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def database_url(create_database) -> str:
    return await migrated_for(create_database, "identity")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
        yield pool


class Customer(Aggregate):
    """One customer's envelopes with increasing versions, each stamped when it happened."""

    def __init__(self) -> None:
        super().__init__("Customer", "identity")

    def registers(self, email: str) -> Envelope:
        return self(
            e.CustomerRegistered(
                customer_id=self.id, external_id=f"crm-{self.id}", email=email, first_name="Ada",
                last_name="Lovelace", phone=None, date_of_birth=None, status="Active", tier="Standard",
                registered_at=moment(),
            )
        )  # fmt: skip

    def changes(self, previous: str, email: str) -> Envelope:
        return self(e.EmailChanged(customer_id=self.id, email=email, previous_email=previous))


async def apply(pool: asyncpg.Pool, *envelopes: Envelope) -> None:
    await apply_to(pool, PROJECTIONS, *envelopes)


async def holder(pool: asyncpg.Pool, email: str) -> str | None:
    card = await get_customer_card_by(pool, email=email)
    return None if card is None else card.customer_id


def emails() -> tuple[str, str]:
    unique = uuid.uuid4().hex[:10]
    return f"Ada.{unique}@Example.com", f"augusta.{unique}@example.org"


class TestEmailChanged:
    async def test_the_card_shows_the_new_address_at_the_new_version(self, db):
        old, new = emails()
        ada = Customer()
        await apply(db, ada.registers(old), ada.changes(old, new))
        card = await get_customer_card(db, ada.id)
        assert card is not None
        assert (card.email, card.version) == (new, 2)

    async def test_the_lookup_leaves_the_old_address_for_the_new_one_in_any_case(self, db):
        old, new = emails()
        ada = Customer()
        await apply(db, ada.registers(old), ada.changes(old, new))
        assert await holder(db, old) is None
        assert await holder(db, old.lower()) is None
        assert await holder(db, new.upper()) == ada.id

    async def test_a_change_of_case_keeps_the_lookup_and_shows_the_new_spelling(self, db):
        old, _ = emails()
        ada = Customer()
        await apply(db, ada.registers(old), ada.changes(old, old.upper()))
        card = await get_customer_card_by(db, email=old.lower())
        assert card is not None
        assert (card.customer_id, card.email) == (ada.id, old.upper())

    async def test_a_new_holder_applied_before_the_old_one_gave_the_address_up_answers(self, db):
        old, new = emails()
        ada, grace = Customer(), Customer()
        registered, gave_up = ada.registers(old), ada.changes(old, new)
        took = grace.registers(old.upper())
        await apply(db, registered, took)  # ada's change is still on its way
        assert await holder(db, old) == grace.id
        await apply(db, gave_up)
        assert (await holder(db, old), await holder(db, new)) == (grace.id, ada.id)

    async def test_an_old_holder_applied_after_the_new_one_does_not_take_the_address_back(self, db):
        old, new = emails()
        ada, grace = Customer(), Customer()
        registered, gave_up = ada.registers(old), ada.changes(old, new)
        took = grace.registers(old)
        await apply(db, took, registered)  # ada's partition lags behind grace's
        assert await holder(db, old) == grace.id
        await apply(db, gave_up)
        assert (await holder(db, old), await holder(db, new)) == (grace.id, ada.id)

    async def test_two_customers_swapping_addresses_end_with_each_others(self, db):
        first, second = emails()
        ada, grace = Customer(), Customer()
        parked = f"parked.{uuid.uuid4().hex[:8]}@example.com"
        ada_registers, grace_registers = ada.registers(first), grace.registers(second)
        ada_parks = ada.changes(first, parked)
        grace_takes = grace.changes(second, first)
        ada_takes = ada.changes(parked, second)
        await apply(db, grace_registers, grace_takes, ada_registers, ada_parks, ada_takes)
        assert (await holder(db, first), await holder(db, second), await holder(db, parked)) == (
            grace.id,
            ada.id,
            None,
        )

    async def test_one_batch_may_hold_two_claims_of_one_address(self, db):
        taken, _ = emails()
        ada, grace, heidi = Customer(), Customer(), Customer()
        own = f"heidi.{uuid.uuid4().hex[:8]}@example.com"
        await apply(db, ada.registers(taken), heidi.registers(own))
        batch = [
            grace.registers(taken),
            heidi.changes(own, taken),
        ]  # ada's and grace's releases still on their way
        async with db.acquire() as conn, conn.transaction():
            for projection in PROJECTIONS:
                await projection.apply_batch(conn, [(b, registry.decode(b.type, b.payload)) for b in batch])
        assert await holder(db, taken) == heidi.id
        await apply(db, ada.changes(taken, f"ada.{uuid.uuid4().hex[:8]}@example.com"))
        await apply(db, grace.changes(taken, f"grace.{uuid.uuid4().hex[:8]}@example.com"))
        rows = await db.fetch(
            "SELECT customer_id FROM identity.customer_lookup WHERE email_key = $1", taken.lower()
        )
        assert [r["customer_id"] for r in rows] == [heidi.id]
