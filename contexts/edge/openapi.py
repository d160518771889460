"""Request body schemas for the OpenAPI document, taken from msgspec: the same type decodes the body,
so the document states exactly its fields, which are required and that no other field is accepted."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Reference, Schema

_FIELD_OF_KEYWORD = {f.metadata.get("alias", f.name): f.name for f in dataclasses.fields(Schema)}
_SCHEMA_MAPS = {"properties", "patternProperties", "dependentSchemas", "$defs"}
_SCHEMA_LISTS = {"anyOf", "oneOf", "allOf", "prefixItems"}
_SCHEMAS = {"items", "not", "if", "then", "else", "contains", "propertyNames", "additionalProperties"}
_FORMATS = {f.value for f in OpenAPIFormat}


def body_json_schema(body_type: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema msgspec generates for `body_type`, nested definitions inlined, with the class's
    `schema_extra` (rules that join fields, such as a currency deciding a price's decimals) merged in."""
    (_,), definitions = msgspec.json.schema_components([body_type], ref_template="{name}")
    schema = _inline(definitions[body_type.__name__], definitions)
    return {**schema, **getattr(body_type, "schema_extra", {})}


def _inline(value: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if "$ref" in value:
            return _inline(definitions[value["$ref"]], definitions)
        if "anyOf" in value and value.get("format") == "decimal":
            # msgspec states a Decimal as a string; an `anyOf` given for it (contexts/edge/wire.py) says more
            value = {k: v for k, v in value.items() if k not in ("type", "format")}
        return {k: _inline(v, definitions) for k, v in value.items()}
    if isinstance(value, list):
        return [_inline(v, definitions) for v in value]
    return value


def to_openapi(value: dict[str, Any]) -> Schema | Reference:
    """A JSON Schema as Litestar's OpenAPI objects; a keyword Litestar cannot hold is an error."""
    if "$ref" in value:
        return Reference(value["$ref"])
    fields: dict[str, Any] = {}
    for keyword, item in value.items():
        if keyword in _SCHEMA_MAPS:
            item = {k: to_openapi(v) for k, v in item.items()}
        elif keyword in _SCHEMA_LISTS:
            item = [to_openapi(v) for v in item]
        elif keyword in _SCHEMAS and isinstance(item, dict):
            item = to_openapi(item)
        elif keyword == "type":
            item = [OpenAPIType(t) for t in item] if isinstance(item, list) else OpenAPIType(item)
        elif keyword == "format" and item in _FORMATS:
            item = OpenAPIFormat(item)
        elif keyword == "default" and item is None:
            continue  # Litestar reads None as "no default"
        fields[_FIELD_OF_KEYWORD[keyword]] = item
    return Schema(**fields)


def fill(target: Schema, source: Schema) -> None:
    """Make the registered component `target` (already referenced elsewhere) say what `source` says."""
    for field in dataclasses.fields(Schema):
        setattr(target, field.name, getattr(source, field.name))
