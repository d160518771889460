"""Request bodies: strict, and each field named as the field of the command it feeds."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import msgspec

from bus.messages import Command

C = TypeVar("C", bound=Command)


class _FeedsCommand(msgspec.StructMeta):
    """Takes `command=` in a body's class statement, and checks there, at import, that every field of
    the body is a field of that command: a mismatch stops start-up instead of failing a request."""

    def __new__(
        mcls,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        command: type[Command] | None = None,
        **options: Any,
    ) -> _FeedsCommand:
        body = super().__new__(mcls, name, bases, namespace, **options)
        command = command or getattr(body, "command", None)  # a derived body feeds its base's command
        if command is not None:
            for field in body.__struct_fields__:
                if field not in command.__struct_fields__:
                    raise TypeError(f"body {name} feeds {command.__name__}, which has no field {field!r}")
            body.command = command  # type: ignore[attr-defined]
        return body


class Body(msgspec.Struct, metaclass=_FeedsCommand, kw_only=True, forbid_unknown_fields=True):
    """The base of every request body: decoded strictly (an ill-typed field is a 422, never coerced),
    unknown fields refused. `StrictBodies` makes Litestar do it for every route that takes one.
    `schema_extra` is merged into the body's JSON Schema (rules joining fields); `command`, given in
    the class statement (`class Suspension(Body, command=SuspendAccount)`), is the command it feeds."""

    schema_extra: ClassVar[dict[str, Any]] = {}
    command: ClassVar[type[Command] | None] = None


def command_from(command_type: type[C], body: Body | None = None, **values: Any) -> C:
    """`command_type` built from `values` (ids, the caller, `If-Match`) and the fields of the body
    that feeds it."""
    if body is None:
        return command_type(**values)
    if type(body).command is not command_type:
        raise TypeError(f"body {type(body).__name__} does not feed {command_type.__name__}")
    return command_type(**values, **{f: getattr(body, f) for f in body.__struct_fields__})
