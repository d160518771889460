"""HTTP edges of commands, shared by every context's routes: `If-Match` → expected version,
`Idempotency-Key`, ETag and the create/accept responses. (Contexts never import `shopstream`.)"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec

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

    status: Annotated[str, msgspec.Meta(examples=["ok"])]
    version: Annotated[
        int, msgspec.Meta(examples=[4], description="the aggregate's version after the command")
    ]


class FieldError(msgspec.Struct, frozen=True):
    field: Annotated[str, msgspec.Meta(examples=["email"])]
    message: Annotated[str, msgspec.Meta(examples=["must contain exactly one '@'"])]
    source: Annotated[str, msgspec.Meta(examples=["body"])] = "body"


class ProblemDetails(msgspec.Struct, frozen=True, omit_defaults=True):
    """RFC 9457 problem details: every error of the API has this shape."""

    type: Annotated[str, msgspec.Meta(examples=["urn:shopstream:problem:validation"])]
    title: Annotated[str, msgspec.Meta(examples=["Unprocessable Entity"])]
    status: Annotated[int, msgspec.Meta(examples=[422])]
    detail: Annotated[str, msgspec.Meta(examples=["email: must contain exactly one '@'"])]
    errors: list[FieldError] | None = None


_PROBLEM_CODES = {
    400: "The body is not JSON, or not a JSON object.",
    404: "The customer, product, category or sub-entity in the path does not exist.",
    409: "Valid, but in conflict with the current state (uniqueness, transitions, state-dependent limits).",
    412: "`If-Match` named a version the aggregate no longer has.",
    413: "The body exceeds 1 MiB.",
    422: "Invalid fields; `errors` names each one.",
    503: "Overloaded or a backing service is down; retry after `Retry-After` seconds.",
}
PROBLEMS = {
    code: ResponseSpec(
        data_container=ProblemDetails,
        description=text,
        media_type="application/problem+json",
        generate_examples=False,
    )
    for code, text in _PROBLEM_CODES.items()
}


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
