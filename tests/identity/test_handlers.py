"""Identity handlers on real PostgreSQL through the bus: uniqueness, version checks, the outbox envelope.

The module gets a database of its own, migrated for the identity context only; every test opens its own
`Messaging` (bus, pools) in the test's event loop and works on customers with fresh ids and e-mails.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from bus.errors import Conflict, NotFound, VersionMismatch
from bus.messages import Command, registry
from bus.module import ContextModule
from bus.uow import Meta, Outcome
from contexts import identity
from contexts.identity import events
from contexts.identity.account import CloseAccount, ReactivateAccount, SuspendAccount
from contexts.identity.addresses import AddAddress, RemoveAddress, SetDefaultAddress, UpdateAddress
from contexts.identity.email_change import ChangeEmail
from contexts.identity.errors import (
    AddressNotFound,
    CustomerClosed,
    EmailAlreadyRegistered,
    ExternalIdAlreadyRegistered,
    TransitionNotAllowed,
)
from contexts.identity.profile import UpdateProfile
from contexts.identity.registration import RegisterCustomer
from contexts.identity.tier import UpgradeTier
from shopstream.bootstrap import Messaging

pytestmark = pytest.mark.anyio

BORN = date(1990, 12, 10)


@pytest.fixture(scope="module")
def contexts() -> list[ContextModule]:
    return [identity.module]


@pytest.fixture
def pool(messaging: Messaging) -> asyncpg.Pool:
    return messaging.pool_of("identity")


def registration(**overrides: Any) -> RegisterCustomer:
    unique = uuid.uuid4().hex[:12]
    fields: dict[str, Any] = {
        "customer_id": str(uuid.uuid4()),
        "external_id": f"crm-{unique}",
        "email": f"ada.{unique}@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0958",
        "date_of_birth": BORN,
    }
    return RegisterCustomer(**(fields | overrides))


def new_address(customer_id: str, **overrides: Any) -> AddAddress:
    fields: dict[str, Any] = {
        "customer_id": customer_id,
        "address_id": str(uuid.uuid4()),
        "street": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4LB",
        "country": "United Kingdom",
    }
    return AddAddress(**(fields | overrides))


async def registered(messaging: Messaging, **overrides: Any) -> str:
    command = registration(**overrides)
    await messaging.bus.execute(command)
    return command.customer_id


async def outbox_rows(pool: asyncpg.Pool, customer_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT type, schema_version, aggregate_type, aggregate_id, aggregate_version, occurred_at,"
        " payload::text AS payload, headers::text AS headers"
        " FROM identity.outbox WHERE aggregate_id = $1 ORDER BY aggregate_version",
        customer_id,
    )


async def opened_payloads(messaging: Messaging, customer_id: str) -> list[bytes]:
    """The customer's event payloads as identity's own read models see them: personal fields opened."""
    outbox = messaging.outboxes["identity"]
    async with messaging.pool_of("identity").acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {outbox.columns()} FROM identity.outbox WHERE aggregate_id = $1 ORDER BY aggregate_version",
            customer_id,
        )
        assert outbox.sealing is not None
        opened = await outbox.sealing.open(conn, [outbox.envelope(r) for r in rows], True)
        return [bytes(payload) for payload in opened]


async def stored_version(pool: asyncpg.Pool, customer_id: str) -> int | None:
    return await pool.fetchval("SELECT version FROM identity.customers WHERE id = $1", customer_id)


def failures(results: list[Any]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]


class TestRegisterCustomer:
    async def test_registration_stores_the_customer_at_version_1(self, messaging, pool):
        command = registration(email="Ada.Mixed@Example.COM")
        outcome = await messaging.bus.execute(command)
        assert outcome == Outcome(aggregate_id=command.customer_id, version=1, created_id=command.customer_id)
        row = await pool.fetchrow(
            "SELECT external_id, email_key, state->>'email' AS email, version FROM identity.customers"
            " WHERE id = $1",
            command.customer_id,
        )
        assert dict(row) == {
            "external_id": command.external_id,
            "email_key": "ada.mixed@example.com",
            "email": "Ada.Mixed@Example.COM",
            "version": 1,
        }

    async def test_external_id_must_be_unique(self, messaging, pool):
        first = registration()
        await messaging.bus.execute(first)
        clash = registration(external_id=first.external_id)
        with pytest.raises(ExternalIdAlreadyRegistered) as raised:
            await messaging.bus.execute(clash)
        assert isinstance(raised.value, Conflict)
        assert await stored_version(pool, clash.customer_id) is None
        assert await outbox_rows(pool, clash.customer_id) == []

    @pytest.mark.parametrize(
        "variant", [str.upper, str.lower, str.title, lambda e: e], ids=["upper", "lower", "title", "same"]
    )
    async def test_email_must_be_unique_case_insensitively(self, messaging, pool, variant):
        unique = uuid.uuid4().hex[:8]
        await messaging.bus.execute(registration(email=f"Grace.{unique}@Navy.example"))
        clash = registration(email=variant(f"Grace.{unique}@Navy.example"))
        with pytest.raises(EmailAlreadyRegistered) as raised:
            await messaging.bus.execute(clash)
        assert isinstance(raised.value, Conflict)
        assert await stored_version(pool, clash.customer_id) is None
        assert await outbox_rows(pool, clash.customer_id) == []

    async def test_external_ids_differing_only_in_case_are_distinct(self, messaging):
        unique = uuid.uuid4().hex[:8]
        await messaging.bus.execute(registration(external_id=f"crm-{unique}-a"))
        outcome = await messaging.bus.execute(registration(external_id=f"CRM-{unique}-A"))
        assert outcome.version == 1

    async def test_concurrent_registrations_of_one_email_let_exactly_one_through(
        self, messaging, other, pool
    ):
        unique = uuid.uuid4().hex[:8]
        spellings = [
            f"race.{unique}@example.com",
            f"RACE.{unique}@EXAMPLE.COM",
            f"Race.{unique}@Example.com",
        ]
        commands = [registration(email=spellings[n % 3]) for n in range(9)]
        results = await asyncio.gather(
            *(bus.execute(c) for bus, c in zip([messaging.bus, other.bus] * 5, commands, strict=False)),
            return_exceptions=True,
        )
        assert len(failures(results)) == 8
        assert all(isinstance(f, EmailAlreadyRegistered) for f in failures(results)), failures(results)
        stored = await pool.fetch(
            "SELECT id FROM identity.customers WHERE email_key = $1", f"race.{unique}@example.com"
        )
        assert len(stored) == 1
        winners = [c.customer_id for c, r in zip(commands, results, strict=True) if isinstance(r, Outcome)]
        assert winners == [stored[0]["id"]]
        events_written = await pool.fetchval(
            "SELECT count(*) FROM identity.outbox WHERE aggregate_id = ANY($1)",
            [c.customer_id for c in commands],
        )
        assert events_written == 1

    async def test_concurrent_registrations_of_one_external_id_let_exactly_one_through(
        self, messaging, other, pool
    ):
        external_id = f"crm-race-{uuid.uuid4().hex[:8]}"
        commands = [registration(external_id=external_id) for _ in range(8)]
        results = await asyncio.gather(
            *(bus.execute(c) for bus, c in zip([messaging.bus, other.bus] * 4, commands, strict=True)),
            return_exceptions=True,
        )
        assert len(failures(results)) == 7
        assert all(isinstance(f, ExternalIdAlreadyRegistered) for f in failures(results)), failures(results)
        stored = await pool.fetchval(
            "SELECT count(*) FROM identity.customers WHERE external_id = $1", external_id
        )
        assert stored == 1
        events_written = await pool.fetchval(
            "SELECT count(*) FROM identity.outbox WHERE aggregate_id = ANY($1)",
            [c.customer_id for c in commands],
        )
        assert events_written == 1


async def email_of(pool: asyncpg.Pool, customer_id: str) -> tuple[str, str]:
    row = await pool.fetchrow(
        "SELECT state->>'email' AS email, email_key FROM identity.customers WHERE id = $1", customer_id
    )
    return row["email"], row["email_key"]


class TestChangeEmail:
    async def test_the_new_address_is_stored_as_given_and_its_key_follows(self, messaging, pool):
        customer_id = await registered(messaging)
        before = await email_of(pool, customer_id)
        outcome = await messaging.bus.execute(
            ChangeEmail(customer_id=customer_id, email="Augusta.King@Example.org")
        )
        assert outcome.version == 2
        assert await email_of(pool, customer_id) == ("Augusta.King@Example.org", "augusta.king@example.org")
        last = (await outbox_rows(pool, customer_id))[-1]
        opened = (await opened_payloads(messaging, customer_id))[-1]
        assert registry.decode(last["type"], opened) == events.EmailChanged(
            customer_id=customer_id, email="Augusta.King@Example.org", previous_email=before[0]
        )

    @pytest.mark.parametrize("variant", [str.upper, str.lower, lambda e: e], ids=["upper", "lower", "same"])
    async def test_another_customers_address_in_any_case_is_taken(self, messaging, pool, variant):
        unique = uuid.uuid4().hex[:8]
        await registered(messaging, email=f"Grace.{unique}@Navy.example")
        customer_id = await registered(messaging)
        before = await email_of(pool, customer_id)
        with pytest.raises(EmailAlreadyRegistered):
            await messaging.bus.execute(
                ChangeEmail(customer_id=customer_id, email=variant(f"Grace.{unique}@Navy.example"))
            )
        assert await email_of(pool, customer_id) == before
        assert await stored_version(pool, customer_id) == 1
        assert len(await outbox_rows(pool, customer_id)) == 1

    async def test_a_change_of_case_only_is_a_change_and_the_same_address_is_none(self, messaging, pool):
        unique = uuid.uuid4().hex[:8]
        customer_id = await registered(messaging, email=f"ada.{unique}@example.com")
        outcome = await messaging.bus.execute(
            ChangeEmail(customer_id=customer_id, email=f"Ada.{unique}@Example.com")
        )
        assert outcome.version == 2
        assert await email_of(pool, customer_id) == (f"Ada.{unique}@Example.com", f"ada.{unique}@example.com")
        again = await messaging.bus.execute(
            ChangeEmail(customer_id=customer_id, email=f"Ada.{unique}@Example.com")
        )
        assert again.version == 2
        assert len(await outbox_rows(pool, customer_id)) == 2

    async def test_an_address_given_up_can_be_taken_by_another_customer(self, messaging, pool):
        unique = uuid.uuid4().hex[:8]
        first = await registered(messaging, email=f"ada.{unique}@example.com")
        await messaging.bus.execute(ChangeEmail(customer_id=first, email=f"augusta.{unique}@example.com"))
        second = await registered(messaging, email=f"ADA.{unique}@example.com")
        third = await registered(messaging)
        with pytest.raises(EmailAlreadyRegistered):
            await messaging.bus.execute(ChangeEmail(customer_id=third, email=f"Augusta.{unique}@example.com"))
        await messaging.bus.execute(ChangeEmail(customer_id=first, email=f"ada.{unique}@example.org"))
        await messaging.bus.execute(ChangeEmail(customer_id=third, email=f"Augusta.{unique}@example.com"))
        assert (await email_of(pool, second))[1] == f"ada.{unique}@example.com"
        assert (await email_of(pool, third))[1] == f"augusta.{unique}@example.com"

    async def test_a_closed_customer_keeps_its_address(self, messaging, pool):
        customer_id = await registered(messaging)
        await messaging.bus.execute(CloseAccount(customer_id=customer_id))
        before = await email_of(pool, customer_id)
        with pytest.raises(CustomerClosed):
            await messaging.bus.execute(ChangeEmail(customer_id=customer_id, email="zed@example.com"))
        assert await email_of(pool, customer_id) == before
        assert await stored_version(pool, customer_id) == 2

    async def test_concurrent_changes_and_registrations_of_one_address_let_exactly_one_through(
        self, messaging, other, pool
    ):
        for _ in range(25):
            unique = uuid.uuid4().hex[:8]
            spellings = [
                f"race.{unique}@example.com",
                f"RACE.{unique}@EXAMPLE.COM",
                f"Race.{unique}@Example.com",
            ]
            changing = [await registered(messaging) for _ in range(4)]
            commands: list[Command] = [
                ChangeEmail(customer_id=cid, email=spellings[n % 3]) for n, cid in enumerate(changing)
            ]
            commands += [registration(email=spellings[n % 3]) for n in range(4)]
            random.shuffle(commands)
            results = await asyncio.gather(
                *(bus.execute(c) for bus, c in zip([messaging.bus, other.bus] * 4, commands, strict=True)),
                return_exceptions=True,
            )
            assert len(failures(results)) == 7, results
            assert all(isinstance(f, EmailAlreadyRegistered) for f in failures(results)), failures(results)
            holders = await pool.fetch(
                "SELECT id FROM identity.customers WHERE email_key = $1", f"race.{unique}@example.com"
            )
            winners = [
                c.aggregate_id for c, r in zip(commands, results, strict=True) if isinstance(r, Outcome)
            ]
            assert [h["id"] for h in holders] == winners
            events_written = await pool.fetchval(
                "SELECT count(*) FROM identity.outbox WHERE aggregate_id = ANY($1) AND aggregate_version > 1",
                changing,
            )
            registered_now = await pool.fetchval(
                "SELECT count(*) FROM identity.outbox WHERE aggregate_id = ANY($1)",
                [c.aggregate_id for c in commands if isinstance(c, RegisterCustomer)],
            )
            assert events_written + registered_now == 1


class TestVersionChecks:
    async def test_matching_expected_version_applies(self, messaging, pool):
        customer_id = await registered(messaging)
        outcome = await messaging.bus.execute(
            UpdateProfile(customer_id=customer_id, first_name="Augusta", expected_version=1)
        )
        assert outcome.version == 2
        assert await stored_version(pool, customer_id) == 2

    async def test_stale_expected_version_is_a_version_mismatch_and_writes_nothing(self, messaging, pool):
        customer_id = await registered(messaging)
        await messaging.bus.execute(UpgradeTier(customer_id=customer_id, new_tier="Silver"))
        with pytest.raises(VersionMismatch) as raised:
            await messaging.bus.execute(
                UpdateProfile(customer_id=customer_id, first_name="Augusta", expected_version=1)
            )
        assert (raised.value.expected, raised.value.actual) == (1, 2)
        assert await stored_version(pool, customer_id) == 2
        assert len(await outbox_rows(pool, customer_id)) == 2

    @pytest.mark.parametrize(
        "command",
        [
            lambda cid, aid: UpdateProfile(customer_id=cid, first_name="X", expected_version=99),
            lambda cid, aid: ChangeEmail(customer_id=cid, email="x@example.com", expected_version=99),
            lambda cid, aid: new_address(cid, expected_version=99),
            lambda cid, aid: UpdateAddress(
                customer_id=cid, address_id=aid, city="Paris", expected_version=99
            ),
            lambda cid, aid: RemoveAddress(customer_id=cid, address_id=aid, expected_version=99),
            lambda cid, aid: SetDefaultAddress(customer_id=cid, address_id=aid, expected_version=99),
            lambda cid, aid: SuspendAccount(customer_id=cid, reason="fraud check", expected_version=99),
            lambda cid, aid: ReactivateAccount(customer_id=cid, expected_version=99),
            lambda cid, aid: CloseAccount(customer_id=cid, expected_version=99),
            lambda cid, aid: UpgradeTier(customer_id=cid, new_tier="Gold", expected_version=99),
        ],
        ids=[
            "profile",
            "email",
            "add",
            "update-address",
            "remove",
            "default",
            "suspend",
            "reactivate",
            "close",
            "tier",
        ],
    )
    async def test_every_command_checks_the_expected_version(
        self, messaging, pool, command: Callable[[str, str], Command]
    ):
        customer_id = await registered(messaging)
        first, second = new_address(customer_id), new_address(customer_id)
        await messaging.bus.execute(first)
        await messaging.bus.execute(second)
        with pytest.raises(VersionMismatch):
            await messaging.bus.execute(command(customer_id, second.address_id))
        assert await stored_version(pool, customer_id) == 3

    async def test_two_concurrent_commands_on_one_customer_both_apply_in_arrival_order(self, messaging, pool):
        customer_id = await registered(messaging)
        outcomes = await asyncio.gather(
            messaging.bus.execute(UpdateProfile(customer_id=customer_id, first_name="Augusta")),
            messaging.bus.execute(UpgradeTier(customer_id=customer_id, new_tier="Gold")),
        )
        assert [o.version for o in outcomes] == [2, 3]
        rows = await outbox_rows(pool, customer_id)
        assert [(r["aggregate_version"], r["type"]) for r in rows] == [
            (1, "identity.CustomerRegistered"),
            (2, "identity.ProfileUpdated"),
            (3, "identity.TierUpgraded"),
        ]

    async def test_two_buses_racing_on_one_customer_lose_no_update(self, messaging, other, pool):
        customer_id = await registered(messaging)
        outcomes = await asyncio.gather(
            messaging.bus.execute(UpdateProfile(customer_id=customer_id, first_name="Augusta")),
            other.bus.execute(UpgradeTier(customer_id=customer_id, new_tier="Gold")),
        )
        assert sorted(o.version for o in outcomes) == [2, 3]
        rows = await outbox_rows(pool, customer_id)
        assert [r["aggregate_version"] for r in rows] == [1, 2, 3]
        state = await pool.fetchrow(
            "SELECT state->>'first_name' AS first_name, state->>'tier' AS tier, version"
            " FROM identity.customers WHERE id = $1",
            customer_id,
        )
        assert dict(state) == {"first_name": "Augusta", "tier": "Gold", "version": 3}

    async def test_a_command_that_changes_nothing_keeps_the_version_and_writes_no_event(
        self, messaging, pool
    ):
        customer_id = await registered(messaging, first_name="Ada")
        outcome = await messaging.bus.execute(UpdateProfile(customer_id=customer_id, first_name="Ada"))
        assert outcome.version == 1
        assert len(await outbox_rows(pool, customer_id)) == 1

    async def test_a_refused_command_keeps_the_version_and_writes_no_event(self, messaging, pool):
        customer_id = await registered(messaging)
        with pytest.raises(TransitionNotAllowed):
            await messaging.bus.execute(ReactivateAccount(customer_id=customer_id))
        await messaging.bus.execute(CloseAccount(customer_id=customer_id))
        with pytest.raises(CustomerClosed):
            await messaging.bus.execute(UpgradeTier(customer_id=customer_id, new_tier="Gold"))
        assert await stored_version(pool, customer_id) == 2
        assert [r["type"] for r in await outbox_rows(pool, customer_id)] == [
            "identity.CustomerRegistered",
            "identity.AccountClosed",
        ]


def every_other_command(customer_id: str, address_id: str) -> list[Command]:
    return [
        UpdateProfile(customer_id=customer_id, first_name="X"),
        ChangeEmail(customer_id=customer_id, email="x@example.com"),
        new_address(customer_id),
        UpdateAddress(customer_id=customer_id, address_id=address_id, city="Paris"),
        RemoveAddress(customer_id=customer_id, address_id=address_id),
        SetDefaultAddress(customer_id=customer_id, address_id=address_id),
        SuspendAccount(customer_id=customer_id, reason="fraud check"),
        ReactivateAccount(customer_id=customer_id),
        CloseAccount(customer_id=customer_id),
        UpgradeTier(customer_id=customer_id, new_tier="Gold"),
    ]


class TestUnknownCustomer:
    @pytest.mark.parametrize("index", range(10))
    async def test_command_on_an_unknown_customer_is_not_found(self, messaging, pool, index: int):
        customer_id = str(uuid.uuid4())
        command = every_other_command(customer_id, str(uuid.uuid4()))[index]
        with pytest.raises(NotFound):
            await messaging.bus.execute(command)
        assert await outbox_rows(pool, customer_id) == []

    @pytest.mark.parametrize(
        "command",
        [
            lambda cid: UpdateAddress(customer_id=cid, address_id="no-such-address", city="Paris"),
            lambda cid: RemoveAddress(customer_id=cid, address_id="no-such-address"),
            lambda cid: SetDefaultAddress(customer_id=cid, address_id="no-such-address"),
        ],
        ids=["update", "remove", "default"],
    )
    async def test_command_on_an_unknown_address_is_not_found(self, messaging, pool, command):
        customer_id = await registered(messaging)
        await messaging.bus.execute(new_address(customer_id))
        with pytest.raises(AddressNotFound) as raised:
            await messaging.bus.execute(command(customer_id))
        assert isinstance(raised.value, NotFound)
        assert await stored_version(pool, customer_id) == 2


class TestOutboxEnvelope:
    async def test_every_event_is_written_with_its_envelope_and_typed_payload(self, messaging, pool):
        command = registration()
        customer_id = command.customer_id
        home, work = new_address(customer_id), new_address(customer_id, label="Work", is_default=True)
        script: list[Command] = [
            command,
            UpdateProfile(customer_id=customer_id, phone=None, date_of_birth=date(1985, 2, 28)),
            home,
            work,
            UpdateAddress(customer_id=customer_id, address_id=work.address_id, geo_lat=51.5, geo_lng=-0.12),
            SetDefaultAddress(customer_id=customer_id, address_id=home.address_id),
            RemoveAddress(customer_id=customer_id, address_id=work.address_id),
            SuspendAccount(customer_id=customer_id, reason="chargeback under review"),
            ReactivateAccount(customer_id=customer_id),
            UpgradeTier(customer_id=customer_id, new_tier="Platinum"),
            CloseAccount(customer_id=customer_id),
        ]
        metas = [Meta(correlation_id=f"corr-{n}-{uuid.uuid4().hex[:6]}") for n in range(len(script))]
        for step, meta in zip(script, metas, strict=True):
            await messaging.bus.execute(step, meta)

        rows = await outbox_rows(pool, customer_id)
        assert [r["type"] for r in rows] == [
            "identity.CustomerRegistered",
            "identity.ProfileUpdated",
            "identity.AddressAdded",
            "identity.AddressAdded",
            "identity.AddressUpdated",
            "identity.DefaultAddressChanged",
            "identity.AddressRemoved",
            "identity.AccountSuspended",
            "identity.AccountReactivated",
            "identity.TierUpgraded",
            "identity.AccountClosed",
        ]
        assert [r["aggregate_version"] for r in rows] == list(range(1, len(script) + 1))
        opened = await opened_payloads(messaging, customer_id)
        for row, meta in zip(rows, metas, strict=True):
            assert row["aggregate_type"] == "Customer"
            assert row["aggregate_id"] == customer_id
            assert row["schema_version"] == 1
            assert isinstance(row["occurred_at"], datetime) and row["occurred_at"].tzinfo is not None
            headers = msgspec.json.decode(row["headers"])
            assert headers["correlation_id"] == meta.correlation_id
            assert headers["causation_id"] == meta.command_id
            payload = registry.decode(row["type"], opened[row["aggregate_version"] - 1])
            assert type(payload).tag() == row["type"]
            assert payload.customer_id == customer_id

        decoded = [registry.decode(r["type"], p) for r, p in zip(rows, opened, strict=True)]
        registered_event, profile, added_home, added_work, moved_geo, default, removed = decoded[:7]
        assert isinstance(registered_event, events.CustomerRegistered)
        assert registered_event.date_of_birth == BORN
        assert isinstance(registered_event.registered_at, datetime)
        assert (registered_event.status, registered_event.tier) == ("Active", "Standard")
        assert profile == events.ProfileUpdated(
            customer_id=customer_id, first_name="Ada", last_name="Lovelace", phone=None,
            date_of_birth=date(1985, 2, 28),
        )  # fmt: skip
        assert added_home.is_default is True and added_home.previous_default_id is None
        assert added_work.is_default is True and added_work.previous_default_id == home.address_id
        assert added_work.label == "Work"
        assert (moved_geo.geo_lat, moved_geo.geo_lng) == (51.5, -0.12)
        assert default == events.DefaultAddressChanged(
            customer_id=customer_id, address_id=home.address_id, previous_default_id=work.address_id
        )
        assert removed == events.AddressRemoved(
            customer_id=customer_id, address_id=work.address_id, new_default_id=None
        )
        assert decoded[7] == events.AccountSuspended(
            customer_id=customer_id, reason="chargeback under review"
        )
        assert decoded[9] == events.TierUpgraded(
            customer_id=customer_id, previous_tier="Standard", new_tier="Platinum"
        )

    async def test_payload_keeps_dates_as_iso_dates_and_booleans_as_json_booleans(self, messaging, pool):
        customer_id = await registered(messaging)
        await messaging.bus.execute(new_address(customer_id, geo_lat=48.8566, geo_lng=2.3522))
        # The plain fields as stored (the personal ones are sealed), and the sealed ones once opened.
        kinds = await pool.fetch(
            "SELECT jsonb_typeof(payload->'registered_at') AS registered_at,"
            " jsonb_typeof(payload->'is_default') AS is_default"
            " FROM identity.outbox WHERE aggregate_id = $1 ORDER BY aggregate_version",
            customer_id,
        )
        registration, address = (
            msgspec.json.decode(p) for p in await opened_payloads(messaging, customer_id)
        )
        assert kinds[0]["registered_at"] == "string" and kinds[1]["is_default"] == "boolean"
        assert registration["date_of_birth"] == "1990-12-10" and isinstance(
            registration["registered_at"], str
        )
        assert address["is_default"] is True
        assert isinstance(address["geo_lat"], float) and address["geo_lat"] == 48.8566

    async def test_the_envelope_names_context_and_causation(self, messaging, pool):
        command = registration()
        meta = Meta(correlation_id="corr-envelope", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
        await messaging.bus.execute(command, meta)
        row = await pool.fetchrow(
            "SELECT position, event_id, type, schema_version, aggregate_type, aggregate_id, aggregate_version,"
            " occurred_at, payload::text AS payload, headers::text AS headers"
            " FROM identity.outbox WHERE aggregate_id = $1",
            command.customer_id,
        )
        envelope = messaging.outboxes["identity"].envelope(row)
        assert envelope.type == "identity.CustomerRegistered"
        assert envelope.context == "identity"
        assert envelope.aggregate_type == "Customer"
        assert envelope.aggregate_id == command.customer_id
        assert envelope.aggregate_version == 1
        assert envelope.correlation_id == "corr-envelope"
        assert envelope.causation_id == meta.command_id
        assert envelope.traceparent == meta.traceparent
        assert isinstance(envelope.event_id, uuid.UUID)
