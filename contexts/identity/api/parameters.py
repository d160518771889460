"""The customer a path names, and who may read or change it: a customer only itself, admins anyone."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.params import PathParameter

from bus.errors import NotFound
from contexts.edge.access import Principal, Role, allow, principal_of
from contexts.edge.dependencies import ReadPool
from contexts.edge.paths import path_id
from contexts.identity import queries
from contexts.identity.errors import NotYourAccount

CUSTOMERS = allow(Role.CUSTOMER)  # a customer (sub = its external_id) only on itself; admins on anyone
ADMINS = allow()  # suspension, tiers and segments are the shop's decisions

_customer_id = path_id("customer")
# Ids in paths are UUIDs: any other value names nothing (404).
CustomerId = Annotated[str, PathParameter(description="The customer's id", format="uuid")]
AddressId = Annotated[str, PathParameter(description="The address's id", format="uuid")]


def addressed_id(caller: Principal, customer_id: str) -> str:
    """The customer id in the path. To a customer, an id that cannot exist is refused like another's."""
    try:
        return _customer_id(customer_id)
    except NotFound:
        if caller.role is Role.CUSTOMER:
            raise NotYourAccount() from None
        raise


async def readable_id(pool: ReadPool, caller: Principal, customer_id: str) -> str:
    """The customer id in the path, if the caller may read it: a customer only itself (403 alike for
    another customer and for nobody)."""
    cid = addressed_id(caller, customer_id)
    own = caller.acting_as(Role.CUSTOMER)
    if own is not None and not await queries.is_own(pool, own, customer_id=cid):
        raise NotYourAccount()
    return cid


def customer_target(request: Request[Any, Any, Any], customer_id: str) -> dict[str, str | None]:
    """The customer a command addresses: its id from the path; a customer's commands carry its
    external id, so that it changes only itself."""
    caller = principal_of(request)
    return {
        "customer_id": addressed_id(caller, customer_id),
        "acting_external_id": caller.acting_as(Role.CUSTOMER),
    }
