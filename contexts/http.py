"""HTTP edges of commands, shared by every context's routes: `If-Match` → expected version,
`Idempotency-Key`, ETag and the create/accept responses. (Contexts never import `shopstream`.)"""

from __future__ import annotations

import hashlib
import re
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response

from bus.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, Invalid
from bus.messages import Command
from bus.uow import Meta, Outcome
from observability.logging import correlation_id
from observability.tracing import current_traceparent

_AT_PATH = re.compile(r"^(.*?)(?: - at `\$\.?([^`]*)`)?$")
_strict_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
S = TypeVar("S", bound=msgspec.Struct)

_RECALL = "SELECT fingerprint, outcome::text FROM bus.idempotency_keys WHERE key = $1"
_outcome_decoder = msgspec.json.Decoder(Outcome)


class Accepted(msgspec.Struct, frozen=True):
    """The answer to a command that changed an existing aggregate."""

    status: str
    version: int


async def strictly(request: Request[Any, Any, Any], data: S) -> S:
    """Litestar converts bodies leniently (`1` → true, `"5"` → 5); an ill-typed field must be a 422,
    so the body is decoded once more, strictly, into the same type (one typed decoder per type)."""
    decoder = _strict_decoders.get(type(data))
    if decoder is None:
        decoder = _strict_decoders[type(data)] = msgspec.json.Decoder(type(data))
    try:
        return decoder.decode(await request.body())  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        message, field = _AT_PATH.match(str(exc)).groups()  # type: ignore[union-attr]
        raise Invalid(field or "body", message) from None


def expected_version(request: Request[Any, Any, Any]) -> int | None:
    """`If-Match: "7"` (or W/"7", or 7) → 7. A value that names no version can never match: -1."""
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    return int(value) if value.isdigit() else -1


def etag(version: int) -> str:
    return f'"{version}"'


async def dispatch(request: Request[Any, Any, Any], command: Command) -> Outcome:
    """Run the command on the bus, honouring `Idempotency-Key` (same key and body → first outcome)."""
    bus = request.app.state.messaging.bus
    key = request.headers.get("idempotency-key")
    if not key:
        return await bus.execute(command)  # type: ignore[no-any-return]
    if len(key) > 255:
        raise IdempotencyKeyReused("Idempotency-Key is longer than 255 characters")
    body = await request.body()
    fingerprint = hashlib.sha256(
        b"%s %s\n%s" % (request.method.encode(), request.url.path.encode(), body)
    ).hexdigest()
    pool = bus.route_of(type(command)).pool
    if (known := await _recall(pool, key, fingerprint)) is not None:
        return known
    meta = Meta(
        correlation_id=correlation_id.get(),
        traceparent=current_traceparent(),
        idempotency_key=key,
        fingerprint=fingerprint,
    )
    try:
        return await bus.execute(command, meta)  # type: ignore[no-any-return]
    except IdempotencyKeyInFlight:
        if (known := await _recall(pool, key, fingerprint)) is not None:
            return known
        raise


async def _recall(pool: Any, key: str, fingerprint: str) -> Outcome | None:
    row = await pool.fetchrow(_RECALL, key)
    if row is None:
        return None
    if row["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request")
    return _outcome_decoder.decode(row["outcome"])


def accepted(outcome: Outcome) -> Response[Accepted]:
    return Response(Accepted(status="ok", version=outcome.version), headers={"ETag": etag(outcome.version)})


def created(body: Any, location: str, version: int) -> Response[Any]:
    return Response(body, status_code=201, headers={"Location": location, "ETag": etag(version)})
