"""Customer routes: registration, profile, e-mail, account lifecycle, tiers, the customer card and
segments, and the customer's personal data: its export and its erasure."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter

from bus.bus import Bus
from bus.errors import Invalid, NotFound
from bus.outbox import Outbox
from contexts.edge.access import BEARER, GUARDED, Role, principal_of
from contexts.edge.bodies import command_from
from contexts.edge.changes import change
from contexts.edge.dependencies import CommandRunner, ExpectedVersion, ReadPool, command_dependencies
from contexts.edge.responses import Accepted, created, found
from contexts.identity import queries, values
from contexts.identity.account import CloseAccount, ReactivateAccount, SuspendAccount
from contexts.identity.api import (
    CustomerCreated,
    EmailChange,
    EmailLookup,
    ProfileChange,
    Registration,
    Suspension,
    TierChange,
)
from contexts.identity.api.parameters import ADMINS, CUSTOMERS, CustomerId, customer_target, readable_id
from contexts.identity.email_change import ChangeEmail
from contexts.identity.erasure import ErasePersonalData
from contexts.identity.errors import NotYourAccount
from contexts.identity.export import PersonalDataExport, export_customer
from contexts.identity.profile import UpdateProfile
from contexts.identity.registration import RegisterCustomer
from contexts.identity.tier import UpgradeTier

_EITHER = "give exactly one of `email` and `external_id` (else 422)"


def _event_log(bus: NamedDependency[Bus]) -> Outbox:
    """Identity's event log, with the sealing that opens its personal fields (the composition root's)."""
    return bus.route_of(RegisterCustomer).outbox


EventLog = NamedDependency[Outbox]


class CustomerController(Controller):
    path = "/customers"
    tags = ["identity"]
    dependencies = command_dependencies("identity") | {"event_log": Provide(_event_log, sync_to_thread=False)}

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
        return await change(
            commands, UpdateProfile, customer_target(request, customer_id), expected_version, data
        )

    @put(
        "/{customer_id:str}/email",
        operation_id="changeEmail",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Change the e-mail address",
    )
    async def change_email(
        self,
        commands: CommandRunner,
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
        data: JSONBody[EmailChange],
    ) -> Response[Accepted]:
        """Unique regardless of case: another customer's address in any case is 409 `email-taken`. Stored
        as given: a change of case only is a change; the very same address changes nothing (the version
        stays). The lookup by e-mail follows: the old address finds nobody, the new one the customer."""
        return await change(
            commands, ChangeEmail, customer_target(request, customer_id), expected_version, data
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
        return await change(
            commands, SuspendAccount, customer_target(request, customer_id), expected_version, data
        )

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
        return await change(
            commands, ReactivateAccount, customer_target(request, customer_id), expected_version
        )

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
        return await change(commands, CloseAccount, customer_target(request, customer_id), expected_version)

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
        return await change(
            commands, UpgradeTier, customer_target(request, customer_id), expected_version, data
        )

    @delete(
        "/{customer_id:str}/personal-data",
        operation_id="erasePersonalData",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Erase the personal data of a closed account",
        status_code=200,
    )
    async def erase_personal_data(
        self,
        commands: CommandRunner,
        request: Request[Any, Any, Any],
        customer_id: CustomerId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """Only a Closed account (409 otherwise). The customer's data key is destroyed with the erasure:
        its events stay in the log with their personal fields unreadable (shown as erased), every read
        model forgets them, and the e-mail address and external id are free for a new registration.
        Erasing again changes nothing (the version stays)."""
        return await change(
            commands, ErasePersonalData, customer_target(request, customer_id), expected_version
        )

    @get(
        "/{customer_id:str}/export",
        operation_id="exportPersonalData",
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Everything the shop holds about the customer",
    )
    async def export(
        self, pool: ReadPool, event_log: EventLog, request: Request[Any, Any, Any], customer_id: CustomerId
    ) -> Response[PersonalDataExport]:
        """One JSON document: the write model (`account`), each identity read model (null where it holds
        nothing yet) and the event history with its personal fields opened — or `[erased]` (null for an
        optional field) once the personal data is erased. The `ETag` is the customer's version."""
        cid = await readable_id(pool, principal_of(request), customer_id)
        document = await export_customer(pool, event_log, cid)
        if document is None:
            raise NotFound("customer", customer_id)
        return found(document, "customer", customer_id)

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

    @post(
        "/lookup",
        operation_id="lookUpCustomer",
        status_code=200,
        responses=GUARDED,
        security=BEARER,
        guards=[CUSTOMERS],
        summary="Find a customer by e-mail, the address kept out of the URL",
    )
    async def look_up(
        self, pool: ReadPool, request: Request[Any, Any, Any], data: JSONBody[EmailLookup]
    ) -> Response[queries.CustomerCard]:
        """The card of the customer holding the address (case-insensitive); 404 when nobody does. A read:
        it changes nothing, so it needs no `Idempotency-Key`. Prefer it to `GET /customers?email=`, whose
        URL carries the address."""
        email = values.email(data.email)  # what the document promises: a malformed address is 422
        own = principal_of(request).acting_as(Role.CUSTOMER)
        if own is not None and not await queries.is_own(pool, own, email=email):
            raise NotYourAccount()
        return found(await queries.get_customer_card_by(pool, email=email), "customer")

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
        """Exactly one of `email` and `external_id`; 404 when nobody matches. The e-mail address is kept out
        of traces and access logs, but `POST /customers/lookup` keeps it out of the URL altogether."""
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
            pool, await readable_id(pool, principal_of(request), customer_id)
        )
        return found(card, "customer", customer_id)
