"""Pinning a note: the board's own aggregate, command, event, repository and handler."""

from __future__ import annotations

import json

from bus.aggregate import Aggregate
from bus.messages import Command, Event, message
from bus.repository import Repository
from bus.uow import Outcome, UnitOfWork


@message
class PinNote(Command, frozen=True, kw_only=True, tag="board.PinNote"):
    note_id: str
    text: str

    @property
    def aggregate_id(self) -> str:
        return self.note_id


@message
class NotePinned(Event, frozen=True, kw_only=True, tag="board.NotePinned"):
    """A note was pinned to the board."""

    note_id: str
    text: str


class Note(Aggregate):
    aggregate_type = "Note"

    def __init__(self, note_id: str, text: str, version: int = 0) -> None:
        super().__init__(note_id, version)
        self.text = text

    @classmethod
    def pin(cls, note_id: str, text: str) -> Note:
        note = cls(note_id, text)
        note.raise_event(NotePinned(note_id=note_id, text=text))
        return note


class Notes(Repository[Note]):
    table = "board.notes"
    what = "note"

    def load(self, state: str, version: int) -> Note:
        fields = json.loads(state)
        return Note(fields["id"], fields["text"], version)

    def dump(self, note: Note) -> str:
        return json.dumps({"id": note.id, "text": note.text})


async def pin_note(command: PinNote, uow: UnitOfWork) -> Outcome:
    async with uow:
        Notes(uow).add(Note.pin(command.note_id, command.text))
        return await uow.commit(created_id=command.note_id)


HANDLERS = {PinNote: pin_note}
