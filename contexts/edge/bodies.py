"""Request bodies: strict, and each named field for field like the command it feeds."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec


class Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The base of every request body: decoded strictly (an ill-typed field is a 422, never coerced),
    unknown fields refused. `StrictBodies` makes Litestar do it for every route that takes one.
    `schema_extra` is merged into the body's JSON Schema (rules joining fields)."""

    schema_extra: ClassVar[dict[str, Any]] = {}


def fields(body: msgspec.Struct) -> dict[str, Any]:
    """A body's fields by name, to pass on to the command of the same shape."""
    return {f: getattr(body, f) for f in body.__struct_fields__}
