"""The Customer aggregate: profile, address book, account status and loyalty tier. Pure domain code.

`CustomerState` is the whole persisted shape (a repository may encode it as JSON); the aggregate
wraps one and replaces it on every change. Closed refuses every command before anything else is
checked; after that a missing address is reported (404), then invalid values (422), then clashes
with the state (409). A command that would change nothing raises no event.

Erasing a closed customer's personal data keeps only what is not personal (id, status, tier,
registration instant): every personal text reads `ERASED`, optional fields and addresses are gone.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec
from msgspec import UNSET, UnsetType
from msgspec.structs import replace

from bus.aggregate import Aggregate
from bus.errors import Validation
from contexts.identity import address_book, errors, values
from contexts.identity.address_book import Address
from contexts.identity.events import (
    AccountClosed,
    AccountReactivated,
    AccountSuspended,
    AddressAdded,
    AddressRemoved,
    AddressUpdated,
    CustomerRegistered,
    DefaultAddressChanged,
    EmailChanged,
    PersonalDataErased,
    ProfileUpdated,
    TierUpgraded,
)
from contexts.identity.values import ERASED, AddressLabel, Status, Tier

__all__ = ["Address", "Customer", "CustomerState"]


class CustomerState(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    external_id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None = None
    date_of_birth: date | None = None
    status: Status = Status.ACTIVE
    tier: Tier = Tier.STANDARD
    registered_at: datetime
    addresses: tuple[Address, ...] = ()
    personal_data_erased: bool = False


class Customer(Aggregate):
    aggregate_type = "Customer"

    def __init__(self, state: CustomerState, version: int = 0) -> None:
        super().__init__(state.customer_id, version)
        self.state = state

    @classmethod
    def register(
        cls,
        customer_id: str,
        external_id: str,
        email: str,
        first_name: str,
        last_name: str,
        phone: str | None,
        date_of_birth: date | None,
        registered_at: datetime,
        today: date,
    ) -> Customer:
        check = Validation()
        state = CustomerState(
            customer_id=customer_id,
            external_id=check.check(values.external_id, external_id),
            email=check.check(values.email, email),
            first_name=check.check(values.text, "first_name", first_name, 100),
            last_name=check.check(values.text, "last_name", last_name, 100),
            phone=check.check(values.phone, phone),
            date_of_birth=check.check(values.date_of_birth, date_of_birth, today),
            registered_at=registered_at,
        )
        check.done()
        customer = cls(state)
        profile = msgspec.structs.asdict(state)
        del profile["addresses"], profile["personal_data_erased"]
        customer.raise_event(CustomerRegistered(**profile))
        return customer

    @property
    def email_key(self) -> str:
        return values.email_key(self.state.email)

    @property
    def addresses(self) -> tuple[Address, ...]:
        return self.state.addresses

    def address(self, address_id: str) -> Address:
        return address_book.find(self.state.addresses, address_id)

    def update_profile(
        self,
        *,
        today: date,
        first_name: str | UnsetType = UNSET,
        last_name: str | UnsetType = UNSET,
        phone: str | UnsetType | None = UNSET,
        date_of_birth: date | UnsetType | None = UNSET,
    ) -> None:
        """Omitted fields stay as they are; `None` clears the optional phone and date of birth."""
        self._ensure_open()
        old = self.state
        check = Validation()
        new = replace(
            old,
            first_name=old.first_name
            if first_name is UNSET
            else check.check(values.text, "first_name", first_name, 100),
            last_name=old.last_name
            if last_name is UNSET
            else check.check(values.text, "last_name", last_name, 100),
            phone=old.phone if phone is UNSET else check.check(values.phone, phone),
            date_of_birth=(
                old.date_of_birth
                if date_of_birth is UNSET
                else check.check(values.date_of_birth, date_of_birth, today)
            ),
        )
        check.done()
        if new == old:
            return
        self.state = new
        self.raise_event(
            ProfileUpdated(
                customer_id=self.id,
                first_name=new.first_name,
                last_name=new.last_name,
                phone=new.phone,
                date_of_birth=new.date_of_birth,
            )
        )

    def change_email(self, email: str) -> None:
        """The address is stored as given: a change of case only is a change, under the same unique key
        (the repository's `email_key`); the very same address changes nothing."""
        self._ensure_open()
        new = values.email(email)
        previous = self.state.email
        if new == previous:
            return
        self.state = replace(self.state, email=new)
        self.raise_event(EmailChanged(customer_id=self.id, email=new, previous_email=previous))

    def add_address(
        self,
        address_id: str,
        *,
        street: str,
        city: str,
        postal_code: str,
        country: str,
        label: str = AddressLabel.HOME,
        state: str | None = None,
        is_default: bool = False,
        geo_lat: float | None = None,
        geo_lng: float | None = None,
    ) -> Address:
        """The first address is always the default; adding another with `is_default` moves the flag."""
        self._ensure_open()
        address = Address.create(
            address_id,
            street=street,
            city=city,
            postal_code=postal_code,
            country=country,
            label=label,
            state=state,
            is_default=is_default,
            geo_lat=geo_lat,
            geo_lng=geo_lng,
        )
        book, displaced = address_book.add(self.state.addresses, address)
        self._set_book(book)
        added = self.address(address_id)
        self.raise_event(AddressAdded(customer_id=self.id, **added.fields(), previous_default_id=displaced))
        return added

    def update_address(
        self,
        address_id: str,
        *,
        label: str | UnsetType = UNSET,
        street: str | UnsetType = UNSET,
        city: str | UnsetType = UNSET,
        state: str | UnsetType | None = UNSET,
        postal_code: str | UnsetType = UNSET,
        country: str | UnsetType = UNSET,
        is_default: bool | UnsetType = UNSET,
        geo_lat: float | UnsetType | None = UNSET,
        geo_lng: float | UnsetType | None = UNSET,
    ) -> None:
        """Omitted fields stay as they are (geo both-or-neither is checked on the result);
        `is_default=True` moves the flag here, `False` on the default is refused."""
        self._ensure_open()
        given = {
            "label": label,
            "street": street,
            "city": city,
            "state": state,
            "postal_code": postal_code,
            "country": country,
            "is_default": is_default,
            "geo_lat": geo_lat,
            "geo_lng": geo_lng,
        }
        changes = {name: value for name, value in given.items() if value is not UNSET}
        book, displaced = address_book.update(self.state.addresses, address_id, changes)
        if book == self.state.addresses:
            return
        self._set_book(book)
        new = self.address(address_id)
        self.raise_event(AddressUpdated(customer_id=self.id, **new.fields(), previous_default_id=displaced))

    def remove_address(self, address_id: str) -> None:
        """Removing the default makes the first remaining address the default."""
        self._ensure_open()
        book, new_default_id = address_book.remove(self.state.addresses, address_id)
        self._set_book(book)
        self.raise_event(
            AddressRemoved(customer_id=self.id, address_id=address_id, new_default_id=new_default_id)
        )

    def set_default_address(self, address_id: str) -> None:
        """Choosing the address that already is the default changes nothing."""
        self._ensure_open()
        book, displaced = address_book.make_default(self.state.addresses, address_id)
        if displaced is None:
            return
        self._set_book(book)
        self.raise_event(
            DefaultAddressChanged(customer_id=self.id, address_id=address_id, previous_default_id=displaced)
        )

    def suspend(self, reason: str) -> None:
        self._ensure_open()
        reason = values.text("reason", reason, 500)
        self._move(Status.SUSPENDED, allowed_from=(Status.ACTIVE,), action="suspend")
        self.raise_event(AccountSuspended(customer_id=self.id, reason=reason))

    def reactivate(self) -> None:
        self._ensure_open()
        self._move(Status.ACTIVE, allowed_from=(Status.SUSPENDED,), action="reactivate")
        self.raise_event(AccountReactivated(customer_id=self.id))

    def close(self) -> None:
        self._ensure_open()
        self._move(Status.CLOSED, allowed_from=(Status.ACTIVE, Status.SUSPENDED), action="close")
        self.raise_event(AccountClosed(customer_id=self.id))

    def upgrade_tier(self, new_tier: str) -> None:
        """Tiers only move up: Standard < Silver < Gold < Platinum."""
        self._ensure_open()
        tier = values.choice(Tier, "new_tier", new_tier)
        current = Tier(self.state.tier)
        if tier.rank <= current.rank:
            raise errors.TierNotHigher(current, tier)
        self.state = replace(self.state, tier=tier)
        self.raise_event(TierUpgraded(customer_id=self.id, previous_tier=current, new_tier=tier))

    def erase_personal_data(self) -> None:
        """Only a Closed account's (409 otherwise); erasing it again changes nothing."""
        if self.state.personal_data_erased:
            return
        if self.state.status != Status.CLOSED:
            raise errors.TransitionNotAllowed("erase the personal data of", self.state.status)
        kept = self.state
        self.state = CustomerState(
            customer_id=kept.customer_id,
            external_id=ERASED,
            email=ERASED,
            first_name=ERASED,
            last_name=ERASED,
            status=kept.status,
            tier=kept.tier,
            registered_at=kept.registered_at,
            personal_data_erased=True,
        )
        self.raise_event(PersonalDataErased(customer_id=self.id))

    def _ensure_open(self) -> None:
        if self.state.status == Status.CLOSED:
            raise errors.CustomerClosed(self.id)

    def _move(self, target: Status, *, allowed_from: tuple[Status, ...], action: str) -> None:
        if self.state.status not in allowed_from:
            raise errors.TransitionNotAllowed(action, self.state.status)
        self.state = replace(self.state, status=target)

    def _set_book(self, book: tuple[Address, ...]) -> None:
        self.state = replace(self.state, addresses=book)
