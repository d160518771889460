"""Personal data in identity's event log: sealed per customer, opened for identity's own read models.

An event's `personal` fields leave the payload and travel as one AES-GCM ciphertext under `"sealed"`,
made with the customer's data key and bound to the customer and the event type; every other field (ids,
status, tier, flags, instants) stays plain, so other contexts' read models need no key. Opening puts the
fields back; where the data key is gone (erased) or the reader needs no personal data, each reads as
erased: `ERASED` for a required text, null for an optional field. A payload without `"sealed"` was
written in plain text by an earlier release (`PersonalData.prepare` seals those at start) and opens as
it is; one with `"sealed": null` was blanked in place, having no key left to be sealed with. The data keys themselves live in `identity.customers` (`contexts.identity.datakeys`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bus.messages import Envelope, Event, encoder
from bus.outbox import Outbox
from bus.sealing import Keyring, seal, unseal
from contexts.identity import datakeys
from contexts.identity import events as e
from contexts.identity.values import ERASED

SEALED = "sealed"
# Every identity event that declares personal fields (a new one is covered by declaring them).
_EVENTS: tuple[type[Event], ...] = tuple(
    cls
    for cls in vars(e).values()
    if isinstance(cls, type)
    and issubclass(cls, Event)
    and isinstance(cls.__struct_config__.tag, str)
    and bool(getattr(cls, "personal", None))
)
for _cls in _EVENTS:
    if not set(_cls.personal) <= set(_cls.__struct_fields__):  # type: ignore[attr-defined]
        raise TypeError(f"{_cls.__name__}.personal names a field it does not have")
PERSONAL: dict[str, tuple[str, ...]] = {cls.tag(): cls.personal for cls in _EVENTS}  # type: ignore[attr-defined]
_decode = msgspec.json.Decoder(dict[str, Any]).decode


def _erased_fields(cls: type[Event]) -> dict[str, Any]:
    """What each personal field of `cls` reads once erased: null where null is allowed, else `ERASED`."""
    nullable = {f.name for f in msgspec.structs.fields(cls) if "None" in str(f.type) or f.type is type(None)}
    return {name: None if name in nullable else ERASED for name in cls.personal}  # type: ignore[attr-defined]


ERASED_FIELDS: dict[str, dict[str, Any]] = {cls.tag(): _erased_fields(cls) for cls in _EVENTS}


def bound_to(customer_id: str, event_type: str) -> bytes:
    return f"{customer_id}\x00{event_type}".encode()


def is_personal(event: Event) -> bool:
    return event.tag() in PERSONAL


_PLAIN: dict[str, tuple[str, ...]] = {
    cls.tag(): tuple(f for f in cls.__struct_fields__ if f not in cls.personal)  # type: ignore[attr-defined]
    for cls in _EVENTS
}
_TAG_FIELD = "type"  # msgspec's default: tagged events carry their tag under "type"


def seal_event(cipher: AESGCM, customer_id: str, event: Event) -> str:
    """The event's payload with its personal fields sealed (JSON text): the same as `seal_fields` of its
    JSON, built straight from the event (this runs in every command's path)."""
    tag = event.tag()
    personal = PERSONAL.get(tag)
    if personal is None:
        return encoder.encode(event).decode()
    hidden = encoder.encode({name: getattr(event, name) for name in personal})
    fields: dict[str, Any] = {_TAG_FIELD: tag}
    for name in _PLAIN[tag]:
        fields[name] = getattr(event, name)
    fields[SEALED] = base64.b64encode(seal(cipher, hidden, bound_to(customer_id, tag))).decode()
    return encoder.encode(fields).decode()


def seal_fields(
    cipher: AESGCM | None, customer_id: str, event_type: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """A payload's fields with the personal ones sealed; erased if there is no key to seal them with
    (`"sealed": null`: nothing left to open)."""
    if cipher is None:
        return fields | ERASED_FIELDS[event_type] | {SEALED: None}
    hidden = {name: fields.pop(name) for name in PERSONAL[event_type] if name in fields}
    sealed = seal(cipher, encoder.encode(hidden), bound_to(customer_id, event_type))
    return fields | {SEALED: base64.b64encode(sealed).decode()}


def open_fields(
    fields: dict[str, Any], cipher: AESGCM | None, customer_id: str, event_type: str, unsealed: bool
) -> dict[str, Any]:
    """A stored payload's fields with the personal ones opened for an `unsealed` reader, else erased; a
    sealed payload opens only with its customer's `cipher`. A plain one (from an earlier release, not
    sealed yet) reads as it is: an erasure blanks those of its customer (`ERASING_PLAIN`)."""
    sealed = fields.pop(SEALED, None)
    if not unsealed:
        return fields | ERASED_FIELDS[event_type]
    if sealed is None:
        return fields
    if cipher is None:
        return fields | ERASED_FIELDS[event_type]
    try:
        hidden = unseal(cipher, base64.b64decode(sealed), bound_to(customer_id, event_type))
    except InvalidTag:  # not this customer's key: unreadable, rather than a consumer parked for good
        return fields | ERASED_FIELDS[event_type]
    return fields | _decode(hidden)


# Blanks the personal fields of a customer's events still in plain text: $1 customer, $2 type, $3 fields.
ERASING_PLAIN = (
    "UPDATE identity.outbox SET payload = payload || $3::jsonb"
    " WHERE aggregate_id = $1 AND type = $2 AND NOT payload ? 'sealed'"
)


class PersonalData:
    """Identity's sealing (`bus.sealing.Sealing`) over the process's keyring."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self.keys = datakeys.DataKeys(keyring)

    async def open(
        self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], unsealed: bool
    ) -> list[bytes | msgspec.Raw]:
        personal = [i for i, env in enumerate(envelopes) if env.type in PERSONAL]
        opened: list[Any] = [env.payload for env in envelopes]
        if not personal:
            return opened
        ciphers: dict[str, AESGCM] = {}
        if unsealed:
            ciphers = await self.keys.ciphers(conn, {envelopes[i].aggregate_id for i in personal})
        for i in personal:
            env = envelopes[i]
            fields = open_fields(
                _decode(env.payload), ciphers.get(env.aggregate_id), env.aggregate_id, env.type, unsealed
            )
            opened[i] = encoder.encode(fields)
        return opened

    async def prepare(self, conn: asyncpg.Connection) -> None:
        await self.keys.check(conn)
        await datakeys.seal_plain_events(conn, self.keys, PERSONAL, seal_fields)

    async def erase_plain_events(self, conn: asyncpg.Connection, customer_id: str) -> None:
        """Blank the personal fields of the customer's events an earlier release left in plain text."""
        await conn.executemany(
            ERASING_PLAIN,
            [
                (customer_id, kind, encoder.encode(erased | {SEALED: None}).decode())
                for kind, erased in ERASED_FIELDS.items()
            ],
        )

    async def rotate(self, conn: asyncpg.Connection) -> int:
        await datakeys.seal_plain_events(conn, self.keys, PERSONAL, seal_fields)
        return await self.keys.rotate(conn)


def personal_data_of(outbox: Outbox) -> PersonalData:
    """The sealing of identity's outbox, as the composition root built it."""
    sealing = outbox.sealing
    if not isinstance(sealing, PersonalData):
        raise RuntimeError("identity's outbox has no personal-data sealing: the module's `sealing` is unset")
    return sealing
