"""Address book routes: add, change, remove an address, choose the default, list them."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import JSONBody

from contexts.edge.access import BEARER, GUARDED, principal_of
from contexts.edge.bodies import command_from
from contexts.edge.changes import change
from contexts.edge.dependencies import CommandRunner, ExpectedVersion, ReadPool, command_dependencies
from contexts.edge.responses import Accepted, created, found
from contexts.identity import queries
from contexts.identity.addresses import AddAddress, RemoveAddress, SetDefaultAddress, UpdateAddress
from contexts.identity.api import AddressChange, AddressCreated, NewAddress
from contexts.identity.api.parameters import CUSTOMERS, AddressId, CustomerId, customer_target, readable_id


class AddressBookController(Controller):
    path = "/customers"
    tags = ["identity"]
    dependencies = command_dependencies("identity")

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
            **customer_target(request, customer_id),
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
            customer_target(request, customer_id),
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
            commands,
            RemoveAddress,
            customer_target(request, customer_id),
            expected_version,
            address_id=address_id,
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
            customer_target(request, customer_id),
            expected_version,
            address_id=address_id,
        )

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
        book = await queries.list_addresses(pool, await readable_id(pool, principal_of(request), customer_id))
        return found(book, "customer", customer_id)
