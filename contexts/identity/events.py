"""Events of the Customer aggregate; each carries the ids and the new values a projection needs.

One command raises at most one event, and every event is self-sufficient: when a default address
moves as a side effect, the event names the address that lost the flag (`previous_default_id`) or
gained it (`new_default_id`), so a projection never has to read the aggregate or infer the move.

`personal` names the fields that are personal data (SPEC §11): the event log keeps them sealed with
the customer's data key, and shows them as erased once the customer's personal data is erased. Ids,
status, tier, labels, flags and instants are not personal and stay readable to every context.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from bus.messages import Event, message
from contexts.identity.values import AddressLabel, Status, Tier


@message
class CustomerRegistered(Event, frozen=True, kw_only=True, tag="identity.CustomerRegistered"):
    """A new customer account was opened, active and in the Standard tier."""

    personal: ClassVar[tuple[str, ...]] = ("email", "first_name", "last_name", "phone", "date_of_birth")
    customer_id: str
    external_id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    date_of_birth: date | None
    status: Status
    tier: Tier
    registered_at: datetime


@message
class ProfileUpdated(Event, frozen=True, kw_only=True, tag="identity.ProfileUpdated"):
    """The customer's profile changed; it carries the whole new profile so readers can overwrite theirs."""

    personal: ClassVar[tuple[str, ...]] = ("first_name", "last_name", "phone", "date_of_birth")
    customer_id: str
    first_name: str
    last_name: str
    phone: str | None
    date_of_birth: date | None


class _AddressSnapshot(Event, frozen=True, kw_only=True):
    """The whole address after the change, and the address that lost the default flag, if any."""

    personal: ClassVar[tuple[str, ...]] = (
        "street", "city", "state", "postal_code", "country", "geo_lat", "geo_lng",
    )  # fmt: skip
    customer_id: str
    address_id: str
    label: AddressLabel
    street: str
    city: str
    state: str | None
    postal_code: str
    country: str
    is_default: bool
    geo_lat: float | None
    geo_lng: float | None
    previous_default_id: str | None = None


@message
class AddressAdded(_AddressSnapshot, frozen=True, kw_only=True, tag="identity.AddressAdded"):
    """An address joined the address book; if `is_default`, it took the flag from `previous_default_id`."""


@message
class AddressUpdated(_AddressSnapshot, frozen=True, kw_only=True, tag="identity.AddressUpdated"):
    """An address changed; it carries the whole new address and the id of any default it displaced."""


@message
class AddressRemoved(Event, frozen=True, kw_only=True, tag="identity.AddressRemoved"):
    """An address left the address book; if it was the default, `new_default_id` took the flag."""

    customer_id: str
    address_id: str
    new_default_id: str | None = None


@message
class DefaultAddressChanged(Event, frozen=True, kw_only=True, tag="identity.DefaultAddressChanged"):
    """The customer chose another default address, taking the flag from `previous_default_id`."""

    customer_id: str
    address_id: str
    previous_default_id: str


@message
class EmailChanged(Event, frozen=True, kw_only=True, tag="identity.EmailChanged"):
    """The customer's e-mail address changed from `previous_email` to `email`."""

    personal: ClassVar[tuple[str, ...]] = ("email", "previous_email")
    customer_id: str
    email: str
    previous_email: str


@message
class AccountSuspended(Event, frozen=True, kw_only=True, tag="identity.AccountSuspended"):
    """An active account was suspended for the stated reason."""

    personal: ClassVar[tuple[str, ...]] = ("reason",)  # free text, which may well be about the person
    customer_id: str
    reason: str


@message
class AccountReactivated(Event, frozen=True, kw_only=True, tag="identity.AccountReactivated"):
    """A suspended account became active again."""

    customer_id: str


@message
class AccountClosed(Event, frozen=True, kw_only=True, tag="identity.AccountClosed"):
    """The account was closed for good; it accepts no further changes."""

    customer_id: str


@message
class TierUpgraded(Event, frozen=True, kw_only=True, tag="identity.TierUpgraded"):
    """The customer moved up to a higher loyalty tier."""

    customer_id: str
    previous_tier: Tier
    new_tier: Tier


@message
class PersonalDataErased(Event, frozen=True, kw_only=True, tag="identity.PersonalDataErased"):
    """A closed customer's personal data was erased: its data key is gone, so the personal fields of its
    earlier events can no longer be read, and every read model forgets them."""

    customer_id: str
