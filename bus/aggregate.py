"""The base of every aggregate: a version that is the optimistic lock, and the events raised since load."""

from __future__ import annotations

from typing import ClassVar

from bus.messages import Event


class Aggregate:
    """Pure domain object. Each raised event bumps `version` by one; the repository saves the
    state with a check on `loaded_version`, and the unit of work appends `pending_events`."""

    aggregate_type: ClassVar[str]

    def __init__(self, aggregate_id: str, version: int = 0) -> None:
        self.id = aggregate_id
        self.version = version
        self.loaded_version = version
        self.pending_events: list[Event] = []

    def raise_event(self, event: Event) -> None:
        self.pending_events.append(event)
        self.version += 1

    def mark_saved(self) -> None:
        self.loaded_version = self.version
        self.pending_events = []
