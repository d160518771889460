"""Every identity route of SPEC §4 over HTTP. The conventions all write routes share (SPEC §3: If-Match,
Idempotency-Key, bodies that are not objects, hostile input) are tested in tests/api/test_write_routes.py.

One app per module runs with its workers (`run_workers=True`) on a database and Redis prefix of its own,
so the projections catch up by themselves: reads are polled until the expected version appears. The app
runs in the test client's own event loop; the test reads the database through its own connection.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.apps import OMIT, created, events_of, eventually, merged, outbox_size, until
from tests.hostile import NOT_IDS
from tests.problems import assert_accepted, assert_problem, is_uuid
from tests.routes import app_routes, send

pytestmark = pytest.mark.anyio

# Every command on a customer but the erasure of its personal data, which only a Closed account takes.
ON_A_CUSTOMER = [
    r for r in app_routes().all if r.params[:1] == ("customer_id",) and r.operation_id != "erasePersonalData"
]
FUTURE = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()  # future even at UTC+14
TIERS = ["Standard", "Silver", "Gold", "Platinum"]
STATUSES = ["Active", "Suspended", "Closed"]


# --- request bodies --------------------------------------------------------------------------------


def person(**overrides: Any) -> dict[str, Any]:
    unique = uuid.uuid4().hex[:12]
    return merged(
        {
            "external_id": f"crm-{unique}",
            "email": f"ada.{unique}@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": "+44 20 7946 0958",
            "date_of_birth": "1990-12-10",
        },
        overrides,
    )


def place(**overrides: Any) -> dict[str, Any]:
    return merged(
        {
            "street": "12 St James's Square",
            "city": "London",
            "postal_code": "SW1Y 4LB",
            "country": "United Kingdom",
        },
        overrides,
    )


# --- helpers ---------------------------------------------------------------------------------------


async def register(client: AsyncTestClient, **overrides: Any) -> str:
    return await created(client, "/customers", person(**overrides), "customer_id")


async def add_address(client: AsyncTestClient, customer_id: str, **overrides: Any) -> str:
    return await created(client, f"/customers/{customer_id}/addresses", place(**overrides), "address_id")


async def customer_with_addresses(client: AsyncTestClient, count: int) -> tuple[str, list[str]]:
    customer_id = await register(client)
    return customer_id, [await add_address(client, customer_id, street=f"{n} Main St") for n in range(count)]


async def card(client: AsyncTestClient, customer_id: str, version: int) -> dict[str, Any]:
    response = await eventually(client, f"/customers/{customer_id}", version)
    body: dict[str, Any] = response.json()
    assert body["version"] == version
    assert response.headers["etag"] == f'"{version}"'
    return body


async def book(client: AsyncTestClient, customer_id: str, version: int) -> list[dict[str, Any]]:
    response = await eventually(client, f"/customers/{customer_id}/addresses", version)
    assert response.headers["etag"] == f'"{version}"'
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def customers_with_external_id(db: asyncpg.Connection, external_id: str) -> int:
    return int(
        await db.fetchval("SELECT count(*) FROM identity.customers WHERE external_id = $1", external_id)
    )


# --- POST /customers -------------------------------------------------------------------------------

BAD_REGISTRATIONS = [
    *(({name: OMIT}, name) for name in ("external_id", "email", "first_name", "last_name")),
    *(({name: None}, name) for name in ("external_id", "email", "first_name", "last_name")),
    ({"external_id": 10042}, "external_id"),
    ({"email": True}, "email"),
    ({"first_name": ["Ada"]}, "first_name"),
    ({"last_name": {"text": "Lovelace"}}, "last_name"),
    ({"phone": 442079460958}, "phone"),
    ({"date_of_birth": 19901210}, "date_of_birth"),
    ({"date_of_birth": "10/12/1990"}, "date_of_birth"),
    ({"date_of_birth": "1990-13-01"}, "date_of_birth"),
    ({"date_of_birth": "1990-02-30"}, "date_of_birth"),
    ({"date_of_birth": "1990-12-10T00:00:00"}, "date_of_birth"),
    ({"date_of_birth": ""}, "date_of_birth"),
    ({"date_of_birth": FUTURE}, "date_of_birth"),
    ({"date_of_birth": "9999-12-31"}, "date_of_birth"),
    ({"nickname": "Ada"}, "nickname"),
    ({"status": "Closed"}, "status"),
    ({"external_id": ""}, "external_id"),
    ({"external_id": "   "}, "external_id"),
    ({"external_id": "x" * 256}, "external_id"),
    ({"email": "a" * 64 + "@" + "b" * 186 + ".com"}, "email"),  # 255 characters
    ({"first_name": ""}, "first_name"),
    ({"first_name": "   "}, "first_name"),
    ({"first_name": "x" * 101}, "first_name"),
    ({"last_name": ""}, "last_name"),
    ({"last_name": "y" * 101}, "last_name"),
    ({"phone": "1" * 21}, "phone"),
]
BAD_EMAILS = [
    "",
    "plain",
    "@example.com",
    "ada@",
    "ada@@example.com",
    "ada@lovelace@example.com",
    "ada lovelace@example.com",
    "ada@example .com",
    "ada\t@example.com",
    ".ada@example.com",
    "ada.@example.com",
    "ada@.example.com",
    "ada@example.com.",
    "ada..lovelace@example.com",
    "ada@example..com",
    "ada@localhost",
    "ada@-example.com",
    "ada@example-.com",
    "ada@sub.-example.com",
    "ada;l@example.com",
    "ada,l@example.com",
    "ada(l)@example.com",
    'ada"l@example.com',
    "ada:l@example.com",
    "<ada>@example.com",
    "ada\\l@example.com",
    "ada[l]@example.com",
    "ada@exa[mple.com",
    "ada@[300.1.1.1]",
    "ada@[not-an-ip]",
]
BAD_PHONES = [
    "call me",
    "+",
    "++44 20 7946",
    "44+20",
    "020-ABC-1234",
    "+44 (20) 7946 0958 ext",
    "()- ",
    "1.2.3",
]


class TestRegisterCustomer:
    async def test_created_with_location_new_id_and_version_1(self, client):
        response = await client.post("/customers", json=person())
        assert response.status_code == 201, response.text
        body = response.json()
        assert is_uuid(body["customer_id"])
        assert body == {"customer_id": body["customer_id"], "version": 1}
        assert response.headers["location"] == f"/customers/{body['customer_id']}"
        assert response.headers["etag"] == '"1"'

    async def test_every_registration_gets_a_new_id(self, client):
        assert await register(client) != await register(client)

    async def test_the_card_shows_the_registered_customer_active_and_standard(self, client):
        given = person(email=f"Ada.Lovelace.{uuid.uuid4().hex[:8]}@Example.com")
        customer_id = (await client.post("/customers", json=given)).json()["customer_id"]
        shown = await card(client, customer_id, 1)
        registered_at = datetime.fromisoformat(shown.pop("registered_at"))
        assert registered_at.tzinfo is not None
        assert abs(datetime.now(UTC) - registered_at) < timedelta(minutes=5)
        assert shown == {
            "customer_id": customer_id,
            "external_id": given["external_id"],
            "email": given["email"],
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": "+44 20 7946 0958",
            "date_of_birth": "1990-12-10",
            "status": "Active",
            "tier": "Standard",
            "version": 1,
        }

    @pytest.mark.parametrize("absent", [OMIT, None])
    async def test_phone_and_date_of_birth_are_optional(self, client, absent):
        customer_id = await register(client, phone=absent, date_of_birth=absent)
        shown = await card(client, customer_id, 1)
        assert shown["phone"] is None and shown["date_of_birth"] is None

    async def test_names_are_stored_stripped(self, client):
        customer_id = await register(client, first_name="  Ada ", last_name=" Lovelace  ")
        shown = await card(client, customer_id, 1)
        assert (shown["first_name"], shown["last_name"]) == ("Ada", "Lovelace")

    async def test_limits_are_inclusive(self, client):
        local = "a" * 64
        email = f"{local}@{'b' * (254 - 64 - 1 - 4 - 9)}.{uuid.uuid4().hex[:8]}.com"
        assert len(email) == 254
        customer_id = await register(
            client,
            external_id="e" * 243 + uuid.uuid4().hex[:12],
            email=email,
            first_name="f" * 100,
            last_name="l" * 100,
            phone="+" + "1" * 19,
            date_of_birth=datetime.now(UTC).date().isoformat(),
        )
        shown = await card(client, customer_id, 1)
        assert shown["email"] == email and len(shown["external_id"]) == 255

    async def test_duplicate_external_id_is_409(self, client, db):
        first = person()
        await register(client, **first)
        response = await client.post("/customers", json=person(external_id=first["external_id"]))
        problem = assert_problem(response, 409)
        assert "external_id" in problem["detail"]
        assert await customers_with_external_id(db, first["external_id"]) == 1

    @pytest.mark.parametrize("spelling", [str.upper, str.lower, str.swapcase])
    async def test_duplicate_email_in_any_case_is_409(self, client, spelling):
        email = f"Grace.Hopper.{uuid.uuid4().hex[:8]}@Navy.example"
        await register(client, email=email)
        problem = assert_problem(await client.post("/customers", json=person(email=spelling(email))), 409)
        assert "email" in problem["detail"]

    async def test_concurrent_registrations_with_one_email_let_exactly_one_through(self, client, db):
        email = f"race.{uuid.uuid4().hex[:8]}@example.com"
        responses = await asyncio.gather(
            *(
                client.post("/customers", json=person(email=email if n % 2 else email.upper()))
                for n in range(6)
            )
        )
        assert sorted(r.status_code for r in responses) == [201] + [409] * 5, [r.text for r in responses]
        assert await db.fetchval("SELECT count(*) FROM identity.customers WHERE email_key = $1", email) == 1

    @pytest.mark.parametrize(("change", "field"), BAD_REGISTRATIONS)
    async def test_invalid_registration_is_422_naming_the_field(self, client, db, change, field):
        body = person(**change)
        assert_problem(await client.post("/customers", json=body), 422, field)
        if isinstance(body.get("external_id"), str):
            assert await customers_with_external_id(db, body["external_id"]) == 0

    @pytest.mark.parametrize("email", BAD_EMAILS)
    async def test_invalid_email_is_422(self, client, email):
        assert_problem(await client.post("/customers", json=person(email=email)), 422, "email")

    @pytest.mark.parametrize(
        "email", ["o'brien+tag@example.co.uk", "x@[192.0.2.1]", "x@[IPv6:2001:db8::1]", "a-b_c@x-y.example"]
    )
    async def test_unusual_but_valid_email_is_accepted(self, client, email):
        unique = uuid.uuid4().hex[:8]
        local, domain = email.split("@")
        await register(client, email=f"{local}.{unique}@{domain}")

    @pytest.mark.parametrize("phone", BAD_PHONES)
    async def test_invalid_phone_is_422(self, client, phone):
        assert_problem(await client.post("/customers", json=person(phone=phone)), 422, "phone")

    @pytest.mark.parametrize(
        "phone", ["+44 20 7946 0958", "(020) 7946-0958", "0123456789", "+1 (555) 010-9999"]
    )
    async def test_valid_phone_is_accepted(self, client, phone):
        await register(client, phone=phone)


# --- PUT /customers/{id}/profile -------------------------------------------------------------------

BAD_PROFILES = [
    ({"first_name": ""}, "first_name"),
    ({"first_name": "  "}, "first_name"),
    ({"first_name": None}, "first_name"),
    ({"first_name": 7}, "first_name"),
    ({"first_name": "x" * 101}, "first_name"),
    ({"last_name": None}, "last_name"),
    ({"last_name": "y" * 101}, "last_name"),
    ({"phone": "call me"}, "phone"),
    ({"phone": "1" * 21}, "phone"),
    ({"phone": 123}, "phone"),
    ({"date_of_birth": FUTURE}, "date_of_birth"),
    ({"date_of_birth": "yesterday"}, "date_of_birth"),
    ({"date_of_birth": 19900101}, "date_of_birth"),
    ({"email": "new@example.com"}, "email"),
    ({"external_id": "other"}, "external_id"),
    ({"first_name": "Ada", "nickname": "A"}, "nickname"),
]


class TestUpdateProfile:
    async def test_given_fields_change_and_omitted_ones_stay(self, client):
        customer_id = await register(client)
        response = await client.put(f"/customers/{customer_id}/profile", json={"first_name": "Augusta"})
        assert_accepted(response, 2)
        shown = await card(client, customer_id, 2)
        assert (shown["first_name"], shown["last_name"]) == ("Augusta", "Lovelace")
        assert (shown["phone"], shown["date_of_birth"]) == ("+44 20 7946 0958", "1990-12-10")

    async def test_null_clears_phone_and_date_of_birth(self, client):
        customer_id = await register(client)
        response = await client.put(
            f"/customers/{customer_id}/profile", json={"phone": None, "date_of_birth": None}
        )
        assert_accepted(response, 2)
        shown = await card(client, customer_id, 2)
        assert shown["phone"] is None and shown["date_of_birth"] is None

    async def test_every_field_can_change_at_once(self, client):
        customer_id = await register(client, phone=None, date_of_birth=None)
        change = {
            "first_name": "Grace",
            "last_name": "Hopper",
            "phone": "+1 555 0100",
            "date_of_birth": "1906-12-09",
        }
        assert_accepted(await client.put(f"/customers/{customer_id}/profile", json=change), 2)
        shown = await card(client, customer_id, 2)
        assert {k: shown[k] for k in change} == change

    @pytest.mark.parametrize("body", [{}, {"first_name": "Ada"}, {"first_name": " Ada "}])
    async def test_a_change_to_the_same_values_keeps_the_version(self, client, db, body):
        customer_id = await register(client)
        assert_accepted(await client.put(f"/customers/{customer_id}/profile", json=body), 1)
        assert await events_of(db, "identity", customer_id) == ["identity.CustomerRegistered"]

    @pytest.mark.parametrize(("change", "field"), BAD_PROFILES)
    async def test_invalid_change_is_422_naming_the_field(self, client, db, change, field):
        customer_id = await register(client)
        assert_problem(await client.put(f"/customers/{customer_id}/profile", json=change), 422, field)
        assert len(await events_of(db, "identity", customer_id)) == 1

    async def test_a_suspended_customer_may_change_the_profile(self, client):
        customer_id = await register(client)
        assert_accepted(await client.put(f"/customers/{customer_id}/suspend", json={"reason": "check"}), 2)
        assert_accepted(await client.put(f"/customers/{customer_id}/profile", json={"first_name": "Eve"}), 3)


# --- the address book ------------------------------------------------------------------------------

BAD_ADDRESSES = [
    *(({name: OMIT}, name) for name in ("street", "city", "postal_code", "country")),
    *(({name: None}, name) for name in ("street", "city", "postal_code", "country", "label", "is_default")),
    *(({name: ""}, name) for name in ("street", "city", "postal_code", "country", "label")),
    ({"street": "   "}, "street"),
    ({"street": "s" * 256}, "street"),
    ({"city": "c" * 101}, "city"),
    ({"postal_code": "p" * 21}, "postal_code"),
    ({"country": "k" * 101}, "country"),
    ({"state": "t" * 101}, "state"),
    ({"street": 12}, "street"),
    ({"label": "Garage"}, "label"),
    ({"label": "home"}, "label"),
    ({"label": 1}, "label"),
    ({"is_default": "yes"}, "is_default"),
    ({"geo_lat": 51.5}, "geo_lng"),
    ({"geo_lng": -0.12}, "geo_lat"),
    ({"geo_lat": 51.5, "geo_lng": None}, "geo_lng"),
    ({"geo_lat": 90.0001, "geo_lng": 0}, "geo_lat"),
    ({"geo_lat": -91, "geo_lng": 0}, "geo_lat"),
    ({"geo_lat": 0, "geo_lng": 180.5}, "geo_lng"),
    ({"geo_lat": 0, "geo_lng": -181}, "geo_lng"),
    ({"geo_lat": 10**30, "geo_lng": 0}, "geo_lat"),
    ({"geo_lat": True, "geo_lng": 0}, "geo_lat"),
    ({"zip": "SW1Y"}, "zip"),
    ({"address_id": str(uuid.uuid4())}, "address_id"),
]


# --- PUT /customers/{id}/email ---------------------------------------------------------------------


def new_email(**overrides: Any) -> dict[str, Any]:
    return merged({"email": f"augusta.{uuid.uuid4().hex[:12]}@example.org"}, overrides)


async def lookup(client: AsyncTestClient, email: str) -> httpx.Response:
    return await client.get(f"/customers?{httpx.QueryParams(email=email)}")


class TestChangeEmail:
    async def test_the_card_and_the_lookup_follow_the_new_address(self, client):
        old = person()
        customer_id = await register(client, **old)
        await eventually(client, f"/customers?{httpx.QueryParams(email=old['email'])}", 1)
        body = new_email(email=f"Augusta.{uuid.uuid4().hex[:8]}@Example.org")
        response = await client.put(f"/customers/{customer_id}/email", json=body)
        assert_accepted(response, 2)
        assert (await card(client, customer_id, 2))["email"] == body["email"]
        for spelling in (body["email"], body["email"].upper()):
            found = await eventually(client, f"/customers?{httpx.QueryParams(email=spelling)}", 2)
            assert found.json()["customer_id"] == customer_id
            assert found.json()["email"] == body["email"]
            assert found.headers["etag"] == '"2"'
        assert_problem(await lookup(client, old["email"]), 404)
        assert_problem(await lookup(client, old["email"].upper()), 404)

    async def test_an_address_given_up_is_found_again_under_its_new_holder(self, client):
        old = person()
        first = await register(client, **old)
        assert_accepted(await client.put(f"/customers/{first}/email", json=new_email()), 2)
        second = await register(client, email=old["email"].upper())
        path = f"/customers?{httpx.QueryParams(email=old['email'])}"
        found = await until(client, path, lambda body: body["customer_id"] == second)
        assert found.json()["email"] == old["email"].upper()

    @pytest.mark.parametrize("spelling", [str.upper, str.lower, str.swapcase, lambda e: e])
    async def test_another_customers_address_in_any_case_is_409_email_taken(self, client, db, spelling):
        taken = f"Grace.Hopper.{uuid.uuid4().hex[:8]}@Navy.example"
        await register(client, email=taken)
        customer_id = await register(client)
        response = await client.put(f"/customers/{customer_id}/email", json={"email": spelling(taken)})
        problem = assert_problem(response, 409)
        assert problem["type"] == "urn:shopstream:problem:email-taken"
        assert "email" in problem["detail"]
        assert await events_of(db, "identity", customer_id) == ["identity.CustomerRegistered"]

    async def test_a_change_of_case_only_is_a_change(self, client):
        email = f"ada.{uuid.uuid4().hex[:8]}@example.com"
        customer_id = await register(client, email=email)
        assert_accepted(await client.put(f"/customers/{customer_id}/email", json={"email": email.title()}), 2)
        assert (await card(client, customer_id, 2))["email"] == email.title()

    async def test_the_same_address_keeps_the_version(self, client, db):
        body = person()
        customer_id = await register(client, **body)
        response = await client.put(f"/customers/{customer_id}/email", json={"email": body["email"]})
        assert_accepted(response, 1)
        assert await events_of(db, "identity", customer_id) == ["identity.CustomerRegistered"]

    @pytest.mark.parametrize("email", [*BAD_EMAILS, None, 7, ["a@b.co"]])
    async def test_invalid_address_is_422_naming_it(self, client, db, email):
        customer_id = await register(client)
        assert_problem(
            await client.put(f"/customers/{customer_id}/email", json={"email": email}), 422, "email"
        )
        assert len(await events_of(db, "identity", customer_id)) == 1

    @pytest.mark.parametrize("body", [{}, {"email": "a@b.co", "first_name": "Ada"}])
    async def test_a_missing_or_extra_field_is_422(self, client, body):
        customer_id = await register(client)
        assert_problem(await client.put(f"/customers/{customer_id}/email", json=body), 422)

    async def test_a_closed_account_refuses_it_with_409(self, client, db):
        customer_id = await register(client)
        assert_accepted(await client.put(f"/customers/{customer_id}/close"), 2)
        problem = assert_problem(await client.put(f"/customers/{customer_id}/email", json=new_email()), 409)
        assert problem["type"] == "urn:shopstream:problem:customer-closed"
        assert len(await events_of(db, "identity", customer_id)) == 2

    async def test_a_suspended_customer_may_change_it(self, client):
        customer_id = await register(client)
        assert_accepted(await client.put(f"/customers/{customer_id}/suspend", json={"reason": "check"}), 2)
        assert_accepted(await client.put(f"/customers/{customer_id}/email", json=new_email()), 3)

    async def test_if_match_of_another_version_is_412_and_the_etag_is_the_new_version(self, client):
        customer_id = await register(client)
        stale = await client.put(
            f"/customers/{customer_id}/email", json=new_email(), headers={"If-Match": '"2"'}
        )
        assert_problem(stale, 412)
        current = await client.put(
            f"/customers/{customer_id}/email", json=new_email(), headers={"If-Match": '"1"'}
        )
        assert_accepted(current, 2)

    async def test_unknown_customer_is_404(self, client):
        assert_problem(await client.put(f"/customers/{uuid.uuid4()}/email", json=new_email()), 404)

    async def test_concurrent_changes_and_a_registration_of_one_address_let_exactly_one_through(
        self, client, db
    ):
        email = f"race.{uuid.uuid4().hex[:8]}@example.com"
        changing = [await register(client) for _ in range(4)]
        responses = await asyncio.gather(
            *(client.put(f"/customers/{c}/email", json={"email": email.upper()}) for c in changing),
            client.post("/customers", json=person(email=email)),
        )
        codes = sorted(r.status_code for r in responses)
        assert codes in ([200] + [409] * 4, [201] + [409] * 4), [r.text for r in responses]
        for refused in (r for r in responses if r.status_code == 409):
            assert refused.json()["type"] == "urn:shopstream:problem:email-taken"
        assert await db.fetchval("SELECT count(*) FROM identity.customers WHERE email_key = $1", email) == 1


class TestAddAddress:
    async def test_created_with_location_new_id_and_the_customer_version(self, client):
        customer_id = await register(client)
        response = await client.post(f"/customers/{customer_id}/addresses", json=place())
        assert response.status_code == 201, response.text
        body = response.json()
        assert is_uuid(body["address_id"])
        assert body == {"address_id": body["address_id"], "version": 2}
        assert response.headers["location"] == f"/customers/{customer_id}/addresses/{body['address_id']}"
        assert response.headers["etag"] == '"2"'

    async def test_the_first_address_is_the_default_with_the_defaults_filled_in(self, client):
        customer_id = await register(client)
        address_id = await add_address(client, customer_id)
        assert await book(client, customer_id, 2) == [
            {
                "address_id": address_id,
                "label": "Home",
                "street": "12 St James's Square",
                "city": "London",
                "state": None,
                "postal_code": "SW1Y 4LB",
                "country": "United Kingdom",
                "is_default": True,
                "geo_lat": None,
                "geo_lng": None,
            }
        ]

    async def test_every_field_is_kept(self, client):
        customer_id = await register(client)
        given = place(label="Work", state="Île-de-France", geo_lat=48.8566, geo_lng=2.3522, is_default=True)
        address_id = await add_address(client, customer_id, **given)
        (shown,) = await book(client, customer_id, 2)
        assert shown == {"address_id": address_id, **given}

    @pytest.mark.parametrize(("lat", "lng"), [(90, 180), (-90, -180), (0, 0), (-33.8688, 151.2093)])
    async def test_coordinates_at_their_limits_are_accepted(self, client, lat, lng):
        customer_id = await register(client)
        await add_address(client, customer_id, geo_lat=lat, geo_lng=lng)
        (shown,) = await book(client, customer_id, 2)
        assert (shown["geo_lat"], shown["geo_lng"]) == (lat, lng)

    async def test_later_addresses_are_not_default_unless_asked(self, client):
        customer_id, (first, second) = await customer_with_addresses(client, 2)
        listed = await book(client, customer_id, 3)
        assert [(a["address_id"], a["is_default"]) for a in listed] == [(first, True), (second, False)]

    async def test_adding_with_is_default_moves_the_flag_and_lists_it_first(self, client):
        customer_id, (first, second) = await customer_with_addresses(client, 2)
        third = await add_address(client, customer_id, label="Other", is_default=True)
        listed = await book(client, customer_id, 4)
        assert [(a["address_id"], a["is_default"]) for a in listed] == [
            (third, True),
            (first, False),
            (second, False),
        ]

    async def test_the_eleventh_address_is_409(self, client, db):
        customer_id, _ = await customer_with_addresses(client, 10)
        problem = assert_problem(await client.post(f"/customers/{customer_id}/addresses", json=place()), 409)
        assert "10" in problem["detail"]
        assert len(await events_of(db, "identity", customer_id)) == 11
        assert len(await book(client, customer_id, 11)) == 10

    @pytest.mark.parametrize(("change", "field"), BAD_ADDRESSES)
    async def test_invalid_address_is_422_naming_the_field(self, client, db, change, field):
        customer_id = await register(client)
        response = await client.post(f"/customers/{customer_id}/addresses", json=place(**change))
        assert_problem(response, 422, field)
        assert len(await events_of(db, "identity", customer_id)) == 1


class TestJsonTypesAreNotCoerced:
    """SPEC §3: an ill-typed field is 422, even where a lenient decoder would coerce it."""

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"is_default": 1}, "is_default"),
            ({"is_default": "true"}, "is_default"),
            ({"geo_lat": "51.5", "geo_lng": "-0.12"}, "geo_lat"),
        ],
    )
    async def test_a_json_value_of_the_wrong_type_is_422(self, client, change, field):
        customer_id = await register(client)
        response = await client.post(f"/customers/{customer_id}/addresses", json=place(**change))
        assert_problem(response, 422, field)


BAD_ADDRESS_CHANGES = [
    *(({name: None}, name) for name in ("street", "city", "postal_code", "country", "label", "is_default")),
    *(({name: ""}, name) for name in ("street", "city", "postal_code", "country")),
    ({"street": "s" * 256}, "street"),
    ({"state": "t" * 101}, "state"),
    ({"label": "Garage"}, "label"),
    ({"geo_lat": 10}, "geo_lng"),  # the address has no coordinates yet
    ({"geo_lng": 10}, "geo_lat"),
    ({"geo_lat": 91, "geo_lng": 0}, "geo_lat"),
    ({"geo_lat": 0, "geo_lng": -180.01}, "geo_lng"),
    ({"geo_lat": "north", "geo_lng": 0}, "geo_lat"),
    ({"zip": "75001"}, "zip"),
]


class TestUpdateAddress:
    async def test_given_fields_change_and_omitted_ones_stay(self, client):
        customer_id, (address_id,) = await customer_with_addresses(client, 1)
        response = await client.put(
            f"/customers/{customer_id}/addresses/{address_id}", json={"city": "Paris", "label": "Work"}
        )
        assert_accepted(response, 3)
        (shown,) = await book(client, customer_id, 3)
        assert (shown["city"], shown["label"], shown["street"], shown["is_default"]) == (
            "Paris",
            "Work",
            "0 Main St",
            True,
        )

    async def test_null_clears_the_state_and_both_coordinates(self, client):
        customer_id = await register(client)
        address_id = await add_address(
            client, customer_id, state="Greater London", geo_lat=51.5, geo_lng=-0.1
        )
        change = {"state": None, "geo_lat": None, "geo_lng": None}
        assert_accepted(await client.put(f"/customers/{customer_id}/addresses/{address_id}", json=change), 3)
        (shown,) = await book(client, customer_id, 3)
        assert (shown["state"], shown["geo_lat"], shown["geo_lng"]) == (None, None, None)

    async def test_is_default_true_moves_the_flag_here(self, client):
        customer_id, (first, second) = await customer_with_addresses(client, 2)
        path = f"/customers/{customer_id}/addresses/{second}"
        assert_accepted(await client.put(path, json={"is_default": True}), 4)
        listed = await book(client, customer_id, 4)
        assert [(a["address_id"], a["is_default"]) for a in listed] == [(second, True), (first, False)]

    async def test_the_default_cannot_be_unflagged_directly(self, client):
        customer_id, (first, _) = await customer_with_addresses(client, 2)
        path = f"/customers/{customer_id}/addresses/{first}"
        assert_problem(await client.put(path, json={"is_default": False}), 409)

    async def test_unknown_address_is_404(self, client):
        customer_id, _ = await customer_with_addresses(client, 1)
        for address_id in (str(uuid.uuid4()), "not-a-uuid"):
            path = f"/customers/{customer_id}/addresses/{address_id}"
            assert_problem(await client.put(path, json={"city": "Paris"}), 404)

    async def test_another_customers_address_is_404(self, client):
        _, (foreign,) = await customer_with_addresses(client, 1)
        customer_id, _ = await customer_with_addresses(client, 1)
        path = f"/customers/{customer_id}/addresses/{foreign}"
        assert_problem(await client.put(path, json={"city": "Paris"}), 404)

    @pytest.mark.parametrize(("change", "field"), BAD_ADDRESS_CHANGES)
    async def test_invalid_change_is_422_naming_the_field(self, client, db, change, field):
        customer_id, (address_id,) = await customer_with_addresses(client, 1)
        response = await client.put(f"/customers/{customer_id}/addresses/{address_id}", json=change)
        assert_problem(response, 422, field)
        assert len(await events_of(db, "identity", customer_id)) == 2


class TestRemoveAddress:
    async def test_removing_another_address_keeps_the_default(self, client):
        customer_id, (first, second) = await customer_with_addresses(client, 2)
        response = await client.delete(f"/customers/{customer_id}/addresses/{second}")
        assert_accepted(response, 4)
        listed = await book(client, customer_id, 4)
        assert [(a["address_id"], a["is_default"]) for a in listed] == [(first, True)]

    async def test_removing_the_default_makes_the_first_remaining_address_default(self, client):
        customer_id, (first, second, third) = await customer_with_addresses(client, 3)
        assert_accepted(await client.delete(f"/customers/{customer_id}/addresses/{first}"), 5)
        listed = await book(client, customer_id, 5)
        assert [(a["address_id"], a["is_default"]) for a in listed] == [(second, True), (third, False)]

    async def test_the_last_address_cannot_be_removed(self, client, db):
        customer_id, (only,) = await customer_with_addresses(client, 1)
        assert_problem(await client.delete(f"/customers/{customer_id}/addresses/{only}"), 409)
        assert len(await events_of(db, "identity", customer_id)) == 2

    async def test_unknown_address_is_404(self, client):
        customer_id, _ = await customer_with_addresses(client, 2)
        assert_problem(await client.delete(f"/customers/{customer_id}/addresses/{uuid.uuid4()}"), 404)

    async def test_an_address_cannot_be_removed_twice(self, client):
        customer_id, (_, second) = await customer_with_addresses(client, 2)
        assert_accepted(await client.delete(f"/customers/{customer_id}/addresses/{second}"), 4)
        assert_problem(await client.delete(f"/customers/{customer_id}/addresses/{second}"), 404)


class TestSetDefaultAddress:
    async def test_setting_a_default_moves_the_flag_and_lists_it_first(self, client):
        customer_id, (first, second, third) = await customer_with_addresses(client, 3)
        assert_accepted(await client.put(f"/customers/{customer_id}/addresses/{third}/default"), 5)
        listed = await book(client, customer_id, 5)
        assert [(a["address_id"], a["is_default"]) for a in listed] == [
            (third, True),
            (first, False),
            (second, False),
        ]

    async def test_choosing_the_current_default_keeps_the_version(self, client, db):
        customer_id, (first, _) = await customer_with_addresses(client, 2)
        assert_accepted(await client.put(f"/customers/{customer_id}/addresses/{first}/default"), 3)
        assert len(await events_of(db, "identity", customer_id)) == 3

    async def test_unknown_address_is_404(self, client):
        customer_id, _ = await customer_with_addresses(client, 1)
        assert_problem(await client.put(f"/customers/{customer_id}/addresses/{uuid.uuid4()}/default"), 404)


# --- account lifecycle -----------------------------------------------------------------------------


class TestSuspendAccount:
    async def test_an_active_account_is_suspended(self, client):
        customer_id = await register(client)
        assert_accepted(
            await client.put(f"/customers/{customer_id}/suspend", json={"reason": "fraud check"}), 2
        )
        assert (await card(client, customer_id, 2))["status"] == "Suspended"

    async def test_a_suspended_account_cannot_be_suspended_again(self, client):
        customer_id = await register(client)
        assert_accepted(await client.put(f"/customers/{customer_id}/suspend", json={"reason": "first"}), 2)
        assert_problem(await client.put(f"/customers/{customer_id}/suspend", json={"reason": "again"}), 409)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "reason"),
            ({"reason": None}, "reason"),
            ({"reason": ""}, "reason"),
            ({"reason": "   "}, "reason"),
            ({"reason": "r" * 501}, "reason"),
            ({"reason": 5}, "reason"),
            ({"reason": ["fraud"]}, "reason"),
            ({"reason": "fraud", "until": "2030-01-01"}, "until"),
        ],
    )
    async def test_invalid_reason_is_422_naming_it(self, client, body, field):
        customer_id = await register(client)
        assert_problem(await client.put(f"/customers/{customer_id}/suspend", json=body), 422, field)

    async def test_a_reason_of_500_characters_is_accepted(self, client):
        customer_id = await register(client)
        assert_accepted(await client.put(f"/customers/{customer_id}/suspend", json={"reason": "r" * 500}), 2)


class TestReactivateAccount:
    async def test_a_suspended_account_is_reactivated(self, client):
        customer_id = await register(client)
        assert_accepted(await client.put(f"/customers/{customer_id}/suspend", json={"reason": "check"}), 2)
        assert_accepted(await client.put(f"/customers/{customer_id}/reactivate"), 3)
        assert (await card(client, customer_id, 3))["status"] == "Active"

    async def test_an_active_account_cannot_be_reactivated(self, client, db):
        customer_id = await register(client)
        assert_problem(await client.put(f"/customers/{customer_id}/reactivate"), 409)
        assert len(await events_of(db, "identity", customer_id)) == 1


class TestCloseAccount:
    @pytest.mark.parametrize("suspended_first", [False, True])
    async def test_an_active_or_suspended_account_is_closed(self, client, suspended_first):
        customer_id = await register(client)
        version = 1
        if suspended_first:
            await client.put(f"/customers/{customer_id}/suspend", json={"reason": "check"})
            version += 1
        assert_accepted(await client.put(f"/customers/{customer_id}/close"), version + 1)
        assert (await card(client, customer_id, version + 1))["status"] == "Closed"

    @pytest.mark.parametrize("route", ON_A_CUSTOMER, ids=str)
    async def test_a_closed_account_refuses_every_command_with_409(self, client, db, route):
        target = await app_routes().target(client, route)
        customer_id = target.ids["customer_id"]
        closed = target.version + 1
        assert_accepted(await client.put(f"/customers/{customer_id}/close"), closed)
        assert_problem(await send(client, route, target.ids), 409)
        assert len(await events_of(db, "identity", customer_id)) == closed


# --- PUT /customers/{id}/tier ----------------------------------------------------------------------


class TestUpgradeTier:
    @pytest.mark.parametrize("target", TIERS[1:])
    async def test_tier_moves_up_even_several_steps(self, client, target):
        customer_id = await register(client)
        assert_accepted(await client.put(f"/customers/{customer_id}/tier", json={"new_tier": target}), 2)
        assert (await card(client, customer_id, 2))["tier"] == target

    @pytest.mark.parametrize("target", ["Standard", "Silver", "Gold"])
    async def test_same_or_lower_tier_is_409(self, client, db, target):
        customer_id = await register(client)
        assert_accepted(await client.put(f"/customers/{customer_id}/tier", json={"new_tier": "Gold"}), 2)
        assert_problem(await client.put(f"/customers/{customer_id}/tier", json={"new_tier": target}), 409)
        assert len(await events_of(db, "identity", customer_id)) == 2

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"new_tier": "Diamond"}, "new_tier"),
            ({"new_tier": "gold"}, "new_tier"),
            ({"new_tier": " Gold"}, "new_tier"),
            ({"new_tier": ""}, "new_tier"),
            ({"new_tier": None}, "new_tier"),
            ({"new_tier": 3}, "new_tier"),
            ({}, "new_tier"),
            ({"tier": "Gold"}, "tier"),
            ({"new_tier": "Gold", "reason": "loyal"}, "reason"),
        ],
    )
    async def test_unknown_or_malformed_tier_is_422(self, client, body, field):
        customer_id = await register(client)
        assert_problem(await client.put(f"/customers/{customer_id}/tier", json=body), 422, field)

    async def test_unknown_tier_is_422_even_when_the_current_tier_is_the_highest(self, client):
        customer_id = await register(client)
        assert_accepted(await client.put(f"/customers/{customer_id}/tier", json={"new_tier": "Platinum"}), 2)
        assert_problem(await client.put(f"/customers/{customer_id}/tier", json={"new_tier": "Mythic"}), 422)


# --- unknown customers and ids ---------------------------------------------------------------------

READ_ROUTES = ["", "/addresses"]


class TestUnknownCustomer:
    @pytest.mark.parametrize("customer_id", NOT_IDS)
    @pytest.mark.parametrize("suffix", READ_ROUTES)
    async def test_reads_of_an_unknown_or_malformed_customer_id_are_404(self, client, customer_id, suffix):
        assert_problem(await client.get(f"/customers/{customer_id}{suffix}"), 404)


# --- Idempotency-Key -------------------------------------------------------------------------------


class TestIdempotencyKey:
    async def test_a_refused_command_does_not_use_up_the_key(self, client):
        customer_id = await register(client)
        headers = {"Idempotency-Key": f"refused-{uuid.uuid4()}"}
        path = f"/customers/{customer_id}/reactivate"
        assert_problem(await client.put(path, headers=headers), 409)
        await client.put(f"/customers/{customer_id}/suspend", json={"reason": "check"})
        assert_accepted(await client.put(path, headers=headers), 3)


# --- hostile lookups ------------------------------------------------------------------------------


class TestHostileLookups:
    @pytest.mark.parametrize(
        "query",
        [
            "email=%00",
            "external_id=%00",
            "email=",
            "external_id=",
            "email=" + "a" * 5000,
            "email=a&email=b",
            "x=1",
        ],
    )
    async def test_hostile_lookups_are_answered_below_500(self, client, query):
        response = await client.get(f"/customers?{query}")
        assert response.status_code in (404, 422), response.text
        assert_problem(response, response.status_code)


# --- reads -----------------------------------------------------------------------------------------


class TestCustomerCard:
    async def test_the_card_follows_every_change_with_its_version(self, client):
        customer_id = await register(client)
        await client.put(f"/customers/{customer_id}/profile", json={"last_name": "King"})
        await client.put(f"/customers/{customer_id}/tier", json={"new_tier": "Silver"})
        await client.put(f"/customers/{customer_id}/suspend", json={"reason": "check"})
        await add_address(client, customer_id)
        shown = await card(client, customer_id, 5)
        assert (shown["last_name"], shown["tier"], shown["status"]) == ("King", "Silver", "Suspended")


class TestAddressBookRead:
    async def test_an_empty_address_book_is_an_empty_list(self, client):
        customer_id = await register(client)
        response = await eventually(client, f"/customers/{customer_id}/addresses", 1)
        assert response.json()["items"] == []
        assert response.headers["etag"] == '"1"'

    async def test_default_first_then_in_the_order_added(self, client):
        customer_id, ids = await customer_with_addresses(client, 4)
        assert_accepted(await client.put(f"/customers/{customer_id}/addresses/{ids[2]}/default"), 6)
        listed = await book(client, customer_id, 6)
        assert [a["address_id"] for a in listed] == [ids[2], ids[0], ids[1], ids[3]]
        assert [a["is_default"] for a in listed] == [True, False, False, False]

    async def test_the_address_book_version_moves_with_every_event_of_the_customer(self, client):
        customer_id, _ = await customer_with_addresses(client, 1)
        await client.put(f"/customers/{customer_id}/tier", json={"new_tier": "Gold"})
        response = await eventually(client, f"/customers/{customer_id}/addresses", 3)
        assert response.json()["version"] == 3


class TestLookup:
    async def test_by_email_in_any_case(self, client):
        email = f"Mixed.Case.{uuid.uuid4().hex[:8]}@Example.com"
        customer_id = await register(client, email=email)
        await eventually(client, f"/customers/{customer_id}", 1)
        for spelling in (email, email.lower(), email.upper()):
            response = await eventually(client, f"/customers?{httpx.QueryParams(email=spelling)}", 1)
            assert response.json()["customer_id"] == customer_id
            assert response.json()["email"] == email
            assert response.headers["etag"] == '"1"'

    async def test_by_external_id(self, client):
        body = person()
        customer_id = await register(client, **body)
        response = await eventually(
            client, f"/customers?{httpx.QueryParams(external_id=body['external_id'])}", 1
        )
        assert response.json()["customer_id"] == customer_id

    async def test_the_lookup_shows_the_current_card(self, client):
        body = person()
        customer_id = await register(client, **body)
        await client.put(f"/customers/{customer_id}/tier", json={"new_tier": "Platinum"})
        response = await eventually(
            client, f"/customers?{httpx.QueryParams(external_id=body['external_id'])}", 2
        )
        assert response.json()["tier"] == "Platinum"

    @pytest.mark.parametrize(
        "query", [{"email": "nobody@example.com"}, {"external_id": "nobody"}, {"email": "NOBODY@EXAMPLE.COM"}]
    )
    async def test_nobody_matching_is_404(self, client, query):
        assert_problem(await client.get(f"/customers?{httpx.QueryParams(query)}"), 404)

    async def test_external_id_is_matched_exactly(self, client):
        body = person()
        await register(client, **body)
        await eventually(client, f"/customers?{httpx.QueryParams(external_id=body['external_id'])}", 1)
        assert_problem(
            await client.get(f"/customers?{httpx.QueryParams(external_id=body['external_id'].upper())}"), 404
        )

    @pytest.mark.parametrize("query", ["", "?email=a@example.com&external_id=x"])
    async def test_exactly_one_of_email_and_external_id_is_required(self, client, query):
        assert_problem(await client.get(f"/customers{query}"), 422)


class TestLookupByBody:
    """`POST /customers/lookup`: the lookup by e-mail with the address in the body, not the URL."""

    async def test_by_email_in_any_case(self, client, db):
        email = f"Body.Case.{uuid.uuid4().hex[:8]}@Example.com"
        customer_id = await register(client, email=email)
        await eventually(client, f"/customers/{customer_id}", 1)
        before = await outbox_size(db, "identity")
        for spelling in (email, email.lower(), email.upper()):
            response = await client.post("/customers/lookup", json={"email": spelling})
            assert response.status_code == 200, response.text
            assert response.json()["customer_id"] == customer_id and response.json()["email"] == email
            assert response.headers["etag"] == '"1"'
        assert await outbox_size(db, "identity") == before  # a read: nothing recorded

    async def test_answers_as_the_query_string_form_does(self, client):
        customer_id = await register(client, **person())
        card = (await eventually(client, f"/customers/{customer_id}", 1)).json()
        by_query = await client.get(f"/customers?{httpx.QueryParams(email=card['email'])}")
        by_body = await client.post("/customers/lookup", json={"email": card["email"]})
        assert by_body.json() == by_query.json() == card

    async def test_nobody_matching_is_404(self, client):
        assert_problem(await client.post("/customers/lookup", json={"email": "nobody@example.com"}), 404)

    @pytest.mark.parametrize(
        "body",
        [{}, {"email": "not-an-address"}, {"email": 7}, {"email": "a@example.com", "external_id": "x"}],
    )
    async def test_a_body_without_one_valid_email_is_422(self, client, body):
        assert_problem(await client.post("/customers/lookup", json=body), 422)


async def write_model_segments(db: asyncpg.Connection) -> dict[str, dict[str, int]]:
    rows = await db.fetch("SELECT state->>'tier' AS tier, state->>'status' AS status FROM identity.customers")
    return {
        "tiers": {t: sum(r["tier"] == t for r in rows) for t in TIERS},
        "statuses": {s: sum(r["status"] == s for r in rows) for s in STATUSES},
    }


async def segments_matching_the_write_model(client, db, timeout: float = 30.0) -> dict[str, dict[str, int]]:
    deadline = time.monotonic() + timeout
    while True:
        expected = await write_model_segments(db)
        response = await client.get("/customers/segments")
        assert response.status_code == 200, response.text
        if response.json() == expected:
            return expected
        if time.monotonic() > deadline:
            raise AssertionError(f"segments {response.json()} never matched the customers {expected}")
        await asyncio.sleep(0.05)


class TestSegments:
    async def test_segments_name_every_tier_and_status(self, client):
        response = await client.get("/customers/segments")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"tiers", "statuses"}
        assert list(body["tiers"]) == TIERS and set(body["statuses"]) == set(STATUSES)
        assert all(isinstance(n, int) and n >= 0 for part in body.values() for n in part.values())

    async def test_counts_move_with_registrations_status_changes_and_upgrades(self, client, db):
        before = await segments_matching_the_write_model(client, db)
        first, second = await register(client), await register(client)
        await client.put(f"/customers/{first}/tier", json={"new_tier": "Gold"})
        await client.put(f"/customers/{second}/suspend", json={"reason": "check"})
        await client.put(f"/customers/{second}/tier", json={"new_tier": "Silver"})
        after = await segments_matching_the_write_model(client, db)
        assert after["tiers"]["Gold"] == before["tiers"]["Gold"] + 1
        assert after["tiers"]["Silver"] == before["tiers"]["Silver"] + 1
        assert after["tiers"]["Standard"] == before["tiers"]["Standard"]
        assert after["statuses"]["Active"] == before["statuses"]["Active"] + 1
        assert after["statuses"]["Suspended"] == before["statuses"]["Suspended"] + 1

        await client.put(f"/customers/{second}/close")
        await client.put(f"/customers/{first}/suspend", json={"reason": "check"})
        await client.put(f"/customers/{first}/reactivate")
        final = await segments_matching_the_write_model(client, db)
        assert final["statuses"]["Suspended"] == before["statuses"]["Suspended"]
        assert final["statuses"]["Closed"] == before["statuses"]["Closed"] + 1
        assert final["statuses"]["Active"] == before["statuses"]["Active"] + 1
        everyone = sum(before["tiers"].values()) + 2
        assert sum(final["tiers"].values()) == sum(final["statuses"].values()) == everyone
