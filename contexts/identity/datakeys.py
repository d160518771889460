"""Each customer's data key, stored wrapped in its `identity.customers` row (`data_kek`, `data_key`).

The row is the key's one home: registration writes it in the same statement as the customer, erasure
sets it to NULL in the same statement as `PersonalDataErased`, and a rotation re-wraps it under the
keyring's current KEK in place (a command's save never writes these columns back, so a rotation racing
a command loses nothing). Readers load the keys of a whole batch in one query inside their own
transaction, so a key destroyed before is never used; only the unwrapping (AES) is cached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import asyncpg
import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bus.messages import encoder
from bus.sealing import Keyring, KeyringMismatch, new_data_key

_KEYS_OF = "SELECT id, data_kek, data_key FROM identity.customers WHERE id = ANY($1::text[]) AND data_key IS NOT NULL"
_KEKS_IN_USE = (
    "SELECT data_kek, count(*) AS keys FROM identity.customers WHERE data_key IS NOT NULL GROUP BY data_kek"
)
_NOT_CURRENT = (
    "SELECT id, data_kek, data_key FROM identity.customers"
    " WHERE data_key IS NOT NULL AND data_kek <> $1 LIMIT $2 FOR UPDATE SKIP LOCKED"
)
_REWRAP = "UPDATE identity.customers SET data_kek = $2, data_key = $3 WHERE id = $1 AND data_key = $4"
_GIVE_KEY = (
    "UPDATE identity.customers SET data_kek = $2, data_key = $3"
    " WHERE id = $1 AND data_key IS NULL AND email_key IS NOT NULL"
)
_PLAIN_EVENTS = (
    "SELECT position, aggregate_id, type, payload::text AS payload FROM identity.outbox"
    " WHERE type = ANY($1::text[]) AND NOT payload ? 'sealed' ORDER BY position LIMIT $2"
)
_RESEAL = "UPDATE identity.outbox SET payload = $2::jsonb WHERE position = $1"
_CACHED = 50_000  # unwrapped keys kept (about 100 bytes each)

SealFields = Callable[[AESGCM | None, str, str, dict[str, Any]], dict[str, Any]]


class DataKeys:
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._ciphers: dict[tuple[str, bytes], AESGCM] = {}

    def new(self, customer_id: str) -> tuple[AESGCM, str, bytes]:
        """A fresh data key for a customer: its cipher, and the KEK id and wrapped key to store."""
        key = new_data_key()
        kek, wrapped = self.keyring.wrap(key, customer_id)
        cipher = AESGCM(key)
        self._remember(kek, wrapped, cipher)
        return cipher, kek, wrapped

    def cipher(self, customer_id: str, kek: str, wrapped: bytes) -> AESGCM:
        """The cipher of a stored data key (KeyringMismatch if the keyring cannot unwrap it)."""
        found = self._ciphers.get((kek, wrapped))
        if found is None:
            found = AESGCM(self.keyring.unwrap(kek, wrapped, customer_id))
            self._remember(kek, wrapped, found)
        return found

    async def ciphers(self, conn: asyncpg.Connection, customer_ids: Iterable[str]) -> dict[str, AESGCM]:
        """The ciphers of the customers whose data key exists now (one query); erased ones are absent."""
        rows = await conn.fetch(_KEYS_OF, list(customer_ids))
        return {r["id"]: self.cipher(r["id"], r["data_kek"], r["data_key"]) for r in rows}

    async def check(self, conn: asyncpg.Connection) -> None:
        """Every stored data key is wrapped by a KEK of the keyring (the ids derive from the keys)."""
        rows = await conn.fetch(_KEKS_IN_USE)
        missing = {r["data_kek"]: r["keys"] for r in rows if r["data_kek"] not in self.keyring.ids}
        if missing:
            wrapped_by = ", ".join(f"{count} by {kek}" for kek, count in missing.items())
            raise KeyringMismatch(
                f"the data keys of personal data are wrapped by keys it does not hold ({wrapped_by};"
                f" it holds {', '.join(self.keyring.ids)}): give the key they were made with"
            )

    async def rotate(self, conn: asyncpg.Connection, batch: int = 500) -> int:
        """Re-wrap every data key not wrapped by the current KEK, a batch per transaction."""
        done = 0
        while True:
            async with conn.transaction():
                rows = await conn.fetch(_NOT_CURRENT, self.keyring.current, batch)
                if not rows:
                    return done
                rewrapped = []
                for row in rows:
                    key = self.keyring.unwrap(row["data_kek"], row["data_key"], row["id"])
                    kek, wrapped = self.keyring.wrap(key, row["id"])
                    rewrapped.append((row["id"], kek, wrapped, row["data_key"]))
                await conn.executemany(_REWRAP, rewrapped)
                done += len(rows)

    async def give_key(self, conn: asyncpg.Connection, customer_id: str) -> None:
        """A data key for a customer an earlier release registered without one (none if erased)."""
        _, kek, wrapped = self.new(customer_id)
        await conn.execute(_GIVE_KEY, customer_id, kek, wrapped)

    def _remember(self, kek: str, wrapped: bytes, cipher: AESGCM) -> None:
        if len(self._ciphers) >= _CACHED:
            self._ciphers.clear()
        self._ciphers[kek, wrapped] = cipher


async def seal_plain_events(
    conn: asyncpg.Connection, keys: DataKeys, personal: dict[str, tuple[str, ...]], seal: SealFields
) -> int:
    """Seal the personal fields of events an earlier release wrote in plain text (each keeps its stored
    shape and schema version); customers without a data key get one. Returns how many were sealed."""
    done = 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(_PLAIN_EVENTS, list(personal), 500)
            if not rows:
                return done
            owners = {r["aggregate_id"] for r in rows}
            ciphers = await keys.ciphers(conn, owners)
            for owner in owners - ciphers.keys():
                await keys.give_key(conn, owner)
            ciphers = await keys.ciphers(conn, owners)
            resealed = []
            for row in rows:  # a customer that has no key even now (none, or erased): fields erased
                fields = msgspec.json.decode(row["payload"])
                sealed = seal(ciphers.get(row["aggregate_id"]), row["aggregate_id"], row["type"], fields)
                resealed.append((row["position"], encoder.encode(sealed).decode()))
            await conn.executemany(_RESEAL, resealed)
            done += len(rows)
