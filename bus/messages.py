"""Messages as data: commands, events, the wire envelope, and the one registry from tag to type.

Every message is a frozen, keyword-only msgspec Struct with an explicit, stable tag such as
`"identity.CustomerRegistered"` — never the bare class name, so a rename cannot orphan stored
messages. Schemas evolve only by adding fields with defaults; `schema_version` counts such changes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import msgspec

encoder = msgspec.json.Encoder()

M = TypeVar("M", bound="Message")


class Message(msgspec.Struct, frozen=True, kw_only=True):
    schema_version: ClassVar[int] = 1

    @classmethod
    def tag(cls) -> str:
        return str(cls.__struct_config__.tag)


class Command(Message, frozen=True, kw_only=True):
    """An intention addressed to one aggregate; `expected_version` carries an `If-Match`."""

    expected_version: int | None = None

    @property
    def aggregate_id(self) -> str:  # pragma: no cover - every command overrides it
        raise NotImplementedError


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
    """A tag no registered type carries (e.g. an event from a newer release)."""


class Registry:
    """Tag → type, with one reusable typed decoder per type."""

    def __init__(self) -> None:
        self._types: dict[str, type[Message]] = {}
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}

    def register(self, cls: type[M]) -> type[M]:
        tag = cls.__struct_config__.tag
        if not isinstance(tag, str) or "." not in tag:
            raise TypeError(f"{cls.__name__} needs an explicit tag like 'context.{cls.__name__}'")
        known = self._types.get(tag)
        if known is not None and known is not cls:
            raise TypeError(f"tag {tag!r} is taken by {known.__name__}")
        self._types[tag] = cls
        self._decoders[tag] = msgspec.json.Decoder(cls)
        return cls

    def type_of(self, tag: str) -> type[Message]:
        try:
            return self._types[tag]
        except KeyError:
            raise UnknownMessage(tag) from None

    def decode(self, tag: str, payload: bytes | msgspec.Raw) -> Any:
        try:
            decoder = self._decoders[tag]
        except KeyError:
            raise UnknownMessage(tag) from None
        return decoder.decode(payload)


registry = Registry()


def message(cls: type[M]) -> type[M]:
    """Class decorator: register a command or event under its explicit tag."""
    return registry.register(cls)
