"""Envelope encryption of event payloads: a data key per aggregate, wrapped by key-encryption keys.

A context that keeps personal data in its events seals those fields with the aggregate's own random
256-bit data key (AES-GCM, a fresh 96-bit nonce each time, bound to what it belongs to by associated
data). The data key is stored wrapped — AES-GCM-encrypted — by one of the `Keyring`'s key-encryption
keys (KEKs), beside the id of the KEK that wrapped it, so that a keyring holding a new and an old KEK
reads both while the old one is rotated out. Destroying an aggregate's wrapped data key leaves every
payload sealed with it unreadable for good (crypto-shredding), wherever copies of it went.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from typing import Protocol

import asyncpg
import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bus.messages import Envelope

KEY_BYTES = 32
_NONCE_BYTES = 12


class KeyringMismatch(Exception):
    """The keyring cannot open what the database holds: a data key wrapped by a KEK it lacks."""


class _RandomBytes:
    """`os.urandom`, read 64 KiB at a time: a system call per key and nonce costs more than the AES itself
    on a busy machine. A forked child starts with an empty buffer, so no two processes share bytes."""

    def __init__(self, chunk: int = 65_536) -> None:
        self._chunk = chunk
        self._lock = threading.Lock()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._buffer, self._at = b"", 0

    def __call__(self, size: int) -> bytes:
        with self._lock:
            if self._at + size > len(self._buffer):
                self._buffer, self._at = os.urandom(max(self._chunk, size)), 0
            taken = self._buffer[self._at : self._at + size]
            self._at += size
            return taken


random_bytes = _RandomBytes()


def kek_id(kek: bytes) -> str:
    """A KEK's id, derived from the key (a wrong key cannot pass for the right one)."""
    return hashlib.sha256(b"shopstream-kek:" + kek).hexdigest()[:16]


def new_data_key() -> bytes:
    return random_bytes(KEY_BYTES)


def seal(cipher: AESGCM, plaintext: bytes, bound_to: bytes) -> bytes:
    """Nonce and ciphertext (with its tag); `bound_to` must be given again to open it."""
    nonce = random_bytes(_NONCE_BYTES)
    return nonce + cipher.encrypt(nonce, plaintext, bound_to)


def unseal(cipher: AESGCM, sealed: bytes, bound_to: bytes) -> bytes:
    """The plaintext; `InvalidTag` if the key, the data it was bound to or the bytes differ."""
    return cipher.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], bound_to)


class Keyring:
    """The KEKs a process accepts; the first wraps every new data key."""

    def __init__(self, keks: Sequence[bytes]) -> None:
        if not keks or any(len(k) != KEY_BYTES for k in keks):
            raise ValueError(f"a keyring holds one or more keys of {KEY_BYTES} bytes")
        self._ciphers = {kek_id(k): AESGCM(k) for k in keks}
        self.current = kek_id(keks[0])

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._ciphers)

    def wrap(self, data_key: bytes, owner: str) -> tuple[str, bytes]:
        """The data key wrapped by the current KEK for its owner (an aggregate id), and the KEK's id."""
        return self.current, seal(self._ciphers[self.current], data_key, owner.encode())

    def unwrap(self, kek: str, wrapped: bytes, owner: str) -> bytes:
        cipher = self._ciphers.get(kek)
        if cipher is None:
            raise KeyringMismatch(f"a data key is wrapped by KEK {kek}, which the keyring does not hold")
        try:
            return unseal(cipher, wrapped, owner.encode())
        except InvalidTag:
            raise KeyringMismatch(f"the data key of {owner} does not open under KEK {kek}") from None


class Sealing(Protocol):
    """What a context that seals fields of its events gives the messaging core (`ContextModule.sealing`,
    built over the process's keyring)."""

    async def open(
        self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], unsealed: bool
    ) -> list[bytes | msgspec.Raw]:
        """The envelopes' payloads as plain JSON for the message registry: with `unsealed`, the sealed
        fields opened with each aggregate's data key (loaded once for the whole batch, in the caller's
        transaction, so that a key destroyed before shows them as erased); without it, shown as erased
        whatever the keys (for read models that need no personal data)."""
        ...

    async def prepare(self, conn: asyncpg.Connection) -> None:
        """At start: raise `KeyringMismatch` if the keyring cannot open the stored data keys; seal what
        an earlier release left in plain text."""
        ...

    async def rotate(self, conn: asyncpg.Connection) -> int:
        """Re-wrap every data key that another KEK wrapped under the current one; return how many."""
        ...
