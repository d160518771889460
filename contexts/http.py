"""HTTP edges of commands, shared by every context's routes: strict bodies, `If-Match` → expected
version, `Idempotency-Key`, ETag, path ids and the create/accept responses. (Contexts never import
`shopstream`: the composition root provides `bus` and `pools` as Litestar dependencies.)"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency, Provide
from litestar.dto import MsgspecDTO
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter
from litestar.plugins import SerializationPlugin
from litestar.typing import FieldDefinition

from bus.bus import Bus
from bus.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, Invalid, MalformedBody, NotFound
from bus.messages import Command
from bus.uow import Meta, Outcome
from contexts.edge.openapi import body_json_schema, fill, to_openapi
from observability.logging import correlation_id
from observability.tracing import current_traceparent

_log = logging.getLogger("shopstream.commands")
_RECALL = "SELECT fingerprint, outcome::text FROM bus.idempotency_keys WHERE key = $1"
_outcome_decoder = msgspec.json.Decoder(Outcome)


class Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The base of every request body: decoded strictly (an ill-typed field is a 422, never coerced),
    unknown fields refused. `StrictBodies` makes Litestar do it for every route that takes one.
    `schema_extra` is merged into the body's JSON Schema (rules joining fields)."""

    schema_extra: ClassVar[dict[str, Any]] = {}


class _StrictBodyDTO(MsgspecDTO[Body]):
    """Decodes the raw body with one reusable strict decoder per body type; documents the type as is."""

    _decoder: msgspec.json.Decoder[Any]

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: Any = None
    ) -> None:
        return None  # no transfer model: the body type is decoded directly

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any
    ) -> Any:
        """The component msgspec's own JSON Schema describes: what the decoder and the domain accept."""
        body = FieldDefinition.from_annotation(cls.model_type)
        registry = schema_creator.schema_registry
        component = registry.get_schema_for_field_definition(body)
        if component.type is None:  # first route taking this body
            fill(component, to_openapi(body_json_schema(cls.model_type)))  # type: ignore[arg-type]
        return registry.get_reference_for_field_definition(body)

    def decode_bytes(self, value: bytes) -> Any:
        try:
            return self._decoder.decode(value)
        except msgspec.ValidationError as exc:
            invalid = Invalid.from_msgspec(exc, default_field="")
            if not invalid.field:
                raise MalformedBody("The request body must be a JSON object.") from None
            raise invalid from None
        except msgspec.DecodeError:
            raise MalformedBody("The request body is not valid JSON.") from None


class StrictBodies(SerializationPlugin):
    """Every route whose `data` is a `Body` gets it decoded strictly; no route can forget to."""

    def __init__(self) -> None:
        self._dtos: dict[type[Any], type[_StrictBodyDTO]] = {}

    def supports_type(self, field_definition: FieldDefinition) -> bool:
        return field_definition.is_subclass_of(Body)

    def create_dto_for_type(self, field_definition: FieldDefinition) -> type[_StrictBodyDTO]:
        body_type = field_definition.annotation
        if body_type not in self._dtos:
            dto = _StrictBodyDTO[body_type]  # type: ignore[valid-type, type-arg]
            dto._decoder = msgspec.json.Decoder(body_type)
            self._dtos[body_type] = dto
        return self._dtos[body_type]


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


def path_id(what: str) -> Callable[[str], str]:
    """Ids are UUIDs: anything else in the path names nothing that exists (404)."""

    def parse(raw: str) -> str:
        try:
            return str(uuid.UUID(raw))
        except ValueError:
            raise NotFound(what, raw) from None

    return parse


def fields(body: msgspec.Struct) -> dict[str, Any]:
    """A body's fields by name, to pass on to the command of the same shape."""
    return {f: getattr(body, f) for f in body.__struct_fields__}


# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text.
_ENTITY_TAG = re.compile(r'[ \t]*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*')
_VERSION = re.compile(r"0|[1-9][0-9]*")
_TAG = r'(?:W/)?"[!#-~\x80-\xff]*"'
IF_MATCH_PATTERN = rf"^[ \t]*(?:\*|{_TAG}(?:[ \t]*,[ \t]*{_TAG})*)[ \t]*$"


def matching_versions(if_match: str | None) -> int | tuple[int, ...] | None:
    """`If-Match` (RFC 9110 §13.1.1) as the versions it accepts, by strong comparison: absent or `*`
    → None (no condition; the aggregate must still exist); `"7"` → 7; a list → the versions of its strong
    tags (`"3", W/"4", "7"` → (3, 7)). A weak tag, a tag that is no version and a malformed field match
    nothing: () → 412."""
    if if_match is None or if_match.strip() == "*":
        return None
    versions: list[int] = []
    for member in _list_members(if_match):
        if member is None:
            return ()
        weak, opaque = member
        if not weak and _VERSION.fullmatch(opaque):
            versions.append(int(opaque))
    return versions[0] if len(versions) == 1 else tuple(versions)


def _list_members(field: str) -> list[tuple[bool, str] | None]:
    """The entity-tags of a comma-separated list (empty members allowed, RFC 9110 §5.6.1); None for a
    member that is not an entity-tag."""
    members: list[tuple[bool, str] | None] = []
    position = 0
    while position <= len(field):
        match = _ENTITY_TAG.match(field, position)
        if match is None:
            rest = field[position:].split(",", 1)
            if rest[0].strip():
                return [None]
            position += len(rest[0]) + 1
            continue
        members.append((match.group(1) is not None, match.group(2)))
        position = match.end()
        if position < len(field) and field[position] != ",":
            return [None]
        position += 1
    return members


def expected_version(
    if_match: Annotated[
        str | None,
        HeaderParameter(
            name="If-Match",
            required=False,
            description='Run only if the aggregate is at one of these versions, named by strong ETags (e.g. "7"'
            ' or "6", "7"); `*` needs it to exist. Else 412: a weak ETag (W/"7") matches nothing.',
            schema_extra={"pattern": IF_MATCH_PATTERN},
        ),
    ] = None,
) -> int | tuple[int, ...] | None:
    return matching_versions(if_match)


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
        if (known := await _recall(pool, key, fingerprint)) is not None:
            return known
        meta = Meta(
            correlation_id=correlation_id.get(),
            traceparent=current_traceparent(),
            idempotency_key=key,
            fingerprint=fingerprint,
        )
        try:
            return await self.bus.execute(command, meta)  # type: ignore[no-any-return]
        except IdempotencyKeyInFlight:
            if (known := await _recall(pool, key, fingerprint)) is not None:
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


def context_pool(context: str) -> Callable[[Mapping[str, asyncpg.Pool]], asyncpg.Pool]:
    def pool(pools: NamedDependency[Mapping[str, asyncpg.Pool]]) -> asyncpg.Pool:
        return pools[context]

    return pool


# What routes declare to receive the dependencies of `command_dependencies`.
ReadPool = NamedDependency[asyncpg.Pool]
CommandRunner = NamedDependency[Commands]
ExpectedVersion = NamedDependency[int | tuple[int, ...] | None]


def command_dependencies(context: str) -> dict[str, Provide]:
    """A context controller's dependencies: its read pool, the command runner and `If-Match`."""
    return {
        "pool": Provide(context_pool(context), sync_to_thread=False),
        "commands": Provide(provide_commands, sync_to_thread=False),
        "expected_version": Provide(expected_version, sync_to_thread=False),
    }


async def _recall(pool: Any, key: str, fingerprint: str) -> Outcome | None:
    row = await pool.fetchrow(_RECALL, key)
    if row is None:
        return None
    if row["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request")
    return _outcome_decoder.decode(row["outcome"])


def etag(version: int) -> str:
    return f'"{version}"'


def accepted(outcome: Outcome) -> Response[Accepted]:
    return Response(Accepted(status="ok", version=outcome.version), headers={"ETag": etag(outcome.version)})


def created(body: Any, location: str, version: int) -> Response[Any]:
    return Response(body, status_code=201, headers={"Location": location, "ETag": etag(version)})


def found(view: Any, what: str, which: str | None = None) -> Response[Any]:
    """A read model's view with its version as ETag; no view → 404."""
    if view is None:
        raise NotFound(what, which)
    return Response(view, headers={"ETag": etag(view.version)})
