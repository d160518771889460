"""`Idempotency-Key`: a retried write answers as the first did, without running its command again."""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated, Any

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import HeaderParameter

from bus import idempotency
from bus.bus import Bus
from bus.errors import IdempotencyKeyReused, Refusal
from bus.messages import Command
from bus.uow import Meta, Outcome
from observability.logging import correlation_id
from observability.tracing import current_traceparent

_log = logging.getLogger("shopstream.commands")


class Commands:
    """What a write route hands its command to: the bus, honouring `Idempotency-Key`."""

    __slots__ = ("bus", "key", "request")

    def __init__(self, bus: Bus, request: Request[Any, Any, Any], key: str | None) -> None:
        self.bus = bus
        self.request = request
        self.key = key

    async def run(self, command: Command) -> Outcome:
        """Same key and body as an earlier request → that request's outcome, without running again."""
        if not self.key:
            outcome: Outcome = await self.bus.execute(command)
            _log.debug("%s on %s: version %d", type(command).__name__, outcome.aggregate_id, outcome.version)
            return outcome
        key = self.key
        if len(key) > 255:
            raise IdempotencyKeyReused("Idempotency-Key is longer than 255 characters")
        request = self.request
        body = await request.body()
        # Whose request it was counts too: another caller reusing the key never gets this answer.
        caller = request.scope.get("user")
        who = f"{caller.role} {caller.subject}\n".encode() if getattr(caller, "verified", False) else b""
        fingerprint = hashlib.sha256(
            who + b"%s %s\n%s" % (request.method.encode(), request.url.path.encode(), body)
        ).hexdigest()
        pool = self.bus.route_of(type(command)).pool
        if (known := await idempotency.recall(pool, key, fingerprint)) is not None:
            return known
        meta = Meta(
            correlation_id=correlation_id.get(),
            traceparent=current_traceparent(),
            idempotency_key=key,
            fingerprint=fingerprint,
        )
        try:
            return await self.bus.execute(command, meta)  # type: ignore[no-any-return]
        except Refusal:
            # The request with this key may have committed while this one ran: a first attempt whose
            # answer a broken connection lost can commit after its retry began. The retry then clashes
            # with it (its key, a unique e-mail, a version) and answers as it did instead.
            if (known := await idempotency.recall(pool, key, fingerprint)) is not None:
                return known
            raise


def provide_commands(
    request: Request[Any, Any, Any],
    bus: NamedDependency[Bus],
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            required=False,
            description="A retry with the same key and body answers as the first request did (kept 48 h).",
        ),
    ] = None,
) -> Commands:
    return Commands(bus, request, idempotency_key)
