"""The operator's routes: outbox backlog, streams and consumer groups, and the dead-letter tools.

With SHOPSTREAM_AUTH=jwt every route needs an admin: a token with the role `admin`, or the static
`Authorization: Bearer <SHOPSTREAM_ADMIN_TOKEN>` for scripts. With SHOPSTREAM_AUTH=none reads are open
and replaying and dropping need the admin token, refused outright while none is configured.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, PathParameter, QueryParameter
from msgspec import Meta

from bus.deadletters import DeadLetter
from bus.errors import Forbidden, Refusal
from bus.monitor import OutboxBacklog, StreamState
from contexts.edge.access import BEARER, GUARDED, Caller, Principal, Role, Unauthenticated, unauthenticated
from shopstream.monitor import Monitor


class AdminTokenNotConfigured(Refusal):
    """SHOPSTREAM_ADMIN_TOKEN is unset, so nobody may change the dead letters over HTTP (403)."""

    status = 403
    kind = "admin-token-not-configured"


class OutboxReport(msgspec.Struct, frozen=True):
    items: list[OutboxBacklog]


class StreamsReport(msgspec.Struct, frozen=True):
    items: list[StreamState]


class DeadLetterPage(msgspec.Struct, frozen=True):
    items: list[DeadLetter]
    next_cursor: Annotated[str | None, Meta(examples=["eyJkYiI6MCwiaWQiOjd9"])]


class Resolution(msgspec.Struct, frozen=True, kw_only=True):
    """What replaying or dropping a dead letter did."""

    id: Annotated[int, Meta(examples=[7])]
    consumer: Annotated[str, Meta(examples=["identity.customer_cards"])]
    aggregate_id: Annotated[str, Meta(examples=["4f8e2a10-5c3b-4d6e-9f7a-1b2c3d4e5f60"])]
    action: Annotated[str, Meta(examples=["replayed"], description="replayed or dropped")]
    released: Annotated[
        int, Meta(examples=[2], description="later events of the aggregate that waited and are now applied")
    ]
    resolved_at: datetime


def _monitor(state: State) -> Monitor:
    return Monitor(state.messaging)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


AuthorizationHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Authorization",
        required=False,
        description="`Bearer <JWT of an admin>`, or `Bearer <SHOPSTREAM_ADMIN_TOKEN>`",
    ),
]


def _is_admin_token(expected: str | None, authorization: str | None) -> bool:
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if not expected or scheme.lower() != "bearer" or not token:
        return False
    # Digests of equal length, compared in constant time: the answer's timing reveals nothing of the token.
    return hmac.compare_digest(_digest(token), _digest(expected))


def _admit(monitor: Monitor, caller: Principal, authorization: str | None, *, writes: bool) -> None:
    if caller.verified:
        if caller.role is Role.ADMIN:
            return
        raise Forbidden("The operator's routes need the role admin.")
    expected = monitor.messaging.resources.settings.admin_token
    if _is_admin_token(expected, authorization):
        return
    if caller.role is not Role.ADMIN:  # SHOPSTREAM_AUTH=jwt: neither an admin's JWT nor the admin token
        raise unauthenticated(caller, realm="shopstream-ops")
    if not writes:  # SHOPSTREAM_AUTH=none: reads are open like /metrics
        return
    if not expected:
        raise AdminTokenNotConfigured(
            "Set SHOPSTREAM_ADMIN_TOKEN to allow dead letters to be resolved over HTTP."
        )
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send `Authorization: Bearer <admin token>`.", realm="shopstream-ops")
    raise Forbidden("The token is not the admin token.")


def authorise_admin(
    monitor: NamedDependency[Monitor], caller: Caller, authorization: AuthorizationHeader = None
) -> None:
    _admit(monitor, caller, authorization, writes=True)


def authorise_reader(
    monitor: NamedDependency[Monitor], caller: Caller, authorization: AuthorizationHeader = None
) -> None:
    _admit(monitor, caller, authorization, writes=False)


Authorised = NamedDependency[None]
DeadLetterId = Annotated[int, PathParameter(description="The dead letter's id (see the listing)")]
Context = Annotated[
    str | None,
    QueryParameter(
        description="The dead letter's context (one of the contexts served); needed only when contexts"
        " have databases of their own",
    ),
]


class OpsController(Controller):
    path = "/ops"
    tags = ["operations"]
    dependencies = {
        "monitor": Provide(_monitor, sync_to_thread=False),
        "authorised": Provide(authorise_admin, sync_to_thread=False),
        "may_read": Provide(authorise_reader, sync_to_thread=False),
    }

    @get("/outbox", operation_id="getOutbox", responses=GUARDED, security=BEARER, summary="Outbox backlog")
    async def outbox(self, monitor: NamedDependency[Monitor], may_read: Authorised) -> OutboxReport:
        """Per context: events waiting for the relay, the age of the oldest, how far it has published."""
        return OutboxReport(items=await monitor.outbox())

    @get(
        "/streams",
        operation_id="getStreams",
        responses=GUARDED,
        security=BEARER,
        summary="Streams and consumer groups",
    )
    async def streams(self, monitor: NamedDependency[Monitor], may_read: Authorised) -> StreamsReport:
        """Per partition stream: its length, and per consumer group its consumers, pending entries,
        lag (entries not yet delivered, counted where the server does not report it) and the idle
        time of its oldest pending entry."""
        return StreamsReport(items=await monitor.streams())

    @get(
        "/dead-letters",
        operation_id="listDeadLetters",
        responses=GUARDED,
        security=BEARER,
        summary="Dead letters",
    )
    async def dead_letters(
        self,
        monitor: NamedDependency[Monitor],
        may_read: Authorised,
        consumer: Annotated[str | None, QueryParameter(description="only this consumer's")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="Items per page (1-100)")] = 20,
        cursor: Annotated[
            str | None,
            QueryParameter(
                description="`next_cursor` of the previous page; any other value is 422",
                schema_extra={"format": "dead-letter-cursor"},
            ),
        ] = None,
    ) -> DeadLetterPage:
        """Oldest first; `next_cursor` fetches the next page (null on the last)."""
        items, next_cursor = await monitor.dead_letters(consumer, limit, cursor)
        return DeadLetterPage(items=items, next_cursor=next_cursor)

    @post(
        "/dead-letters/{dead_letter_id:int}/replay",
        operation_id="replayDeadLetter",
        responses=GUARDED,
        security=BEARER,
        summary="Replay a dead letter",
        status_code=200,
    )
    async def replay(
        self,
        monitor: NamedDependency[Monitor],
        authorised: Authorised,
        dead_letter_id: DeadLetterId,
        context: Context = None,
    ) -> Resolution:
        """Apply the event through its consumer, then its aggregate's events that waited behind it, in
        order; all in one transaction. If it fails again, it stays (409). Admin token required."""
        return _resolution(await monitor.resolve(dead_letter_id, apply=True, context=context))

    @delete(
        "/dead-letters/{dead_letter_id:int}",
        operation_id="dropDeadLetter",
        responses=GUARDED,
        security=BEARER,
        summary="Drop a dead letter",
        status_code=200,
    )
    async def drop(
        self,
        monitor: NamedDependency[Monitor],
        authorised: Authorised,
        dead_letter_id: DeadLetterId,
        context: Context = None,
    ) -> Resolution:
        """Count the event as handled without applying it, then apply its aggregate's events that
        waited behind it. Admin token required."""
        return _resolution(await monitor.resolve(dead_letter_id, apply=False, context=context))


def _resolution(result: dict[str, Any]) -> Resolution:
    return msgspec.convert(result, Resolution)
