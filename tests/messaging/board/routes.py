"""HTTP routes of the board context."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath, JSONBody

from contexts.edge.bodies import Body
from contexts.edge.dependencies import CommandRunner, ReadPool, command_dependencies
from contexts.edge.responses import created, found
from tests.messaging.board.notes import PinNote


class NewNote(Body):
    text: str


class PinnedNote(msgspec.Struct):
    note_id: str
    text: str
    version: int


class CounterTotal(msgspec.Struct):
    counter_id: str
    name: str
    total: int
    version: int


@post("/test-only/board/notes", dependencies=command_dependencies("board"))
async def pin_note(commands: CommandRunner, data: JSONBody[NewNote]) -> Response[Any]:
    outcome = await commands.run(PinNote(note_id=str(uuid.uuid4()), text=data.text))
    location = f"/test-only/board/notes/{outcome.created_id}"
    return created({"note_id": outcome.created_id, "version": outcome.version}, location, outcome.version)


@get("/test-only/board/notes/{note_id:str}", dependencies=command_dependencies("board"))
async def get_note(pool: ReadPool, note_id: FromPath[str]) -> Response[PinnedNote]:
    row = await pool.fetchrow(
        "SELECT note_id, text, version FROM board.pinned_notes WHERE note_id = $1", note_id
    )
    return found(None if row is None else PinnedNote(**dict(row)), "note", note_id)


@get("/test-only/board/counters/{counter_id:str}", dependencies=command_dependencies("board"))
async def get_counter(pool: ReadPool, counter_id: FromPath[str]) -> Response[CounterTotal]:
    row = await pool.fetchrow(
        "SELECT counter_id, name, total, version FROM board.counter_totals WHERE counter_id = $1", counter_id
    )
    return found(None if row is None else CounterTotal(**dict(row)), "counter", counter_id)


ROUTES = [pin_note, get_note, get_counter]
