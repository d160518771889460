"""Messages as data: commands, events, the wire envelope, and the one registry from tag to type.

Every message is a frozen, keyword-only msgspec Struct with an explicit, stable tag such as
`"identity.CustomerRegistered"` — never the bare class name, so a rename cannot orphan stored
messages. `schema_version` counts an event's shapes: a field added with a default needs nothing more;
any other change (a rename, a split, a new meaning) registers an upcaster that lifts a stored payload
of the previous version into the next, so every reader sees only the current shape.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import msgspec

encoder = msgspec.json.Encoder()

M = TypeVar("M", bound="Message")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Message(msgspec.Struct, frozen=True, kw_only=True):
    schema_version: ClassVar[int] = 1

    @classmethod
    def tag(cls) -> str:
        return str(cls.__struct_config__.tag)


class Command(Message, frozen=True, kw_only=True):
    """An intention addressed to one aggregate; `expected_version` carries an `If-Match`."""

    expected_version: int | tuple[int, ...] | None = None

    @property
    def aggregate_id(self) -> str:  # pragma: no cover - every command overrides it
        raise NotImplementedError


class Outcome(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a command did: the aggregate, its version after the command, and any id it created."""

    aggregate_id: str
    version: int
    created_id: str | None = None


class Event(Message, frozen=True, kw_only=True):
    """Something that happened to one aggregate; the payload of an envelope."""


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """An event on the wire and in the event log (SPEC §1)."""

    event_id: uuid.UUID
    type: str
    schema_version: int
    context: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    occurred_at: datetime
    correlation_id: str
    causation_id: str
    traceparent: str | None
    payload: msgspec.Raw


envelope_decoder = msgspec.json.Decoder(Envelope)


class UnknownMessage(Exception):
    """A tag no registered type carries, or a schema version newer than its type's (an event from a
    newer release)."""


class Registry:
    """Tag → type, with one reusable typed decoder per type and the upcasters of its older versions."""

    def __init__(self) -> None:
        self._types: dict[str, type[Message]] = {}
        self._decoders: dict[str, tuple[msgspec.json.Decoder[Any], int]] = {}  # tag → decoder, version
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, cls: type[M]) -> type[M]:
        tag = cls.__struct_config__.tag
        if not isinstance(tag, str) or "." not in tag:
            raise TypeError(f"{cls.__name__} needs an explicit tag like 'context.{cls.__name__}'")
        known = self._types.get(tag)
        if known is not None and known is not cls:
            raise TypeError(f"tag {tag!r} is taken by {known.__name__}")
        self._types[tag] = cls
        self._decoders[tag] = (msgspec.json.Decoder(cls), cls.schema_version)
        return cls

    def type_of(self, tag: str) -> type[Message]:
        try:
            return self._types[tag]
        except KeyError:
            raise UnknownMessage(tag) from None

    def upcaster(self, tag: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: a pure function lifting a payload (a dict) of `tag` from `from_version` to the
        next version. A version without one was a change by added defaults: it passes as it is."""

        def register(upcast: Upcaster) -> Upcaster:
            if (tag, from_version) in self._upcasters:
                raise TypeError(f"{tag} v{from_version} already has an upcaster")
            self._upcasters[tag, from_version] = upcast
            return upcast

        return register

    def decode(self, tag: str, payload: bytes | msgspec.Raw, schema_version: int | None = None) -> Any:
        """The payload as its type's current version; `schema_version` is the one it was stored with
        (None: the current one)."""
        try:
            decoder, current = self._decoders[tag]
        except KeyError:
            raise UnknownMessage(tag) from None
        if schema_version is None or schema_version == current:
            return decoder.decode(payload)
        return decoder.decode(encoder.encode(self.upcast(tag, msgspec.json.decode(payload), schema_version)))

    def upcast(self, tag: str, fields: dict[str, Any], schema_version: int) -> dict[str, Any]:
        """Lift a decoded payload of `schema_version` to the current version of `tag`."""
        current = self.type_of(tag).schema_version
        if schema_version > current:
            raise UnknownMessage(f"{tag} v{schema_version} (this release knows up to v{current})")
        for version in range(schema_version, current):
            upcast = self._upcasters.get((tag, version))
            if upcast is not None:
                fields = upcast(fields)
        return fields


registry = Registry()


def message(cls: type[M]) -> type[M]:
    """Class decorator: register a command or event under its explicit tag."""
    return registry.register(cls)
