"""Strict decoding of every `Body`, as a Litestar plugin: no route can forget it."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.dto import MsgspecDTO
from litestar.plugins import SerializationPlugin
from litestar.typing import FieldDefinition

from bus.errors import Invalid, MalformedBody
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
