"""The address book: add, change, remove an address, and choose the default."""

from __future__ import annotations

from msgspec import UNSET, UnsetType

from bus.messages import message
from bus.uow import Outcome, UnitOfWork
from contexts.identity.commands import CustomerCommand
from contexts.identity.repository import change_customer


@message
class AddAddress(CustomerCommand, frozen=True, kw_only=True, tag="identity.AddAddress"):
    """Add an address to the customer's address book."""

    address_id: str
    street: str
    city: str
    postal_code: str
    country: str
    label: str = "Home"
    state: str | None = None
    is_default: bool = False
    geo_lat: float | None = None
    geo_lng: float | None = None


@message
class UpdateAddress(CustomerCommand, frozen=True, kw_only=True, tag="identity.UpdateAddress"):
    """Change any field of one address; omitted fields stay as they are."""

    address_id: str
    label: str | UnsetType = UNSET
    street: str | UnsetType = UNSET
    city: str | UnsetType = UNSET
    state: str | UnsetType | None = UNSET
    postal_code: str | UnsetType = UNSET
    country: str | UnsetType = UNSET
    is_default: bool | UnsetType = UNSET
    geo_lat: float | UnsetType | None = UNSET
    geo_lng: float | UnsetType | None = UNSET


@message
class RemoveAddress(CustomerCommand, frozen=True, kw_only=True, tag="identity.RemoveAddress"):
    """Remove one address; the last one cannot go."""

    address_id: str


@message
class SetDefaultAddress(CustomerCommand, frozen=True, kw_only=True, tag="identity.SetDefaultAddress"):
    """Make one address the default."""

    address_id: str


_ADDRESS_FIELDS = (
    "label",
    "street",
    "city",
    "state",
    "postal_code",
    "country",
    "is_default",
    "geo_lat",
    "geo_lng",
)


def _fields(command: AddAddress | UpdateAddress) -> dict[str, object]:
    return {name: getattr(command, name) for name in _ADDRESS_FIELDS}


async def add_address(command: AddAddress, uow: UnitOfWork) -> Outcome:
    return await change_customer(
        uow,
        command,
        lambda customer: customer.add_address(command.address_id, **_fields(command)),  # type: ignore[arg-type]
        created_id=command.address_id,
    )


async def update_address(command: UpdateAddress, uow: UnitOfWork) -> Outcome:
    return await change_customer(
        uow,
        command,
        lambda customer: customer.update_address(command.address_id, **_fields(command)),  # type: ignore[arg-type]
    )


async def remove_address(command: RemoveAddress, uow: UnitOfWork) -> Outcome:
    return await change_customer(uow, command, lambda c: c.remove_address(command.address_id))


async def set_default_address(command: SetDefaultAddress, uow: UnitOfWork) -> Outcome:
    return await change_customer(
        uow,
        command,
        lambda c: c.set_default_address(command.address_id),
    )
