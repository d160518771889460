"""Erasure brings nothing back (SPEC §11): after a customer's personal data is erased, a rebuild of every
read model of identity's events, a dead-letter replay of one of its events, a gap-healing pass and a
reconciler pass each re-read its events from the log or the streams, and still no table of identity's
or the catalogue's schemas (nor the bus's), and no Redis stream entry, holds its name, e-mail address,
phone, street or the reason of its suspension. Before the erasure the read models held them, while the
event log and the streams never did: they hold ciphertext.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from functools import partial

import asyncpg
import msgspec
import pytest

from bus import deadletters
from bus.messages import Command
from bus.module import ContextModule
from bus.rebuild import Rebuild
from bus.reconciler import Reconciler
from contexts import catalogue, identity
from contexts.identity.account import CloseAccount, ReactivateAccount, SuspendAccount
from contexts.identity.email_change import ChangeEmail
from contexts.identity.erasure import ErasePersonalData
from contexts.identity.errors import TransitionNotAllowed
from contexts.identity.profile import UpdateProfile
from contexts.identity.tier import UpgradeTier
from shopstream.bootstrap import Messaging
from tests.identity.test_handlers import new_address, registration
from tests.messaging.helpers import running, wait_until

pytestmark = pytest.mark.anyio

SCHEMAS = ("identity", "catalogue", "bus")


@pytest.fixture(scope="module")
def contexts() -> list[ContextModule]:
    return [identity.module, catalogue.module]


class Person:
    """A customer whose every personal value carries a token of its own, easy to search for."""

    def __init__(self) -> None:
        token = uuid.uuid4().hex[:10]
        self.token = token
        self.command = registration(
            first_name=f"Zenobia{token}",
            last_name=f"Quill{token}",
            email=f"zq.{token}@example.com",
            phone=f"+44 {int(token[:8], 16) % 10**9:09d}",
        )
        self.id = self.command.customer_id
        self.new_email = f"zenobia.{token}@example.org"
        self.street = f"{token} Fleet Street"
        self.reason = f"chargeback {token}"

    @property
    def secrets(self) -> list[str]:
        c = self.command
        assert c.phone is not None
        return [c.first_name, c.last_name, c.email, c.phone, self.new_email, self.street, self.reason]

    def script(self) -> list[Command]:
        return [
            self.command,
            UpdateProfile(customer_id=self.id, last_name=f"Quill-Smith{self.token}"),
            new_address(self.id, street=self.street),
            ChangeEmail(customer_id=self.id, email=self.new_email),
            SuspendAccount(customer_id=self.id, reason=self.reason),
            ReactivateAccount(customer_id=self.id),
            UpgradeTier(customer_id=self.id, new_tier="Gold"),
            CloseAccount(customer_id=self.id),
        ]


def identity_inboxes(messaging: Messaging) -> dict[str, object]:
    """Every read model of identity's events: identity's own and the catalogue's replica of tiers."""
    return {n: i for n, i in messaging.inboxes.items() if i.outbox.context == "identity"}


async def applied_everywhere(messaging: Messaging, customer_id: str) -> bool:
    pool = messaging.pool_of("identity")
    last = await pool.fetchval(
        "SELECT max(aggregate_version) FROM identity.outbox WHERE aggregate_id = $1", customer_id
    )
    tracked = await pool.fetch(
        "SELECT consumer, version FROM bus.consumer_positions WHERE aggregate_id = $1 AND consumer = ANY($2::text[])",
        customer_id,
        list(identity_inboxes(messaging)),
    )
    return len(tracked) == len(identity_inboxes(messaging)) and all(r["version"] == last for r in tracked)


async def found_in_tables(pool: asyncpg.Pool, secrets: list[str]) -> list[str]:
    """`schema.table: secret` for each secret any row of any table of `SCHEMAS` holds (case-insensitive)."""
    tables = await pool.fetch(
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables"
        " WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE'",
        [*SCHEMAS, *(f"{s}_rebuild" for s in SCHEMAS)],
    )
    found = []
    for table in tables:
        try:
            text = await pool.fetchval(f"SELECT lower(string_agg(t::text, ' ')) FROM {table['name']} t")
        except asyncpg.UndefinedTableError:  # a shadow table a rebuild swapped in meanwhile
            continue
        found += [f"{table['name']}: {s}" for s in secrets if text and s.lower() in text]
    return found


async def found_in_streams(messaging: Messaging, secrets: list[str]) -> list[str]:
    found = []
    async for key in messaging.redis.scan_iter(match=f"{messaging.config.redis_prefix}*"):
        if await messaging.redis.type(key) != b"stream":
            continue
        for entry_id, fields in await messaging.redis.xrange(key):
            text = b" ".join(fields.values()).decode().lower()
            found += [f"{key.decode()} {entry_id.decode()}: {s}" for s in secrets if s.lower() in text]
    return found


async def envelopes_of(messaging: Messaging, customer_id: str) -> list:  # type: ignore[type-arg]
    outbox = messaging.outboxes["identity"]
    rows = await messaging.pool_of("identity").fetch(
        f"SELECT {outbox.columns()} FROM identity.outbox WHERE aggregate_id = $1 ORDER BY aggregate_version",
        customer_id,
    )
    return [outbox.envelope(r) for r in rows]


async def forget(pool: asyncpg.Pool, consumer: str, customer_id: str, *tables: str) -> None:
    """The read model never saw the customer: its rows and its tracked version are gone."""
    await pool.execute(
        "DELETE FROM bus.consumer_positions WHERE consumer = $1 AND aggregate_id = $2", consumer, customer_id
    )
    for table in tables:
        await pool.execute(f"DELETE FROM {table} WHERE customer_id = $1", customer_id)


async def test_only_a_closed_account_can_be_erased(messaging):
    person = Person()
    await messaging.bus.execute(person.command)
    with pytest.raises(TransitionNotAllowed):
        await messaging.bus.execute(ErasePersonalData(customer_id=person.id))
    await messaging.bus.execute(CloseAccount(customer_id=person.id))
    assert (await messaging.bus.execute(ErasePersonalData(customer_id=person.id))).version == 3
    assert (await messaging.bus.execute(ErasePersonalData(customer_id=person.id))).version == 3  # no change


async def test_the_log_and_the_streams_hold_only_ciphertext_while_the_read_models_serve_the_data(messaging):
    person = Person()
    for command in person.script():
        await messaging.bus.execute(command)
    pool = messaging.pool_of("identity")
    async with running(messaging.supervisor()):
        await wait_until(partial(applied_everywhere, messaging, person.id))
    payloads = await pool.fetchval(
        "SELECT lower(string_agg(payload::text, ' ')) FROM identity.outbox WHERE aggregate_id = $1", person.id
    )
    assert [s for s in person.secrets if s.lower() in payloads] == []
    assert await found_in_streams(messaging, person.secrets) == []
    card = await pool.fetchrow(
        "SELECT first_name, email, phone FROM identity.customer_cards WHERE customer_id = $1", person.id
    )
    assert dict(card) == {
        "first_name": person.command.first_name,
        "email": person.new_email,
        "phone": person.command.phone,
    }


async def test_after_erasure_rebuilds_replays_gap_healing_and_reconciling_bring_nothing_back(messaging):
    person = Person()
    for command in [*person.script(), ErasePersonalData(customer_id=person.id)]:
        await messaging.bus.execute(command)
    pool = messaging.pool_of("identity")
    async with running(messaging.supervisor()):
        await wait_until(partial(applied_everywhere, messaging, person.id))
    assert await found_in_tables(pool, person.secrets) == []
    assert await found_in_streams(messaging, person.secrets) == []
    card = await pool.fetchrow("SELECT * FROM identity.customer_cards WHERE customer_id = $1", person.id)
    assert (card["email"], card["first_name"], card["phone"], card["status"], card["tier"]) == (
        "[erased]", "[erased]", None, "Closed", "Gold",
    )  # fmt: skip
    for gone in ("identity.addresses", "identity.customer_lookup", "catalogue.customer_tiers"):
        assert await pool.fetchval(f"SELECT count(*) FROM {gone} WHERE customer_id = $1", person.id) == 0

    envelopes = await envelopes_of(messaging, person.id)
    # Each way of re-reading stops where the customer's personal data would show if its key were alive:
    # after its first events, before the erasure's own event blanks them again.
    # 1. A rebuild of every read model of identity's events, from the event log: stopped just after the
    # customer's registration, then finished.
    first_position = await pool.fetchval(
        "SELECT position FROM identity.outbox WHERE aggregate_id = $1 AND aggregate_version = 1", person.id
    )
    upto_first = await pool.fetchval(
        "SELECT count(*) FROM identity.outbox WHERE position <= $1", first_position
    )
    for inbox in identity_inboxes(messaging).values():
        stopping = asyncio.Event()
        halfway = Rebuild(
            pool,
            inbox,
            batch=upto_first,
            on_progress=lambda p, s=stopping: p.done and s.set(),
            stopping=stopping,
        )  # type: ignore[arg-type]
        assert not (await halfway.run()).swapped
        assert await found_in_tables(pool, person.secrets) == []  # the shadow tables included
        assert (await Rebuild(pool, inbox).run()).swapped  # type: ignore[arg-type]
    assert await found_in_tables(pool, person.secrets) == []

    # 2. A dead letter of the customer's first event, replayed alone.
    card_inbox = messaging.inboxes["identity.customer_card"]
    await forget(pool, card_inbox.name, person.id, "identity.customer_cards")
    async with pool.acquire() as conn, conn.transaction():
        await deadletters.store(conn, card_inbox.name, envelopes[0], "boom", 8, datetime.now(UTC))
    letter = await pool.fetchval(
        "SELECT id FROM bus.dead_letters WHERE consumer = $1 AND aggregate_id = $2",
        card_inbox.name,
        person.id,
    )
    assert (await deadletters.replay(pool, messaging.inboxes, letter))["action"] == "replayed"
    card = await pool.fetchrow(
        "SELECT email, first_name, phone, version FROM identity.customer_cards WHERE customer_id = $1",
        person.id,
    )
    assert dict(card) == {"email": "[erased]", "first_name": "[erased]", "phone": None, "version": 1}
    assert await found_in_tables(pool, person.secrets) == []

    # 3. Gap healing: the e-mail change arrives first; the inbox reads the events before it from the log.
    lookup = messaging.inboxes["identity.customer_lookup"]
    await forget(pool, lookup.name, person.id, "identity.customer_lookup")
    changed_email = next(e for e in envelopes if e.type == "identity.EmailChanged")
    async with pool.acquire() as conn, conn.transaction():
        assert await lookup.apply(conn, changed_email) == "healed"
        assert await card_inbox.apply(conn, envelopes[-1]) == "healed"
    assert await found_in_tables(pool, person.secrets) == []

    # 4. The reconciler delivers again, through Redis, events a consumer has not applied (each pass the
    # first one of the customer's it lacks).
    books, tiers = messaging.inboxes["identity.address_book"], messaging.inboxes["catalogue.customer_tiers"]
    await forget(pool, books.name, person.id, "identity.address_books", "identity.addresses")
    await forget(pool, tiers.name, person.id, "catalogue.customer_tiers")
    await pool.execute(
        "DELETE FROM bus.reconciler_marks WHERE consumer = ANY($1::text[])", [books.name, tiers.name]
    )
    eager = msgspec.structs.replace(messaging.config, reconcile_grace=0.001)
    reconcilers = [Reconciler(i, pool, messaging.redis, eager) for i in (books, tiers)]

    async def reconciled() -> bool:
        for reconciler in reconcilers:
            await reconciler.run_once()
        assert await found_in_tables(pool, person.secrets) == []
        return await applied_everywhere(messaging, person.id)

    async with running(messaging.supervisor()):
        await wait_until(reconciled)

    assert await found_in_tables(pool, person.secrets) == []
    assert await found_in_streams(messaging, person.secrets) == []


async def test_the_email_and_external_id_are_free_again(messaging):
    person = Person()
    for command in [
        person.command,
        CloseAccount(customer_id=person.id),
        ErasePersonalData(customer_id=person.id),
    ]:
        await messaging.bus.execute(command)
    again = registration(external_id=person.command.external_id, email=person.command.email.upper())
    await messaging.bus.execute(again)
    async with running(messaging.supervisor()):
        await wait_until(partial(applied_everywhere, messaging, again.customer_id))
        await wait_until(partial(applied_everywhere, messaging, person.id))
    pool = messaging.pool_of("identity")
    holders = await pool.fetch(
        "SELECT customer_id FROM identity.customer_lookup WHERE external_id = $1", person.command.external_id
    )
    assert [r["customer_id"] for r in holders] == [again.customer_id]
    tiers = await pool.fetch(
        "SELECT customer_id FROM catalogue.customer_tiers WHERE external_id = $1", person.command.external_id
    )
    assert [r["customer_id"] for r in tiers] == [again.customer_id]
