"""The Customer aggregate, pure: every rule of SPEC §4, checked without I/O."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest

from bus.errors import Conflict, Invalid, NotFound
from bus.messages import Event, registry
from contexts.identity import events, values
from contexts.identity.address_book import MAX_ADDRESSES
from contexts.identity.customer import Address, Customer, CustomerState
from contexts.identity.errors import (
    AddressAlreadyExists,
    AddressLimitReached,
    AddressNotFound,
    CustomerClosed,
    DefaultAddressRequired,
    LastAddressCannotBeRemoved,
    TierNotHigher,
    TransitionNotAllowed,
)
from contexts.identity.values import AddressLabel, Status, Tier

TODAY = date(2024, 6, 15)
NOW = datetime(2024, 6, 15, 9, 30, tzinfo=UTC)


def register(**overrides: Any) -> Customer:
    fields: dict[str, Any] = {
        "customer_id": "c-1",
        "external_id": "ext-1",
        "email": "Ada.Lovelace@Example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0958",
        "date_of_birth": date(1990, 12, 10),
        "registered_at": NOW,
        "today": TODAY,
    }
    return Customer.register(**(fields | overrides))


def saved(customer: Customer) -> Customer:
    customer.mark_saved()
    return customer


def address(**overrides: Any) -> dict[str, Any]:
    return {"street": "1 Main St", "city": "London", "postal_code": "N1 9GU", "country": "UK"} | overrides


def with_addresses(count: int, **overrides: Any) -> Customer:
    """A saved customer with addresses a1..a<count>; a1 is the default."""
    customer = register(**overrides)
    for n in range(1, count + 1):
        customer.add_address(f"a{n}", **address(street=f"{n} Main St"))
    return saved(customer)


def in_status(status: Status) -> Customer:
    customer = with_addresses(2)
    if status is Status.SUSPENDED:
        customer.suspend("fraud check")
    if status is Status.CLOSED:
        customer.close()
    return saved(customer)


def defaults(customer: Customer) -> list[str]:
    return [a.address_id for a in customer.addresses if a.is_default]


def only_event(customer: Customer) -> Event:
    assert len(customer.pending_events) == 1
    return customer.pending_events[0]


def invalid_field(excinfo: pytest.ExceptionInfo[Invalid]) -> str:
    return excinfo.value.field


class TestEmailRules:
    @pytest.mark.parametrize(
        "email",
        [
            "a@b.co",
            "ada.lovelace@example.com",
            "ADA@EXAMPLE.COM",
            "first+tag@sub.example.co.uk",
            "o'brien@example.ie",
            "user_name-1@my-domain.org",
            "x@[192.0.2.1]",
            "x@[IPv6:2001:db8::1]",
            "x@[ipv6:::1]",
            "a" * 64 + "@" + "b" * 185 + ".com",
        ],
    )
    def test_valid_email_is_stored_as_given(self, email: str) -> None:
        assert register(email=email).state.email == email

    def test_email_of_254_characters_is_accepted(self) -> None:
        email = "a" * 64 + "@" + "b" * 185 + ".com"
        assert len(email) == 254
        assert register(email=email).state.email == email

    @pytest.mark.parametrize(
        "email",
        [
            "",
            "plainaddress",
            "@example.com",
            "ada@",
            "ada@@example.com",
            "ada@lovelace@example.com",
            "ada lovelace@example.com",
            "ada@exa mple.com",
            " ada@example.com",
            "ada@example.com ",
            "ada\t@example.com",
            "ada\n@example.com",
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
            "ada@example.com-",
            "ada;x@example.com",
            "ada,x@example.com",
            "ada(x)@example.com",
            '"ada"@example.com',
            "ada:x@example.com",
            "<ada>@example.com",
            "ada\\x@example.com",
            "ada[x]@example.com",
            "ada@exa;mple.com",
            "ada@exa,mple.com",
            "ada@exa:mple.com",
            "ada@[example].com",
            "ada@example.com]",
            "ada@[example.com]",
            "ada@[999.0.0.1]",
            "ada@[2001:db8::1]",
            "ada@[IPv6:not-an-ip]",
            "a" * 65 + "@" + "b" * 185 + ".com",
        ],
    )
    def test_invalid_email_is_refused(self, email: str) -> None:
        with pytest.raises(Invalid) as excinfo:
            register(email=email)
        assert invalid_field(excinfo) == "email"

    def test_email_key_is_lower_case_for_case_insensitive_uniqueness(self) -> None:
        customer = register(email="Ada.Lovelace@Example.COM")
        assert customer.state.email == "Ada.Lovelace@Example.COM"
        assert customer.email_key == "ada.lovelace@example.com"
        assert values.email_key("ADA@X.IO") == values.email_key("ada@x.io")


class TestPhoneRules:
    @pytest.mark.parametrize(
        "phone",
        ["+44 20 7946 0958", "020-7946-0958", "(020) 7946 0958", "5", "+1 (555) 010-9999", "1" * 20],
    )
    def test_valid_phone_is_accepted(self, phone: str) -> None:
        assert register(phone=phone).state.phone == phone

    @pytest.mark.parametrize(
        "phone",
        [
            "",
            "   ",
            "+",
            "()-",
            "1" * 21,
            "++44 20",
            "44+20",
            "+44 20 +1",
            "020.7946.0958",
            "020/7946",
            "phone 123",
            "123x",
            "#123",
            "١٢٣",
            "²",
        ],
    )
    def test_invalid_phone_is_refused(self, phone: str) -> None:
        with pytest.raises(Invalid) as excinfo:
            register(phone=phone)
        assert invalid_field(excinfo) == "phone"

    def test_phone_is_optional(self) -> None:
        assert register(phone=None).state.phone is None

    def test_surrounding_whitespace_is_stripped_before_the_checks(self) -> None:
        assert register(phone="  +1 555 0100  ").state.phone == "+1 555 0100"


class TestRegisterCustomer:
    def test_new_customer_is_active_standard_with_no_addresses(self) -> None:
        customer = register()
        assert customer.id == "c-1"
        assert customer.state.status == Status.ACTIVE
        assert customer.state.tier == Tier.STANDARD
        assert customer.addresses == ()
        assert customer.version == 1
        assert customer.loaded_version == 0

    def test_registration_raises_customer_registered_with_every_field(self) -> None:
        event = only_event(register())
        assert event == events.CustomerRegistered(
            customer_id="c-1",
            external_id="ext-1",
            email="Ada.Lovelace@Example.com",
            first_name="Ada",
            last_name="Lovelace",
            phone="+44 20 7946 0958",
            date_of_birth=date(1990, 12, 10),
            status=Status.ACTIVE,
            tier=Tier.STANDARD,
            registered_at=NOW,
        )

    def test_registered_event_keeps_its_types_on_the_wire(self) -> None:
        event = only_event(register())
        wire = msgspec.json.decode(msgspec.json.encode(event))
        assert wire["date_of_birth"] == "1990-12-10"
        assert wire["status"] == "Active" and wire["tier"] == "Standard"
        decoded = registry.decode("identity.CustomerRegistered", msgspec.json.encode(event))
        assert decoded == event
        assert isinstance(decoded.date_of_birth, date) and isinstance(decoded.registered_at, datetime)

    def test_optional_fields_may_be_absent(self) -> None:
        event = only_event(register(phone=None, date_of_birth=None))
        assert isinstance(event, events.CustomerRegistered)
        assert event.phone is None and event.date_of_birth is None

    @pytest.mark.parametrize("field", ["first_name", "last_name"])
    def test_names_are_stripped(self, field: str) -> None:
        customer = register(**{field: "  Grace  "})
        assert getattr(customer.state, field) == "Grace"

    @pytest.mark.parametrize("field", ["first_name", "last_name"])
    @pytest.mark.parametrize("value", ["", "   ", "\t\n", "x" * 101, " " + "x" * 101])
    def test_names_must_hold_1_to_100_characters(self, field: str, value: str) -> None:
        with pytest.raises(Invalid) as excinfo:
            register(**{field: value})
        assert invalid_field(excinfo) == field

    @pytest.mark.parametrize("field", ["first_name", "last_name"])
    @pytest.mark.parametrize("value", ["x", "x" * 100, "  " + "x" * 100 + "  "])
    def test_names_at_the_length_boundaries_are_accepted(self, field: str, value: str) -> None:
        assert getattr(register(**{field: value}).state, field) == value.strip()

    @pytest.mark.parametrize("value", ["e", "e" * 255, " padded "])
    def test_external_id_of_1_to_255_characters_is_kept_as_given(self, value: str) -> None:
        assert register(external_id=value).state.external_id == value

    @pytest.mark.parametrize("value", ["", "   ", "e" * 256])
    def test_external_id_outside_1_to_255_characters_is_refused(self, value: str) -> None:
        with pytest.raises(Invalid) as excinfo:
            register(external_id=value)
        assert invalid_field(excinfo) == "external_id"

    @pytest.mark.parametrize("born", [TODAY, TODAY - timedelta(days=1), date(1900, 1, 1)])
    def test_date_of_birth_today_or_earlier_is_accepted(self, born: date) -> None:
        assert register(date_of_birth=born).state.date_of_birth == born

    def test_date_of_birth_in_the_future_is_refused(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            register(date_of_birth=TODAY + timedelta(days=1))
        assert invalid_field(excinfo) == "date_of_birth"


class TestUpdateProfile:
    def test_omitted_fields_stay_unchanged(self) -> None:
        customer = saved(register())
        customer.update_profile(today=TODAY, first_name="Augusta")
        assert customer.state.first_name == "Augusta"
        assert customer.state.last_name == "Lovelace"
        assert customer.state.phone == "+44 20 7946 0958"
        assert customer.state.date_of_birth == date(1990, 12, 10)

    def test_profile_updated_carries_the_whole_new_profile(self) -> None:
        customer = saved(register())
        customer.update_profile(today=TODAY, last_name="King")
        assert only_event(customer) == events.ProfileUpdated(
            customer_id="c-1",
            first_name="Ada",
            last_name="King",
            phone="+44 20 7946 0958",
            date_of_birth=date(1990, 12, 10),
        )
        assert customer.version == 2

    def test_none_clears_phone_and_date_of_birth(self) -> None:
        customer = saved(register())
        customer.update_profile(today=TODAY, phone=None, date_of_birth=None)
        assert customer.state.phone is None and customer.state.date_of_birth is None
        event = only_event(customer)
        assert isinstance(event, events.ProfileUpdated)
        assert event.phone is None and event.date_of_birth is None

    def test_every_field_can_change_at_once(self) -> None:
        customer = saved(register(phone=None, date_of_birth=None))
        customer.update_profile(
            today=TODAY, first_name="  Grace ", last_name="Hopper", phone="555-0100", date_of_birth=TODAY
        )
        state = customer.state
        assert (state.first_name, state.last_name, state.phone, state.date_of_birth) == (
            "Grace",
            "Hopper",
            "555-0100",
            TODAY,
        )

    @pytest.mark.parametrize("field", ["first_name", "last_name"])
    @pytest.mark.parametrize("value", [None, "", "  ", "x" * 101])
    def test_names_cannot_be_cleared_or_overlong(self, field: str, value: str | None) -> None:
        customer = saved(register())
        change: dict[str, Any] = {field: value}
        with pytest.raises(Invalid) as excinfo:
            customer.update_profile(today=TODAY, **change)
        assert invalid_field(excinfo) == field
        assert customer.pending_events == []

    def test_invalid_phone_is_refused(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            saved(register()).update_profile(today=TODAY, phone="call me")
        assert invalid_field(excinfo) == "phone"

    def test_future_date_of_birth_is_refused(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            saved(register()).update_profile(today=TODAY, date_of_birth=TODAY + timedelta(days=1))
        assert invalid_field(excinfo) == "date_of_birth"

    def test_an_update_that_changes_nothing_raises_no_event(self) -> None:
        customer = saved(register())
        customer.update_profile(today=TODAY)
        customer.update_profile(today=TODAY, first_name=" Ada ", phone="+44 20 7946 0958")
        assert customer.pending_events == []
        assert customer.version == 1

    def test_a_suspended_customer_may_update_the_profile(self) -> None:
        customer = in_status(Status.SUSPENDED)
        customer.update_profile(today=TODAY, first_name="Augusta")
        assert isinstance(only_event(customer), events.ProfileUpdated)


class TestChangeEmail:
    def test_email_changed_carries_the_new_and_the_previous_address(self) -> None:
        customer = saved(register(email="Ada.Lovelace@Example.com"))
        customer.change_email("augusta.king@example.org")
        assert customer.state.email == "augusta.king@example.org"
        assert customer.email_key == "augusta.king@example.org"
        assert only_event(customer) == events.EmailChanged(
            customer_id="c-1", email="augusta.king@example.org", previous_email="Ada.Lovelace@Example.com"
        )
        assert customer.version == 2

    def test_a_change_of_case_only_is_a_change_under_the_same_key(self) -> None:
        customer = saved(register(email="Ada.Lovelace@Example.com"))
        customer.change_email("ada.lovelace@example.com")
        assert customer.state.email == "ada.lovelace@example.com"
        assert customer.email_key == values.email_key("Ada.Lovelace@Example.com")
        assert only_event(customer) == events.EmailChanged(
            customer_id="c-1", email="ada.lovelace@example.com", previous_email="Ada.Lovelace@Example.com"
        )

    def test_the_very_same_address_changes_nothing(self) -> None:
        customer = saved(register(email="Ada.Lovelace@Example.com"))
        customer.change_email("Ada.Lovelace@Example.com")
        assert customer.pending_events == []
        assert customer.version == 1

    @pytest.mark.parametrize(
        "email", ["", "plainaddress", "ada@localhost", " ada@example.com", "ada..x@example.com", "a\x00@b.co"]
    )
    def test_the_address_is_checked_as_on_registration(self, email: str) -> None:
        customer = saved(register())
        before = customer.state
        with pytest.raises(Invalid) as excinfo:
            customer.change_email(email)
        assert invalid_field(excinfo) == "email"
        assert customer.state == before
        assert customer.pending_events == []

    def test_the_address_is_kept_exactly_as_given(self) -> None:
        customer = saved(register())
        customer.change_email("X@[IPv6:2001:db8::1]")
        assert customer.state.email == "X@[IPv6:2001:db8::1]"

    def test_a_suspended_customer_may_change_its_email(self) -> None:
        customer = in_status(Status.SUSPENDED)
        customer.change_email("augusta@example.org")
        assert isinstance(only_event(customer), events.EmailChanged)


class TestAddAddress:
    def test_first_address_is_the_default_even_when_not_asked(self) -> None:
        customer = saved(register())
        customer.add_address("a1", **address(is_default=False))
        assert defaults(customer) == ["a1"]
        event = only_event(customer)
        assert isinstance(event, events.AddressAdded)
        assert event.is_default is True
        assert event.previous_default_id is None

    def test_later_address_is_not_default_unless_asked(self) -> None:
        customer = with_addresses(1)
        customer.add_address("a2", **address())
        assert defaults(customer) == ["a1"]
        event = only_event(customer)
        assert isinstance(event, events.AddressAdded)
        assert event.is_default is False and event.previous_default_id is None

    def test_adding_with_is_default_moves_the_flag(self) -> None:
        customer = with_addresses(3)
        customer.add_address("a4", **address(is_default=True))
        assert defaults(customer) == ["a4"]
        event = only_event(customer)
        assert isinstance(event, events.AddressAdded)
        assert event.is_default is True and event.previous_default_id == "a1"

    def test_address_added_carries_the_whole_address(self) -> None:
        customer = saved(register())
        added = customer.add_address(
            "a1",
            street=" 10 Downing St ",
            city="London",
            state="Greater London",
            postal_code="SW1A 2AA",
            country="UK",
            label="Work",
            geo_lat=51.5034,
            geo_lng=-0.1276,
        )
        assert only_event(customer) == events.AddressAdded(
            customer_id="c-1",
            address_id="a1",
            label=AddressLabel.WORK,
            street="10 Downing St",
            city="London",
            state="Greater London",
            postal_code="SW1A 2AA",
            country="UK",
            is_default=True,
            geo_lat=51.5034,
            geo_lng=-0.1276,
            previous_default_id=None,
        )
        assert added == customer.address("a1")
        assert customer.version == 2

    def test_label_defaults_to_home(self) -> None:
        customer = saved(register())
        assert customer.add_address("a1", **address()).label == AddressLabel.HOME

    @pytest.mark.parametrize("label", ["Home", "Work", "Other"])
    def test_every_known_label_is_accepted(self, label: str) -> None:
        assert saved(register()).add_address("a1", **address(label=label)).label == label

    @pytest.mark.parametrize("label", ["home", "Office", "", None])
    def test_unknown_label_is_refused(self, label: str | None) -> None:
        with pytest.raises(Invalid) as excinfo:
            saved(register()).add_address("a1", **address(label=label))
        assert invalid_field(excinfo) == "label"

    @pytest.mark.parametrize(
        ("field", "longest"), [("street", 255), ("city", 100), ("postal_code", 20), ("country", 100)]
    )
    def test_required_text_fields_hold_1_to_their_limit(self, field: str, longest: int) -> None:
        for good in ("x", "x" * longest):
            added = saved(register()).add_address("a1", **address(**{field: good}))
            assert getattr(added, field) == good
        for bad in ("", "   ", "x" * (longest + 1), None):
            with pytest.raises(Invalid) as excinfo:
                saved(register()).add_address("a1", **address(**{field: bad}))
            assert invalid_field(excinfo) == field

    @pytest.mark.parametrize(
        ("state", "stored"), [(None, None), ("", None), ("  ", None), ("x" * 100, "x" * 100)]
    )
    def test_state_is_optional_up_to_100_characters(self, state: str | None, stored: str | None) -> None:
        assert saved(register()).add_address("a1", **address(state=state)).state == stored

    def test_state_over_100_characters_is_refused(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            saved(register()).add_address("a1", **address(state="x" * 101))
        assert invalid_field(excinfo) == "state"

    @pytest.mark.parametrize(("lat", "lng"), [(90, 180), (-90, -180), (0, 0), (45.5, -122.68)])
    def test_coordinates_within_range_are_accepted(self, lat: float, lng: float) -> None:
        added = saved(register()).add_address("a1", **address(geo_lat=lat, geo_lng=lng))
        assert (added.geo_lat, added.geo_lng) == (lat, lng)
        assert isinstance(added.geo_lat, float) and isinstance(added.geo_lng, float)

    @pytest.mark.parametrize(
        ("lat", "lng", "field"),
        [
            (90.0001, 0, "geo_lat"),
            (-90.5, 0, "geo_lat"),
            (0, 180.01, "geo_lng"),
            (0, -181, "geo_lng"),
            (math.nan, 0, "geo_lat"),
            (0, math.inf, "geo_lng"),
        ],
    )
    def test_coordinates_out_of_range_are_refused(self, lat: float, lng: float, field: str) -> None:
        with pytest.raises(Invalid) as excinfo:
            saved(register()).add_address("a1", **address(geo_lat=lat, geo_lng=lng))
        assert invalid_field(excinfo) == field

    @pytest.mark.parametrize(
        ("given", "missing"), [({"geo_lat": 1.0}, "geo_lng"), ({"geo_lng": 1.0}, "geo_lat")]
    )
    def test_coordinates_come_both_or_neither(self, given: dict[str, float], missing: str) -> None:
        with pytest.raises(Invalid) as excinfo:
            saved(register()).add_address("a1", **address(**given))
        assert invalid_field(excinfo) == missing

    def test_a_customer_holds_at_most_ten_addresses(self) -> None:
        customer = with_addresses(MAX_ADDRESSES - 1)
        customer.add_address("a10", **address())
        assert len(customer.addresses) == 10
        with pytest.raises(AddressLimitReached) as excinfo:
            customer.add_address("a11", **address())
        assert isinstance(excinfo.value, Conflict)
        assert len(customer.addresses) == 10

    def test_the_same_address_id_cannot_be_added_twice(self) -> None:
        with pytest.raises(AddressAlreadyExists):
            with_addresses(1).add_address("a1", **address())

    def test_invalid_values_are_reported_before_the_address_limit(self) -> None:
        with pytest.raises(Invalid):
            with_addresses(10).add_address("a11", **address(city=""))


class TestUpdateAddress:
    def test_omitted_fields_stay_unchanged(self) -> None:
        customer = with_addresses(1)
        before = customer.address("a1")
        customer.update_address("a1", city="Paris")
        after = customer.address("a1")
        assert after.city == "Paris"
        assert msgspec.structs.replace(after, city=before.city) == before

    def test_address_updated_carries_the_whole_new_address(self) -> None:
        customer = with_addresses(2)
        customer.update_address("a2", label="Other", state="Île-de-France", geo_lat=48.85, geo_lng=2.35)
        assert only_event(customer) == events.AddressUpdated(
            customer_id="c-1",
            address_id="a2",
            label=AddressLabel.OTHER,
            street="2 Main St",
            city="London",
            state="Île-de-France",
            postal_code="N1 9GU",
            country="UK",
            is_default=False,
            geo_lat=48.85,
            geo_lng=2.35,
            previous_default_id=None,
        )
        assert customer.version == 4

    def test_unknown_address_is_not_found(self) -> None:
        with pytest.raises(AddressNotFound) as excinfo:
            with_addresses(1).update_address("nope", city="Paris")
        assert isinstance(excinfo.value, NotFound)

    def test_unknown_address_is_reported_before_invalid_values(self) -> None:
        with pytest.raises(NotFound):
            with_addresses(1).update_address("nope", city="")

    @pytest.mark.parametrize("field", ["street", "city", "postal_code", "country", "label", "is_default"])
    def test_required_fields_cannot_be_cleared(self, field: str) -> None:
        change: dict[str, Any] = {field: None}
        with pytest.raises(Invalid) as excinfo:
            with_addresses(1).update_address("a1", **change)
        assert invalid_field(excinfo) == field

    def test_none_clears_the_state(self) -> None:
        customer = saved(register())
        customer.add_address("a1", **address(state="Greater London"))
        customer.update_address("a1", state=None)
        assert customer.address("a1").state is None

    def test_values_are_checked_like_on_add(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            with_addresses(1).update_address("a1", postal_code="x" * 21)
        assert invalid_field(excinfo) == "postal_code"

    def test_one_coordinate_may_change_when_the_other_is_kept(self) -> None:
        customer = saved(register())
        customer.add_address("a1", **address(geo_lat=1.0, geo_lng=2.0))
        customer.update_address("a1", geo_lat=3.0)
        assert (customer.address("a1").geo_lat, customer.address("a1").geo_lng) == (3.0, 2.0)

    def test_both_coordinates_may_be_cleared_together(self) -> None:
        customer = saved(register())
        customer.add_address("a1", **address(geo_lat=1.0, geo_lng=2.0))
        customer.update_address("a1", geo_lat=None, geo_lng=None)
        assert (customer.address("a1").geo_lat, customer.address("a1").geo_lng) == (None, None)

    def test_clearing_one_coordinate_alone_is_refused(self) -> None:
        customer = saved(register())
        customer.add_address("a1", **address(geo_lat=1.0, geo_lng=2.0))
        with pytest.raises(Invalid) as excinfo:
            customer.update_address("a1", geo_lat=None)
        assert invalid_field(excinfo) == "geo_lat"

    def test_setting_one_coordinate_on_an_address_without_geo_is_refused(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            with_addresses(1).update_address("a1", geo_lat=10.0)
        assert invalid_field(excinfo) == "geo_lng"

    def test_is_default_true_moves_the_flag(self) -> None:
        customer = with_addresses(3)
        customer.update_address("a3", is_default=True, city="Leeds")
        assert defaults(customer) == ["a3"]
        event = only_event(customer)
        assert isinstance(event, events.AddressUpdated)
        assert event.is_default is True and event.previous_default_id == "a1" and event.city == "Leeds"

    def test_is_default_true_on_the_default_does_not_displace_anything(self) -> None:
        customer = with_addresses(2)
        customer.update_address("a1", is_default=True, city="Leeds")
        event = only_event(customer)
        assert isinstance(event, events.AddressUpdated)
        assert event.previous_default_id is None
        assert defaults(customer) == ["a1"]

    def test_the_default_address_cannot_be_unflagged(self) -> None:
        customer = with_addresses(2)
        with pytest.raises(DefaultAddressRequired) as excinfo:
            customer.update_address("a1", is_default=False)
        assert isinstance(excinfo.value, Conflict)
        assert defaults(customer) == ["a1"]

    def test_is_default_false_on_another_address_changes_nothing(self) -> None:
        customer = with_addresses(2)
        customer.update_address("a2", is_default=False)
        assert customer.pending_events == []

    def test_an_update_that_changes_nothing_raises_no_event(self) -> None:
        customer = with_addresses(1)
        customer.update_address("a1")
        customer.update_address("a1", city=" London ", label="Home")
        assert customer.pending_events == []
        assert customer.version == customer.loaded_version


class TestRemoveAddress:
    def test_removing_another_address_keeps_the_default(self) -> None:
        customer = with_addresses(3)
        customer.remove_address("a2")
        assert [a.address_id for a in customer.addresses] == ["a1", "a3"]
        assert defaults(customer) == ["a1"]
        assert only_event(customer) == events.AddressRemoved(
            customer_id="c-1", address_id="a2", new_default_id=None
        )

    def test_removing_the_default_makes_the_first_remaining_address_default(self) -> None:
        customer = with_addresses(3)
        customer.remove_address("a1")
        assert defaults(customer) == ["a2"]
        assert only_event(customer) == events.AddressRemoved(
            customer_id="c-1", address_id="a1", new_default_id="a2"
        )

    def test_the_first_remaining_address_is_the_oldest_one_left(self) -> None:
        customer = with_addresses(3)
        customer.set_default_address("a3")
        customer.remove_address("a3")
        assert defaults(customer) == ["a1"]
        event = customer.pending_events[-1]
        assert isinstance(event, events.AddressRemoved) and event.new_default_id == "a1"

    def test_last_address_cannot_be_removed(self) -> None:
        customer = with_addresses(1)
        with pytest.raises(LastAddressCannotBeRemoved) as excinfo:
            customer.remove_address("a1")
        assert isinstance(excinfo.value, Conflict)
        assert defaults(customer) == ["a1"]

    def test_unknown_address_is_not_found(self) -> None:
        with pytest.raises(AddressNotFound):
            with_addresses(2).remove_address("nope")

    def test_an_address_cannot_be_removed_from_an_empty_book(self) -> None:
        with pytest.raises(AddressNotFound):
            saved(register()).remove_address("a1")

    def test_removal_bumps_the_version_by_one(self) -> None:
        customer = with_addresses(2)
        customer.remove_address("a2")
        assert customer.version == customer.loaded_version + 1


class TestSetDefaultAddress:
    def test_setting_a_default_moves_the_flag(self) -> None:
        customer = with_addresses(3)
        customer.set_default_address("a2")
        assert defaults(customer) == ["a2"]
        assert only_event(customer) == events.DefaultAddressChanged(
            customer_id="c-1", address_id="a2", previous_default_id="a1"
        )
        assert customer.version == customer.loaded_version + 1

    def test_choosing_the_current_default_changes_nothing(self) -> None:
        customer = with_addresses(2)
        customer.set_default_address("a1")
        assert customer.pending_events == []
        assert defaults(customer) == ["a1"]

    def test_unknown_address_is_not_found(self) -> None:
        with pytest.raises(AddressNotFound):
            with_addresses(2).set_default_address("nope")

    def test_exactly_one_address_is_default_after_any_sequence_of_changes(self) -> None:
        customer = with_addresses(4)
        customer.set_default_address("a3")
        customer.add_address("a5", **address(is_default=True))
        customer.remove_address("a5")
        customer.update_address("a4", is_default=True)
        customer.remove_address("a1")
        customer.set_default_address("a2")
        customer.remove_address("a2")
        assert defaults(customer) == ["a3"]


class TestAccountStatus:
    def test_suspend_from_active(self) -> None:
        customer = in_status(Status.ACTIVE)
        customer.suspend("  chargeback  ")
        assert customer.state.status == Status.SUSPENDED
        assert only_event(customer) == events.AccountSuspended(customer_id="c-1", reason="chargeback")

    def test_reactivate_from_suspended(self) -> None:
        customer = in_status(Status.SUSPENDED)
        customer.reactivate()
        assert customer.state.status == Status.ACTIVE
        assert only_event(customer) == events.AccountReactivated(customer_id="c-1")

    @pytest.mark.parametrize("status", [Status.ACTIVE, Status.SUSPENDED])
    def test_close_from_active_or_suspended(self, status: Status) -> None:
        customer = in_status(status)
        customer.close()
        assert customer.state.status == Status.CLOSED
        assert only_event(customer) == events.AccountClosed(customer_id="c-1")
        assert customer.version == customer.loaded_version + 1

    def test_suspend_is_refused_when_already_suspended(self) -> None:
        customer = in_status(Status.SUSPENDED)
        with pytest.raises(TransitionNotAllowed) as excinfo:
            customer.suspend("again")
        assert isinstance(excinfo.value, Conflict)
        assert customer.state.status == Status.SUSPENDED

    def test_reactivate_is_refused_when_active(self) -> None:
        with pytest.raises(TransitionNotAllowed):
            in_status(Status.ACTIVE).reactivate()

    @pytest.mark.parametrize("reason", ["r", "r" * 500, "  " + "r" * 500 + "  "])
    def test_suspension_reason_holds_1_to_500_characters(self, reason: str) -> None:
        customer = in_status(Status.ACTIVE)
        customer.suspend(reason)
        event = only_event(customer)
        assert isinstance(event, events.AccountSuspended) and event.reason == reason.strip()

    @pytest.mark.parametrize("reason", ["", "   ", "r" * 501])
    def test_suspension_reason_outside_1_to_500_characters_is_refused(self, reason: str) -> None:
        customer = in_status(Status.ACTIVE)
        with pytest.raises(Invalid) as excinfo:
            customer.suspend(reason)
        assert invalid_field(excinfo) == "reason"
        assert customer.state.status == Status.ACTIVE

    def test_a_full_lifecycle_raises_one_event_per_step(self) -> None:
        customer = in_status(Status.ACTIVE)
        start = customer.version
        customer.suspend("check")
        customer.reactivate()
        customer.suspend("again")
        customer.close()
        assert [type(e) for e in customer.pending_events] == [
            events.AccountSuspended,
            events.AccountReactivated,
            events.AccountSuspended,
            events.AccountClosed,
        ]
        assert customer.version == start + 4


class TestClosedCustomer:
    COMMANDS = {
        "update_profile": lambda c: c.update_profile(today=TODAY, first_name="Zed"),
        "change_email": lambda c: c.change_email("zed@example.com"),
        "add_address": lambda c: c.add_address("a9", **address()),
        "update_address": lambda c: c.update_address("a1", city="Paris"),
        "remove_address": lambda c: c.remove_address("a2"),
        "set_default_address": lambda c: c.set_default_address("a2"),
        "suspend": lambda c: c.suspend("why"),
        "reactivate": lambda c: c.reactivate(),
        "close": lambda c: c.close(),
        "upgrade_tier": lambda c: c.upgrade_tier("Gold"),
    }

    @pytest.mark.parametrize("command", COMMANDS)
    def test_closed_refuses_every_command(self, command: str) -> None:
        customer = in_status(Status.CLOSED)
        before = customer.state
        with pytest.raises(CustomerClosed) as excinfo:
            self.COMMANDS[command](customer)
        assert isinstance(excinfo.value, Conflict)
        assert customer.state == before
        assert customer.pending_events == []
        assert customer.version == customer.loaded_version

    @pytest.mark.parametrize(
        "command",
        [
            lambda c: c.update_profile(today=TODAY, first_name=""),
            lambda c: c.change_email("not an email"),
            lambda c: c.update_address("nope", city="Paris"),
            lambda c: c.suspend(""),
            lambda c: c.upgrade_tier("Diamond"),
        ],
    )
    def test_closed_is_reported_before_any_other_problem(self, command: Any) -> None:
        with pytest.raises(CustomerClosed):
            command(in_status(Status.CLOSED))


class TestUpgradeTier:
    UPWARD = [
        (Tier.STANDARD, Tier.SILVER),
        (Tier.STANDARD, Tier.GOLD),
        (Tier.STANDARD, Tier.PLATINUM),
        (Tier.SILVER, Tier.GOLD),
        (Tier.SILVER, Tier.PLATINUM),
        (Tier.GOLD, Tier.PLATINUM),
    ]

    @staticmethod
    def at(tier: Tier) -> Customer:
        customer = register()
        if tier is not Tier.STANDARD:
            customer.upgrade_tier(tier)
        return saved(customer)

    def test_tiers_are_ordered_standard_silver_gold_platinum(self) -> None:
        assert sorted(Tier, key=lambda t: t.rank) == [Tier.STANDARD, Tier.SILVER, Tier.GOLD, Tier.PLATINUM]

    @pytest.mark.parametrize(("current", "target"), UPWARD)
    def test_tier_moves_up(self, current: Tier, target: Tier) -> None:
        customer = self.at(current)
        customer.upgrade_tier(target.value)
        assert customer.state.tier == target
        assert only_event(customer) == events.TierUpgraded(
            customer_id="c-1", previous_tier=current, new_tier=target
        )
        assert customer.version == customer.loaded_version + 1

    @pytest.mark.parametrize(("current", "target"), [(t, t) for t in Tier] + [(b, a) for a, b in UPWARD])
    def test_same_or_lower_tier_is_refused(self, current: Tier, target: Tier) -> None:
        customer = self.at(current)
        with pytest.raises(TierNotHigher) as excinfo:
            customer.upgrade_tier(target)
        assert isinstance(excinfo.value, Conflict)
        assert customer.state.tier == current

    @pytest.mark.parametrize("tier", ["Diamond", "gold", "GOLD", "", " Gold", None])
    def test_unknown_tier_is_invalid(self, tier: str | None) -> None:
        with pytest.raises(Invalid) as excinfo:
            register().upgrade_tier(tier)  # type: ignore[arg-type]
        assert invalid_field(excinfo) == "new_tier"

    def test_a_suspended_customer_may_move_up(self) -> None:
        customer = in_status(Status.SUSPENDED)
        customer.upgrade_tier("Silver")
        assert customer.state.tier == Tier.SILVER


class TestRebuildFromState:
    def test_state_round_trips_through_json(self) -> None:
        customer = with_addresses(2)
        customer.add_address("a3", **address(label="Work", state="Kent", geo_lat=51.2, geo_lng=1.1))
        customer.suspend("check")
        customer.upgrade_tier("Gold")
        stored = msgspec.json.encode(customer.state)
        state = msgspec.json.decode(stored, type=CustomerState)
        assert state == customer.state
        assert isinstance(state.addresses[0], Address) and state.status is Status.SUSPENDED

    def test_a_rebuilt_customer_continues_from_its_version(self) -> None:
        original = with_addresses(2)
        rebuilt = Customer(msgspec.json.decode(msgspec.json.encode(original.state), type=CustomerState), 3)
        assert (rebuilt.id, rebuilt.version, rebuilt.loaded_version) == ("c-1", 3, 3)
        assert rebuilt.pending_events == []
        rebuilt.set_default_address("a2")
        assert rebuilt.version == 4
        assert rebuilt.email_key == "ada.lovelace@example.com"

    def test_a_rebuilt_closed_customer_still_refuses_commands(self) -> None:
        state = msgspec.json.decode(msgspec.json.encode(in_status(Status.CLOSED).state), type=CustomerState)
        with pytest.raises(CustomerClosed):
            Customer(state, 5).reactivate()

    def test_aggregate_type_is_customer(self) -> None:
        assert Customer.aggregate_type == "Customer"


class TestEvents:
    ALL = [
        events.CustomerRegistered,
        events.ProfileUpdated,
        events.EmailChanged,
        events.AddressAdded,
        events.AddressUpdated,
        events.AddressRemoved,
        events.DefaultAddressChanged,
        events.AccountSuspended,
        events.AccountReactivated,
        events.AccountClosed,
        events.TierUpgraded,
    ]

    @pytest.mark.parametrize("event_type", ALL)
    def test_every_event_is_registered_under_a_stable_tag(self, event_type: type[Event]) -> None:
        assert event_type.tag() == f"identity.{event_type.__name__}"
        assert registry.type_of(event_type.tag()) is event_type
        assert issubclass(event_type, Event)
        assert event_type.__struct_config__.frozen
        with pytest.raises(TypeError):
            event_type("c-1")  # keyword-only
        assert event_type.__doc__ and event_type.__doc__.strip()

    def test_every_raised_event_round_trips_through_the_registry(self) -> None:
        customer = register()
        customer.update_profile(today=TODAY, phone=None)
        customer.change_email("augusta@example.org")
        customer.add_address("a1", **address(geo_lat=1.5, geo_lng=2.5))
        customer.add_address("a2", **address(is_default=True))
        customer.update_address("a1", city="York")
        customer.set_default_address("a1")
        customer.remove_address("a2")
        customer.upgrade_tier("Platinum")
        customer.suspend("check")
        customer.reactivate()
        customer.close()
        raised = customer.pending_events
        assert {type(e) for e in raised} == set(self.ALL)
        assert customer.version == len(raised) == 12
        for event in raised:
            assert registry.decode(event.tag(), msgspec.json.encode(event)) == event

    def test_booleans_and_floats_keep_their_types_on_the_wire(self) -> None:
        customer = saved(register())
        customer.add_address("a1", **address(geo_lat=10, geo_lng=20))
        wire = msgspec.json.decode(msgspec.json.encode(only_event(customer)))
        assert wire["is_default"] is True
        assert wire["geo_lat"] == 10.0 and isinstance(wire["geo_lat"], float)


class TestErasePersonalData:
    @pytest.mark.parametrize("status", [Status.ACTIVE, Status.SUSPENDED])
    def test_only_a_closed_account_is_erased(self, status):
        customer = in_status(status)
        with pytest.raises(TransitionNotAllowed):
            customer.erase_personal_data()
        assert customer.pending_events == []

    def test_keeps_only_what_is_not_personal_and_raises_one_event(self):
        customer = with_addresses(2)
        customer.upgrade_tier("Gold")
        customer.close()
        before = saved(customer).state
        customer.erase_personal_data()
        assert only_event(customer) == events.PersonalDataErased(customer_id=customer.id)
        erased = customer.state
        assert (erased.external_id, erased.email, erased.first_name, erased.last_name) == (values.ERASED,) * 4
        assert (erased.phone, erased.date_of_birth, erased.addresses) == (None, None, ())
        assert (erased.status, erased.tier, erased.registered_at) == (
            Status.CLOSED,
            Tier.GOLD,
            before.registered_at,
        )
        assert erased.personal_data_erased

    def test_erasing_again_changes_nothing(self):
        customer = in_status(Status.CLOSED)
        customer.erase_personal_data()
        saved(customer).erase_personal_data()
        assert customer.pending_events == []

    def test_every_personal_field_an_event_declares_is_one_of_its_fields(self):
        for event_type in (
            events.CustomerRegistered,
            events.AddressAdded,
            events.EmailChanged,
            events.AccountSuspended,
        ):
            assert set(event_type.personal) <= set(event_type.__struct_fields__)
