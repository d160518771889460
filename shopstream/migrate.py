"""Numbered SQL migrations per component, applied in order, each exactly once, under an advisory lock."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg

_FILE = re.compile(r"^(\d{4})_[A-Za-z0-9_-]+\.sql$")
_LOCK_KEY = 0x5350_5354  # one key for every migrator of any ShopStream database

_TRACKING_TABLE = """
CREATE SCHEMA IF NOT EXISTS shopstream;
CREATE TABLE IF NOT EXISTS shopstream.schema_migrations (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


class MigrationError(Exception):
    """An applied migration was edited afterwards, or a file is misnamed."""


@dataclass(frozen=True)
class Component:
    """A named set of migration files: the bus, a context, or a test fixture."""

    name: str
    directory: Traversable | Path

    def migrations(self) -> list[tuple[int, str, str]]:
        found = []
        for entry in self.directory.iterdir():
            if not entry.name.endswith(".sql"):
                continue
            match = _FILE.match(entry.name)
            if not match:
                raise MigrationError(f"{self.name}: migration file {entry.name!r} is not named NNNN_name.sql")
            found.append((int(match.group(1)), entry.name, entry.read_text()))
        found.sort()
        versions = [v for v, _, _ in found]
        if len(set(versions)) != len(versions):
            raise MigrationError(f"{self.name}: two migration files share a number")
        return found


async def migrate(url: str, components: list[Component]) -> list[str]:
    """Apply the pending migrations of `components` to one database; return the files applied.

    The lock is a session's, held across the migrations' transactions: `url` must reach one server
    session throughout (the database's direct URL, never a pooler in transaction mode)."""
    applied_now: list[str] = []
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(_TRACKING_TABLE)
            rows = await conn.fetch("SELECT component, version, checksum FROM shopstream.schema_migrations")
            applied = {(r["component"], r["version"]): r["checksum"] for r in rows}
            for component in components:
                for version, name, sql in component.migrations():
                    checksum = hashlib.sha256(sql.encode()).hexdigest()
                    known = applied.get((component.name, version))
                    if known is not None:
                        if known != checksum:
                            raise MigrationError(f"{component.name}/{name} changed after it was applied")
                        continue
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO shopstream.schema_migrations (component, version, name, checksum)"
                            " VALUES ($1, $2, $3, $4)",
                            component.name, version, name, checksum,
                        )  # fmt: skip
                    applied_now.append(f"{component.name}/{name}")
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()
    return applied_now


async def migrate_all(plan: dict[str, list[Component]]) -> list[str]:
    applied: list[str] = []
    for url, components in plan.items():
        applied += await migrate(url, components)
    return applied
