"""The board's read models: its pinned notes, and the totals of the counters context's counters."""

from __future__ import annotations

from typing import Any

import asyncpg

from bus.messages import Envelope
from bus.readmodel import ReadModel
from tests.messaging.board.notes import NotePinned
from tests.messaging.counters.model import CounterOpened, Incremented


class PinnedNotes(ReadModel):
    name = "board.notes_view"
    tables = ("board.pinned_notes",)
    key = "note_id"
    timestamped = False
    creates = (NotePinned,)

    async def project(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        if isinstance(event, NotePinned):
            await conn.execute(
                "INSERT INTO board.pinned_notes (note_id, text, version) VALUES ($1, $2, $3)",
                event.note_id, event.text, envelope.aggregate_version,
            )  # fmt: skip


class CounterBoard(ReadModel):
    """Another context's events, kept in this context's own table."""

    name = "board.counter_board"
    source = "counters"
    tables = ("board.counter_totals",)
    key = "counter_id"
    timestamped = False
    creates = (CounterOpened,)

    async def project(self, conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        match event:
            case CounterOpened():
                await conn.execute(
                    "INSERT INTO board.counter_totals (counter_id, name, total, version) VALUES ($1, $2, 0, $3)",
                    event.counter_id, event.name, envelope.aggregate_version,
                )  # fmt: skip
            case Incremented():
                await conn.execute(
                    "UPDATE board.counter_totals SET total = $2 WHERE counter_id = $1",
                    event.counter_id, event.total,
                )  # fmt: skip
