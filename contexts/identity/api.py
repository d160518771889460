"""Identity routes: a thin edge that turns HTTP into commands and reads the projections."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter
from msgspec import UNSET, Meta, UnsetType

from bus.errors import Invalid, NotFound
from contexts.http import PROBLEMS, Accepted, accepted, created, dispatch, etag, expected_version, strictly
from contexts.identity import queries
from contexts.identity.account import CloseAccount, ReactivateAccount, SuspendAccount
from contexts.identity.addresses import AddAddress, RemoveAddress, SetDefaultAddress, UpdateAddress
from contexts.identity.commands import CustomerCommand
from contexts.identity.profile import UpdateProfile
from contexts.identity.registration import RegisterCustomer
from contexts.identity.tier import UpgradeTier

Text = Annotated[str, Meta(max_length=10_000)]  # the domain checks the real limits and names the field


class Registration(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    external_id: Annotated[str, Meta(examples=["crm-10042"])]
    email: Annotated[str, Meta(examples=["ada@example.com"])]
    first_name: Annotated[str, Meta(examples=["Ada"])]
    last_name: Annotated[str, Meta(examples=["Lovelace"])]
    phone: Annotated[str, Meta(examples=["+44 20 7946 0958"])] | None = None
    date_of_birth: Annotated[date, Meta(examples=["1990-12-10"])] | None = None


class ProfileChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    first_name: Text | UnsetType = UNSET
    last_name: Text | UnsetType = UNSET
    phone: Text | UnsetType | None = UNSET
    date_of_birth: date | UnsetType | None = UNSET


class NewAddress(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    street: Annotated[str, Meta(examples=["12 St James's Square"])]
    city: Annotated[str, Meta(examples=["London"])]
    postal_code: Annotated[str, Meta(examples=["SW1Y 4LB"])]
    country: Annotated[str, Meta(examples=["United Kingdom"])]
    label: Annotated[str, Meta(examples=["Home"], description="Home, Work or Other")] = "Home"
    state: Text | None = None
    is_default: bool = False
    geo_lat: Annotated[float, Meta(examples=[51.5074])] | None = None
    geo_lng: Annotated[float, Meta(examples=[-0.1345])] | None = None


class AddressChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    label: Text | UnsetType = UNSET
    street: Text | UnsetType = UNSET
    city: Text | UnsetType = UNSET
    state: Text | UnsetType | None = UNSET
    postal_code: Text | UnsetType = UNSET
    country: Text | UnsetType = UNSET
    is_default: bool | UnsetType = UNSET
    geo_lat: float | UnsetType | None = UNSET
    geo_lng: float | UnsetType | None = UNSET


class Suspension(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(examples=["chargeback under review"])]


class TierChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    new_tier: Annotated[str, Meta(examples=["Gold"], description="Silver, Gold or Platinum; only upwards")]


class CustomerCreated(msgspec.Struct, frozen=True):
    customer_id: Annotated[str, Meta(examples=["0b5e6c1e-3f4a-4c55-9a43-2f1d8f0c9e21"])]
    version: Annotated[int, Meta(examples=[1])]


class AddressCreated(msgspec.Struct, frozen=True):
    address_id: Annotated[str, Meta(examples=["7d2f9a64-51b8-4c1e-a0e3-6b9c2d4e8f10"])]
    version: Annotated[int, Meta(examples=[2])]


def _customer_id(raw: str) -> str:
    """Ids are UUIDs: anything else names no customer."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound(f"customer {raw}") from None


def _pool(request: Request[Any, Any, Any]) -> asyncpg.Pool:
    return request.app.state.messaging.pool_of("identity")


def _fields(body: msgspec.Struct) -> dict[str, Any]:
    return {f: getattr(body, f) for f in body.__struct_fields__}


CustomerId = Annotated[str, PathParameter(description="The customer's id (UUID)")]


async def _change(
    request: Request[Any, Any, Any], command_type: type[CustomerCommand], customer_id: str, **fields: Any
) -> Response[Accepted]:
    """Every command on an existing customer: its id from the path, `If-Match` as the expected version."""
    command = command_type(
        customer_id=_customer_id(customer_id), expected_version=expected_version(request), **fields
    )
    return accepted(await dispatch(request, command))


class CustomerController(Controller):
    path = "/customers"
    tags = ["identity"]

    @post("/", operation_id="registerCustomer", responses=PROBLEMS, summary="Register a customer")
    async def register(
        self, request: Request[Any, Any, Any], data: JSONBody[Registration]
    ) -> Response[CustomerCreated]:
        """Open an account; `external_id` and `email` (case-insensitively) must be unique (409)."""
        data = await strictly(request, data)
        command = RegisterCustomer(customer_id=str(uuid.uuid4()), **_fields(data))
        outcome = await dispatch(request, command)
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
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        data: JSONBody[ProfileChange],
    ) -> Response[Accepted]:
        """Omitted fields stay as they are; `null` clears `phone` or `date_of_birth`."""
        data = await strictly(request, data)
        return await _change(request, UpdateProfile, customer_id, **_fields(data))

    @post(
        "/{customer_id:str}/addresses",
        operation_id="addAddress",
        responses=PROBLEMS,
        summary="Add an address",
    )
    async def add_address(
        self, request: Request[Any, Any, Any], customer_id: CustomerId, data: JSONBody[NewAddress]
    ) -> Response[AddressCreated]:
        """At most 10 addresses; the first, or one sent with `is_default`, becomes the default."""
        data = await strictly(request, data)
        cid = _customer_id(customer_id)
        command = AddAddress(
            customer_id=cid,
            address_id=str(uuid.uuid4()),
            expected_version=expected_version(request),
            **_fields(data),
        )
        outcome = await dispatch(request, command)
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
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        address_id: FromPath[str],
        data: JSONBody[AddressChange],
    ) -> Response[Accepted]:
        """Omitted fields stay as they are; `is_default: true` moves the default here."""
        data = await strictly(request, data)
        return await _change(request, UpdateAddress, customer_id, address_id=address_id, **_fields(data))

    @delete(
        "/{customer_id:str}/addresses/{address_id:str}",
        operation_id="removeAddress",
        responses=PROBLEMS,
        summary="Remove an address",
        status_code=200,
    )
    async def remove_address(
        self, request: Request[Any, Any, Any], customer_id: CustomerId, address_id: FromPath[str]
    ) -> Response[Accepted]:
        """The last address cannot be removed (409); removing the default promotes the first remaining one."""
        return await _change(request, RemoveAddress, customer_id, address_id=address_id)

    @put(
        "/{customer_id:str}/addresses/{address_id:str}/default",
        operation_id="setDefaultAddress",
        responses=PROBLEMS,
        summary="Make an address the default",
    )
    async def set_default_address(
        self, request: Request[Any, Any, Any], customer_id: CustomerId, address_id: FromPath[str]
    ) -> Response[Accepted]:
        return await _change(request, SetDefaultAddress, customer_id, address_id=address_id)

    @put(
        "/{customer_id:str}/suspend",
        operation_id="suspendAccount",
        responses=PROBLEMS,
        summary="Suspend the account",
    )
    async def suspend(
        self, request: Request[Any, Any, Any], customer_id: CustomerId, data: JSONBody[Suspension]
    ) -> Response[Accepted]:
        """Only an Active account can be suspended (409 otherwise)."""
        data = await strictly(request, data)
        return await _change(request, SuspendAccount, customer_id, reason=data.reason)

    @put(
        "/{customer_id:str}/reactivate",
        operation_id="reactivateAccount",
        responses=PROBLEMS,
        summary="Reactivate the account",
    )
    async def reactivate(
        self, request: Request[Any, Any, Any], customer_id: CustomerId
    ) -> Response[Accepted]:
        """Only a Suspended account can be reactivated (409 otherwise)."""
        return await _change(request, ReactivateAccount, customer_id)

    @put(
        "/{customer_id:str}/close",
        operation_id="closeAccount",
        responses=PROBLEMS,
        summary="Close the account",
    )
    async def close(self, request: Request[Any, Any, Any], customer_id: CustomerId) -> Response[Accepted]:
        """Closed is terminal: every later command on the customer answers 409."""
        return await _change(request, CloseAccount, customer_id)

    @put(
        "/{customer_id:str}/tier",
        operation_id="upgradeTier",
        responses=PROBLEMS,
        summary="Upgrade the loyalty tier",
    )
    async def upgrade_tier(
        self, request: Request[Any, Any, Any], customer_id: CustomerId, data: JSONBody[TierChange]
    ) -> Response[Accepted]:
        """Tiers only move up (Standard < Silver < Gold < Platinum): same or lower is 409, unknown 422."""
        data = await strictly(request, data)
        return await _change(request, UpgradeTier, customer_id, new_tier=data.new_tier)

    @get(
        "/segments",
        operation_id="getSegments",
        responses=PROBLEMS,
        summary="Customer counts by tier and status",
    )
    async def segments(self, request: Request[Any, Any, Any]) -> queries.SegmentCounts:
        return await queries.get_segments(_pool(request))

    @get(
        "/",
        operation_id="findCustomer",
        responses=PROBLEMS,
        summary="Find a customer by e-mail or external id",
    )
    async def find(
        self,
        request: Request[Any, Any, Any],
        email: Annotated[str | None, QueryParameter(description="case-insensitive")] = None,
        external_id: Annotated[str | None, QueryParameter()] = None,
    ) -> Response[queries.CustomerCard]:
        """Exactly one of `email` and `external_id`; 404 when nobody matches."""
        if (email is None) == (external_id is None):
            raise Invalid("email", "give exactly one of `email` and `external_id`")
        card = await queries.get_customer_card_by(_pool(request), email=email, external_id=external_id)
        if card is None:
            raise NotFound("customer")
        return Response(card, headers={"ETag": etag(card.version)})

    @get("/{customer_id:str}", operation_id="getCustomer", responses=PROBLEMS, summary="The customer card")
    async def card(
        self, request: Request[Any, Any, Any], customer_id: CustomerId
    ) -> Response[queries.CustomerCard]:
        card = await queries.get_customer_card(_pool(request), _customer_id(customer_id))
        if card is None:
            raise NotFound(f"customer {customer_id}")
        return Response(card, headers={"ETag": etag(card.version)})

    @get(
        "/{customer_id:str}/addresses",
        operation_id="listAddresses",
        responses=PROBLEMS,
        summary="The address book",
    )
    async def addresses(
        self, request: Request[Any, Any, Any], customer_id: CustomerId
    ) -> Response[queries.AddressList]:
        """Default address first, then in the order they were added."""
        book = await queries.list_addresses(_pool(request), _customer_id(customer_id))
        if book is None:
            raise NotFound(f"customer {customer_id}")
        return Response(book, headers={"ETag": etag(book.version)})
