"""Identity routes: a thin edge that turns HTTP into commands and reads the projections."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, ClassVar

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter
from msgspec import UNSET, Meta, UnsetType

from bus.errors import Invalid, NotFound
from contexts.edge import wire
from contexts.edge.access import BEARER, GUARDED, Principal, Role, allow, principal_of
from contexts.edge.bodies import Body, command_from
from contexts.edge.changes import change
from contexts.edge.dependencies import CommandRunner, ExpectedVersion, ReadPool, command_dependencies
from contexts.edge.paths import path_id
from contexts.edge.responses import Accepted, created, found
from contexts.identity import queries
from contexts.identity.account import CloseAccount, ReactivateAccount, SuspendAccount
from contexts.identity.addresses import AddAddress, RemoveAddress, SetDefaultAddress, UpdateAddress
from contexts.identity.errors import NotYourAccount
from contexts.identity.profile import UpdateProfile
from contexts.identity.registration import RegisterCustomer
from contexts.identity.tier import UpgradeTier
from contexts.identity.values import AddressLabel, Tier

_PAST = wire.past_date_pattern(date.today())
Name = Annotated[str, wire.text(100), Meta(examples=["Ada"])]
Phone = Annotated[
    str,
    wire.pattern(wire.PHONE_PATTERN, description="digits, spaces, '-', '(' and ')' after an optional '+'"),
    Meta(examples=["+44 20 7946 0958"]),
]
BirthDate = Annotated[
    date,
    Meta(examples=["1990-12-10"], extra_json_schema={"pattern": _PAST, "description": "not in the future"}),
]
Latitude = Annotated[float, wire.coordinate(90), Meta(examples=[51.5074])]
Longitude = Annotated[float, wire.coordinate(180), Meta(examples=[-0.1345])]
Label = Annotated[str, wire.one_of(AddressLabel), Meta(examples=["Home"])]
_GEO_BOTH = {
    "required": ["geo_lat", "geo_lng"],
    "properties": {"geo_lat": {"type": "number"}, "geo_lng": {"type": "number"}},
}
_GEO_CLEARED = {
    "required": ["geo_lat", "geo_lng"],
    "properties": {"geo_lat": {"type": "null"}, "geo_lng": {"type": "null"}},
}
_GEO_OMITTED = {"not": {"anyOf": [{"required": ["geo_lat"]}, {"required": ["geo_lng"]}]}}


class Registration(Body, command=RegisterCustomer):
    external_id: Annotated[  # not blank, kept exactly as given
        str,
        wire.pattern(rf"^[^\x00]*[^{wire.WS}\x00][^\x00]*$", max_length=255),
        Meta(examples=["crm-10042"]),
    ]
    email: Annotated[
        str, wire.pattern(wire.EMAIL_PATTERN, max_length=254), Meta(examples=["ada@example.com"])
    ]
    first_name: Name
    last_name: Annotated[str, wire.text(100), Meta(examples=["Lovelace"])]
    phone: Phone | None = None
    date_of_birth: BirthDate | None = None


class ProfileChange(Body, command=UpdateProfile):
    first_name: Name | UnsetType = UNSET
    last_name: Name | UnsetType = UNSET
    phone: Phone | UnsetType | None = UNSET
    date_of_birth: BirthDate | UnsetType | None = UNSET


class NewAddress(Body, command=AddAddress):
    schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [_GEO_BOTH, {"properties": _GEO_CLEARED["properties"]}],
        "description": "geo_lat and geo_lng go together",
    }

    street: Annotated[str, wire.text(255), Meta(examples=["12 St James's Square"])]
    city: Annotated[str, wire.text(100), Meta(examples=["London"])]
    postal_code: Annotated[str, wire.text(20), Meta(examples=["SW1Y 4LB"])]
    country: Annotated[str, wire.text(100), Meta(examples=["United Kingdom"])]
    label: Label = "Home"
    state: Annotated[str, wire.optional_text(100)] | None = None
    is_default: bool = False
    geo_lat: Latitude | None = None
    geo_lng: Longitude | None = None


class AddressChange(Body, command=UpdateAddress):
    schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [_GEO_BOTH, _GEO_CLEARED, _GEO_OMITTED],
        "description": "geo_lat and geo_lng change together",
    }

    label: Label | UnsetType = UNSET
    street: Annotated[str, wire.text(255)] | UnsetType = UNSET
    city: Annotated[str, wire.text(100)] | UnsetType = UNSET
    state: Annotated[str, wire.optional_text(100)] | UnsetType | None = UNSET
    postal_code: Annotated[str, wire.text(20)] | UnsetType = UNSET
    country: Annotated[str, wire.text(100)] | UnsetType = UNSET
    is_default: bool | UnsetType = UNSET
    geo_lat: Latitude | UnsetType | None = UNSET
    geo_lng: Longitude | UnsetType | None = UNSET


class Suspension(Body, command=SuspendAccount):
    reason: Annotated[str, wire.text(500), Meta(examples=["chargeback under review"])]


class TierChange(Body, command=UpgradeTier):
    new_tier: Annotated[
        str, wire.one_of(Tier), Meta(examples=["Gold"], description="only upwards: same or lower is 409")
    ]


class CustomerCreated(msgspec.Struct, frozen=True):
    customer_id: Annotated[str, Meta(examples=["0b5e6c1e-3f4a-4c55-9a43-2f1d8f0c9e21"])]
    version: Annotated[int, Meta(examples=[1])]


class AddressCreated(msgspec.Struct, frozen=True):
    address_id: Annotated[str, Meta(examples=["7d2f9a64-51b8-4c1e-a0e3-6b9c2d4e8f10"])]
    version: Annotated[int, Meta(examples=[2])]


_customer_id = path_id("customer")
CUSTOMERS = allow(Role.CUSTOMER)  # a customer (sub = its external_id) only on itself; admins on anyone
ADMINS = allow()  # suspension, tiers and segments are the shop's decisions


_EITHER = "give exactly one of `email` and `external_id` (else 422)"
# Ids in paths are UUIDs: any other value names nothing (404).
CustomerId = Annotated[str, PathParameter(description="The customer's id", format="uuid")]
AddressId = Annotated[str, PathParameter(description="The address's id", format="uuid")]


def _addressed(caller: Principal, customer_id: str) -> str:
    """The customer id in the path. To a customer, an id that cannot exist is refused like another's."""
    try:
        return _customer_id(customer_id)
    except NotFound:
        if caller.role is Role.CUSTOMER:
            raise NotYourAccount() from None
        raise


async def _readable(pool: ReadPool, caller: Principal, customer_id: str) -> str:
    """The customer id in the path, if the caller may read it: a customer only itself (403 alike for
    another customer and for nobody)."""
    cid = _addressed(caller, customer_id)
    own = caller.acting_as(Role.CUSTOMER)
    if own is not None and not await queries.is_own(pool, own, customer_id=cid):
        raise NotYourAccount()
    return cid


def _customer(request: Request[Any, Any, Any], customer_id: str) -> dict[str, str | None]:
    """The customer a command addresses: its id from the path; a customer's commands carry its
    external id, so that it changes only itself."""
    caller = principal_of(request)
    return {
        "customer_id": _addressed(caller, customer_id),
        "acting_external_id": caller.acting_as(Role.CUSTOMER),
    }


class CustomerController(Controller):
    path = "/customers"
    tags = ["identity"]
    dependencies = command_dependencies("identity")

    @post(
        "/",
        operation_id="registerCustomer",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Register a customer",
    )
    async def register(
        self, commands: CommandRunner, request: Request[Any, Any, Any], data: JSONBody[Registration]
    ) -> Response[CustomerCreated]:
        """Open an account; `external_id` and `email` (case-insensitively) must be unique (409). A customer
        registers only itself: `external_id` must be its token's `sub` (403)."""
        if principal_of(request).acting_as(Role.CUSTOMER) not in (None, data.external_id):
            raise NotYourAccount()
        outcome = await commands.run(command_from(RegisterCustomer, data, customer_id=str(uuid.uuid4())))
        body = CustomerCreated(customer_id=outcome.aggregate_id, version=outcome.version)
        return created(body, f"/customers/{outcome.aggregate_id}", outcome.version)

    @put(
        "/{customer_id:str}/profile",
        operation_id="updateProfile",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Update the profile",
    )
    async def update_profile(
        self,
        commands: CommandRunner,
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
        data: JSONBody[ProfileChange],
    ) -> Response[Accepted]:
        """Omitted fields stay as they are; `null` clears `phone` or `date_of_birth`."""
        return await change(commands, UpdateProfile, _customer(request, customer_id), expected_version, data)

    @post(
        "/{customer_id:str}/addresses",
        operation_id="addAddress",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Add an address",
    )
    async def add_address(
        self,
        commands: CommandRunner,
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
        data: JSONBody[NewAddress],
    ) -> Response[AddressCreated]:
        """At most 10 addresses; the first, or one sent with `is_default`, becomes the default."""
        command = command_from(
            AddAddress,
            data,
            address_id=str(uuid.uuid4()),
            expected_version=expected_version,
            **_customer(request, customer_id),
        )
        outcome = await commands.run(command)
        body = AddressCreated(address_id=outcome.created_id or "", version=outcome.version)
        location = f"/customers/{command.customer_id}/addresses/{outcome.created_id}"
        return created(body, location, outcome.version)

    @put(
        "/{customer_id:str}/addresses/{address_id:str}",
        operation_id="updateAddress",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Change an address",
    )
    async def update_address(
        self,
        commands: CommandRunner,
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        address_id: AddressId,
        expected_version: ExpectedVersion,
        data: JSONBody[AddressChange],
    ) -> Response[Accepted]:
        """Omitted fields stay as they are; `is_default: true` moves the default here."""
        return await change(
            commands,
            UpdateAddress,
            _customer(request, customer_id),
            expected_version,
            data,
            address_id=address_id,
        )

    @delete(
        "/{customer_id:str}/addresses/{address_id:str}",
        operation_id="removeAddress",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Remove an address",
        status_code=200,
    )
    async def remove_address(
        self,
        commands: CommandRunner,
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        address_id: AddressId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """The last address cannot be removed (409); removing the default promotes the first remaining one."""
        return await change(
            commands, RemoveAddress, _customer(request, customer_id), expected_version, address_id=address_id
        )

    @put(
        "/{customer_id:str}/addresses/{address_id:str}/default",
        operation_id="setDefaultAddress",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Make an address the default",
    )
    async def set_default_address(
        self,
        commands: CommandRunner,
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        address_id: AddressId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        return await change(
            commands,
            SetDefaultAddress,
            _customer(request, customer_id),
            expected_version,
            address_id=address_id,
        )

    @put(
        "/{customer_id:str}/suspend",
        operation_id="suspendAccount",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Suspend the account",
    )
    async def suspend(
        self,
        commands: CommandRunner,
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
        data: JSONBody[Suspension],
    ) -> Response[Accepted]:
        """Only an Active account can be suspended (409 otherwise)."""
        return await change(commands, SuspendAccount, _customer(request, customer_id), expected_version, data)

    @put(
        "/{customer_id:str}/reactivate",
        operation_id="reactivateAccount",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Reactivate the account",
    )
    async def reactivate(
        self,
        commands: CommandRunner,
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """Only a Suspended account can be reactivated (409 otherwise)."""
        return await change(commands, ReactivateAccount, _customer(request, customer_id), expected_version)

    @put(
        "/{customer_id:str}/close",
        operation_id="closeAccount",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Close the account",
    )
    async def close(
        self,
        commands: CommandRunner,
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """Closed is terminal: every later command on the customer answers 409."""
        return await change(commands, CloseAccount, _customer(request, customer_id), expected_version)

    @put(
        "/{customer_id:str}/tier",
        operation_id="upgradeTier",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Upgrade the loyalty tier",
    )
    async def upgrade_tier(
        self,
        commands: CommandRunner,
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
        data: JSONBody[TierChange],
    ) -> Response[Accepted]:
        """Tiers only move up (Standard < Silver < Gold < Platinum): same or lower is 409, unknown 422."""
        return await change(commands, UpgradeTier, _customer(request, customer_id), expected_version, data)

    @get(
        "/segments",
        operation_id="getSegments",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Customer counts by tier and status",
    )
    async def segments(self, pool: ReadPool) -> queries.SegmentCounts:
        return await queries.get_segments(pool)

    @get(
        "/",
        operation_id="findCustomer",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Find a customer by e-mail or external id",
    )
    async def find(
        self,
        pool: ReadPool,
        request: Request[Any, Any, Any],
        email: Annotated[str | None, QueryParameter(description=f"case-insensitive; {_EITHER}")] = None,
        external_id: Annotated[str | None, QueryParameter(description=_EITHER)] = None,
    ) -> Response[queries.CustomerCard]:
        """Exactly one of `email` and `external_id`; 404 when nobody matches."""
        if (email is None) == (external_id is None):
            raise Invalid("email", "give exactly one of `email` and `external_id`")
        own = principal_of(request).acting_as(Role.CUSTOMER)
        if own is not None and external_id not in (None, own):
            raise NotYourAccount()
        if own is not None and email is not None and not await queries.is_own(pool, own, email=email):
            raise NotYourAccount()
        card = await queries.get_customer_card_by(pool, email=email, external_id=external_id)
        return found(card, "customer")

    @get(
        "/{customer_id:str}",
        operation_id="getCustomer",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="The customer card",
    )
    async def card(
        self, pool: ReadPool, request: Request[Any, Any, Any], customer_id: CustomerId
    ) -> Response[queries.CustomerCard]:
        card = await queries.get_customer_card(
            pool, await _readable(pool, principal_of(request), customer_id)
        )
        return found(card, "customer", customer_id)

    @get(
        "/{customer_id:str}/addresses",
        operation_id="listAddresses",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="The address book",
    )
    async def addresses(
        self, pool: ReadPool, request: Request[Any, Any, Any], customer_id: CustomerId
    ) -> Response[queries.AddressList]:
        """Default address first, then in the order they were added."""
        book = await queries.list_addresses(pool, await _readable(pool, principal_of(request), customer_id))
        return found(book, "customer", customer_id)
