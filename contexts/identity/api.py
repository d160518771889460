"""Identity routes: a thin edge that turns HTTP into commands and reads the projections."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter
from msgspec import UNSET, Meta, UnsetType

from bus.errors import Invalid
from contexts.http import (
    PROBLEMS,
    Accepted,
    Body,
    CommandRunner,
    ExpectedVersion,
    ReadPool,
    accepted,
    command_dependencies,
    created,
    fields,
    found,
    path_id,
)
from contexts.identity import queries
from contexts.identity.account import CloseAccount, ReactivateAccount, SuspendAccount
from contexts.identity.addresses import AddAddress, RemoveAddress, SetDefaultAddress, UpdateAddress
from contexts.identity.commands import CustomerCommand
from contexts.identity.profile import UpdateProfile
from contexts.identity.registration import RegisterCustomer
from contexts.identity.tier import UpgradeTier

Text = Annotated[str, Meta(max_length=10_000)]  # the domain checks the real limits and names the field


class Registration(Body):
    external_id: Annotated[str, Meta(examples=["crm-10042"])]
    email: Annotated[str, Meta(examples=["ada@example.com"])]
    first_name: Annotated[str, Meta(examples=["Ada"])]
    last_name: Annotated[str, Meta(examples=["Lovelace"])]
    phone: Annotated[str, Meta(examples=["+44 20 7946 0958"])] | None = None
    date_of_birth: Annotated[date, Meta(examples=["1990-12-10"])] | None = None


class ProfileChange(Body):
    first_name: Text | UnsetType = UNSET
    last_name: Text | UnsetType = UNSET
    phone: Text | UnsetType | None = UNSET
    date_of_birth: date | UnsetType | None = UNSET


class NewAddress(Body):
    street: Annotated[str, Meta(examples=["12 St James's Square"])]
    city: Annotated[str, Meta(examples=["London"])]
    postal_code: Annotated[str, Meta(examples=["SW1Y 4LB"])]
    country: Annotated[str, Meta(examples=["United Kingdom"])]
    label: Annotated[str, Meta(examples=["Home"], description="Home, Work or Other")] = "Home"
    state: Text | None = None
    is_default: bool = False
    geo_lat: Annotated[float, Meta(examples=[51.5074])] | None = None
    geo_lng: Annotated[float, Meta(examples=[-0.1345])] | None = None


class AddressChange(Body):
    label: Text | UnsetType = UNSET
    street: Text | UnsetType = UNSET
    city: Text | UnsetType = UNSET
    state: Text | UnsetType | None = UNSET
    postal_code: Text | UnsetType = UNSET
    country: Text | UnsetType = UNSET
    is_default: bool | UnsetType = UNSET
    geo_lat: float | UnsetType | None = UNSET
    geo_lng: float | UnsetType | None = UNSET


class Suspension(Body):
    reason: Annotated[str, Meta(examples=["chargeback under review"])]


class TierChange(Body):
    new_tier: Annotated[str, Meta(examples=["Gold"], description="Silver, Gold or Platinum; only upwards")]


class CustomerCreated(msgspec.Struct, frozen=True):
    customer_id: Annotated[str, Meta(examples=["0b5e6c1e-3f4a-4c55-9a43-2f1d8f0c9e21"])]
    version: Annotated[int, Meta(examples=[1])]


class AddressCreated(msgspec.Struct, frozen=True):
    address_id: Annotated[str, Meta(examples=["7d2f9a64-51b8-4c1e-a0e3-6b9c2d4e8f10"])]
    version: Annotated[int, Meta(examples=[2])]


_customer_id = path_id("customer")


CustomerId = Annotated[str, PathParameter(description="The customer's id (UUID)")]
AddressId = Annotated[str, PathParameter(description="The address's id")]


async def _change(
    commands: CommandRunner,
    command_type: type[CustomerCommand],
    customer_id: str,
    expected_version: ExpectedVersion,
    **changes: object,
) -> Response[Accepted]:
    """Every command on an existing customer: its id from the path, `If-Match` as the expected version."""
    command = command_type(
        customer_id=_customer_id(customer_id), expected_version=expected_version, **changes
    )
    return accepted(await commands.run(command))


class CustomerController(Controller):
    path = "/customers"
    tags = ["identity"]
    dependencies = command_dependencies("identity")

    @post("/", operation_id="registerCustomer", responses=PROBLEMS, summary="Register a customer")
    async def register(
        self, commands: CommandRunner, data: JSONBody[Registration]
    ) -> Response[CustomerCreated]:
        """Open an account; `external_id` and `email` (case-insensitively) must be unique (409)."""
        outcome = await commands.run(RegisterCustomer(customer_id=str(uuid.uuid4()), **fields(data)))
        body = CustomerCreated(customer_id=outcome.aggregate_id, version=outcome.version)
        return created(body, f"/customers/{outcome.aggregate_id}", outcome.version)

    @put(
        "/{customer_id:str}/profile",
        operation_id="updateProfile",
        responses=PROBLEMS,
        summary="Update the profile",
    )
    async def update_profile(
        self,
        commands: CommandRunner,
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
        data: JSONBody[ProfileChange],
    ) -> Response[Accepted]:
        """Omitted fields stay as they are; `null` clears `phone` or `date_of_birth`."""
        return await _change(commands, UpdateProfile, customer_id, expected_version, **fields(data))

    @post(
        "/{customer_id:str}/addresses",
        operation_id="addAddress",
        responses=PROBLEMS,
        summary="Add an address",
    )
    async def add_address(
        self,
        commands: CommandRunner,
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
        data: JSONBody[NewAddress],
    ) -> Response[AddressCreated]:
        """At most 10 addresses; the first, or one sent with `is_default`, becomes the default."""
        cid = _customer_id(customer_id)
        command = AddAddress(
            customer_id=cid, address_id=str(uuid.uuid4()), expected_version=expected_version, **fields(data)
        )
        outcome = await commands.run(command)
        body = AddressCreated(address_id=outcome.created_id or "", version=outcome.version)
        return created(body, f"/customers/{cid}/addresses/{outcome.created_id}", outcome.version)

    @put(
        "/{customer_id:str}/addresses/{address_id:str}",
        operation_id="updateAddress",
        responses=PROBLEMS,
        summary="Change an address",
    )
    async def update_address(
        self,
        commands: CommandRunner,
        customer_id: CustomerId,
        address_id: AddressId,
        expected_version: ExpectedVersion,
        data: JSONBody[AddressChange],
    ) -> Response[Accepted]:
        """Omitted fields stay as they are; `is_default: true` moves the default here."""
        return await _change(
            commands, UpdateAddress, customer_id, expected_version, address_id=address_id, **fields(data)
        )

    @delete(
        "/{customer_id:str}/addresses/{address_id:str}",
        operation_id="removeAddress",
        responses=PROBLEMS,
        summary="Remove an address",
        status_code=200,
    )
    async def remove_address(
        self,
        commands: CommandRunner,
        customer_id: CustomerId,
        address_id: AddressId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """The last address cannot be removed (409); removing the default promotes the first remaining one."""
        return await _change(commands, RemoveAddress, customer_id, expected_version, address_id=address_id)

    @put(
        "/{customer_id:str}/addresses/{address_id:str}/default",
        operation_id="setDefaultAddress",
        responses=PROBLEMS,
        summary="Make an address the default",
    )
    async def set_default_address(
        self,
        commands: CommandRunner,
        customer_id: CustomerId,
        address_id: AddressId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        return await _change(
            commands, SetDefaultAddress, customer_id, expected_version, address_id=address_id
        )

    @put(
        "/{customer_id:str}/suspend",
        operation_id="suspendAccount",
        responses=PROBLEMS,
        summary="Suspend the account",
    )
    async def suspend(
        self,
        commands: CommandRunner,
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
        data: JSONBody[Suspension],
    ) -> Response[Accepted]:
        """Only an Active account can be suspended (409 otherwise)."""
        return await _change(commands, SuspendAccount, customer_id, expected_version, reason=data.reason)

    @put(
        "/{customer_id:str}/reactivate",
        operation_id="reactivateAccount",
        responses=PROBLEMS,
        summary="Reactivate the account",
    )
    async def reactivate(
        self, commands: CommandRunner, customer_id: CustomerId, expected_version: ExpectedVersion
    ) -> Response[Accepted]:
        """Only a Suspended account can be reactivated (409 otherwise)."""
        return await _change(commands, ReactivateAccount, customer_id, expected_version)

    @put(
        "/{customer_id:str}/close",
        operation_id="closeAccount",
        responses=PROBLEMS,
        summary="Close the account",
    )
    async def close(
        self, commands: CommandRunner, customer_id: CustomerId, expected_version: ExpectedVersion
    ) -> Response[Accepted]:
        """Closed is terminal: every later command on the customer answers 409."""
        return await _change(commands, CloseAccount, customer_id, expected_version)

    @put(
        "/{customer_id:str}/tier",
        operation_id="upgradeTier",
        responses=PROBLEMS,
        summary="Upgrade the loyalty tier",
    )
    async def upgrade_tier(
        self,
        commands: CommandRunner,
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
        data: JSONBody[TierChange],
    ) -> Response[Accepted]:
        """Tiers only move up (Standard < Silver < Gold < Platinum): same or lower is 409, unknown 422."""
        return await _change(commands, UpgradeTier, customer_id, expected_version, new_tier=data.new_tier)

    @get(
        "/segments",
        operation_id="getSegments",
        responses=PROBLEMS,
        summary="Customer counts by tier and status",
    )
    async def segments(self, pool: ReadPool) -> queries.SegmentCounts:
        return await queries.get_segments(pool)

    @get(
        "/",
        operation_id="findCustomer",
        responses=PROBLEMS,
        summary="Find a customer by e-mail or external id",
    )
    async def find(
        self,
        pool: ReadPool,
        email: Annotated[str | None, QueryParameter(description="case-insensitive")] = None,
        external_id: Annotated[str | None, QueryParameter()] = None,
    ) -> Response[queries.CustomerCard]:
        """Exactly one of `email` and `external_id`; 404 when nobody matches."""
        if (email is None) == (external_id is None):
            raise Invalid("email", "give exactly one of `email` and `external_id`")
        card = await queries.get_customer_card_by(pool, email=email, external_id=external_id)
        return found(card, "customer")

    @get("/{customer_id:str}", operation_id="getCustomer", responses=PROBLEMS, summary="The customer card")
    async def card(self, pool: ReadPool, customer_id: CustomerId) -> Response[queries.CustomerCard]:
        card = await queries.get_customer_card(pool, _customer_id(customer_id))
        return found(card, "customer", customer_id)

    @get(
        "/{customer_id:str}/addresses",
        operation_id="listAddresses",
        responses=PROBLEMS,
        summary="The address book",
    )
    async def addresses(self, pool: ReadPool, customer_id: CustomerId) -> Response[queries.AddressList]:
        """Default address first, then in the order they were added."""
        book = await queries.list_addresses(pool, _customer_id(customer_id))
        return found(book, "customer", customer_id)
