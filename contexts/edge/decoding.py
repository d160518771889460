"""Strict decoding of every `Body`, as a Litestar plugin: no route can forget it. The plugin also
refuses a request body that is not declared `application/json` (415).

Why the media type matters: a web page may send a cross-origin POST without asking the server first
only as `text/plain`, `application/x-www-form-urlencoded` or `multipart/form-data` ("simple" requests,
Fetch standard), and then cannot read the answer — but the request still acts, with the browser's
access to this service (a local `SHOPSTREAM_AUTH=none` server serves every caller as admin). Refusing
every body whose declared type is not JSON, a missing type included, leaves such a page nothing to
send. PUT, PATCH and DELETE always need a CORS preflight, which this service never grants.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from litestar.config.app import AppConfig
from litestar.dto import MsgspecDTO
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.plugins import InitPlugin, SerializationPlugin
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.typing import FieldDefinition

from bus.errors import Invalid, MalformedBody, Refusal
from contexts.edge.bodies import Body
from contexts.edge.openapi import body_json_schema, fill, to_openapi


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


JSON = "application/json"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class UnsupportedMediaType(Refusal):
    """A request body declared as anything but `application/json`, or not declared at all (415)."""

    status = 415
    kind = "unsupported-media-type"


def _declared(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bool, list[str]]:
    """Whether the request carries a body, and the media types its Content-Type headers declare."""
    has_body, declared = False, []
    for name, value in headers:
        if name == b"content-type":
            declared.append(value.split(b";", 1)[0].strip().lower().decode("latin-1"))
        elif name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            has_body = True
    return has_body, declared


class JsonOnly(ASGIMiddleware):
    """POST, PUT, PATCH and DELETE with a body: the body must be declared `application/json` (415).
    JSON has no other encoding than UTF-8 (RFC 8259), so a `charset` parameter changes nothing."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope.get("method") in _WRITES:
            has_body, declared = _declared(scope["headers"])
            if has_body and declared != [JSON]:
                given = ", ".join(declared) or "none was given"
                raise UnsupportedMediaType(
                    f"The request body must be sent as Content-Type: {JSON} ({given})."
                )
        await next_app(scope, receive, send)


class StrictBodies(SerializationPlugin, InitPlugin):
    """Every route whose `data` is a `Body` gets it decoded strictly, and every body sent to a write
    route must be declared JSON (`JsonOnly`); no route can forget either."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.append(JsonOnly())
        return app_config

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
