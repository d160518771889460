"""A customer's address book: the Address entity and the rules that hold over the whole book.

The book is an immutable tuple in the order addresses were added; every operation returns a new book.
Whenever the book is not empty exactly one address is its default.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec.structs import replace

from bus.errors import Invalid, Validation
from contexts.identity import errors, values
from contexts.identity.values import AddressLabel

MAX_ADDRESSES = 10


class Address(msgspec.Struct, frozen=True, kw_only=True):
    address_id: str
    label: AddressLabel = AddressLabel.HOME
    street: str
    city: str
    state: str | None = None
    postal_code: str
    country: str
    is_default: bool = False
    geo_lat: float | None = None
    geo_lng: float | None = None

    @classmethod
    def create(
        cls,
        address_id: str,
        *,
        street: str | None,
        city: str | None,
        postal_code: str | None,
        country: str | None,
        label: str | None = AddressLabel.HOME,
        state: str | None = None,
        is_default: bool = False,
        geo_lat: float | None = None,
        geo_lng: float | None = None,
    ) -> Address:
        """A checked address; every invalid value raises `Invalid` naming its API field."""
        check = Validation()
        if not isinstance(is_default, bool):
            check.failures.append(Invalid("is_default", "must be true or false"))
        geo_lat = check.check(values.coordinate, "geo_lat", geo_lat, 90)
        geo_lng = check.check(values.coordinate, "geo_lng", geo_lng, 180)
        if not check.failures:
            check.check(values.geo_pair, geo_lat, geo_lng)
        address = cls(
            address_id=address_id,
            label=check.check(values.choice, AddressLabel, "label", label),
            street=check.check(values.text, "street", street, 255),
            city=check.check(values.text, "city", city, 100),
            state=check.check(values.optional_text, "state", state, 100),
            postal_code=check.check(values.text, "postal_code", postal_code, 20),
            country=check.check(values.text, "country", country, 100),
            is_default=is_default,
            geo_lat=geo_lat,
            geo_lng=geo_lng,
        )
        check.done()
        return address

    def fields(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


Book = tuple[Address, ...]


def find(book: Book, address_id: str) -> Address:
    for address in book:
        if address.address_id == address_id:
            return address
    raise errors.AddressNotFound(address_id)


def default_of(book: Book) -> Address | None:
    return next((a for a in book if a.is_default), None)


def _flag(book: Book, default_id: str) -> Book:
    return tuple(replace(a, is_default=a.address_id == default_id) for a in book)


def _displaced(book: Book, new_default_id: str) -> str | None:
    previous = default_of(book)
    return previous.address_id if previous and previous.address_id != new_default_id else None


def add(book: Book, address: Address) -> tuple[Book, str | None]:
    """The book with `address` appended, and the id of the default it displaced, if any.
    The first address always becomes the default."""
    if len(book) >= MAX_ADDRESSES:
        raise errors.AddressLimitReached(MAX_ADDRESSES)
    if any(a.address_id == address.address_id for a in book):
        raise errors.AddressAlreadyExists(address.address_id)
    appended = (*book, address)
    if book and not address.is_default:
        return appended, None
    return _flag(appended, address.address_id), _displaced(book, address.address_id)


def update(book: Book, address_id: str, changes: dict[str, Any]) -> tuple[Book, str | None]:
    """The book with the changes applied to one address, and the id of the default it displaced.
    The default cannot be un-flagged: another address must be made the default instead."""
    old = find(book, address_id)
    new = Address.create(**(old.fields() | changes))
    if old.is_default and not new.is_default:
        raise errors.DefaultAddressRequired()
    changed = tuple(new if a.address_id == address_id else a for a in book)
    if not new.is_default:
        return changed, None
    return _flag(changed, address_id), _displaced(book, address_id)


def remove(book: Book, address_id: str) -> tuple[Book, str | None]:
    """The book without the address, and the id of the new default if the removed one was it."""
    removed = find(book, address_id)
    if len(book) == 1:
        raise errors.LastAddressCannotBeRemoved()
    remaining = tuple(a for a in book if a.address_id != address_id)
    if not removed.is_default:
        return remaining, None
    return _flag(remaining, remaining[0].address_id), remaining[0].address_id


def make_default(book: Book, address_id: str) -> tuple[Book, str | None]:
    """The book with the flag on this address, and the id of the default it displaced (None: no move)."""
    find(book, address_id)
    return _flag(book, address_id), _displaced(book, address_id)
