"""The Counter aggregate: pure domain code."""

from __future__ import annotations

from bus.aggregate import Aggregate
from bus.errors import Conflict
from bus.messages import Command, Event, message


@message
class OpenCounter(Command, frozen=True, kw_only=True, tag="counters.OpenCounter"):
    counter_id: str
    name: str

    @property
    def aggregate_id(self) -> str:
        return self.counter_id


@message
class Increment(Command, frozen=True, kw_only=True, tag="counters.Increment"):
    counter_id: str
    by: int = 1

    @property
    def aggregate_id(self) -> str:
        return self.counter_id


@message
class CounterOpened(Event, frozen=True, kw_only=True, tag="counters.CounterOpened"):
    """A counter was opened at zero."""

    counter_id: str
    name: str


@message
class Incremented(Event, frozen=True, kw_only=True, tag="counters.Incremented"):
    """A counter went up."""

    counter_id: str
    by: int
    total: int


class Counter(Aggregate):
    aggregate_type = "Counter"

    def __init__(self, counter_id: str, name: str, total: int = 0, version: int = 0) -> None:
        super().__init__(counter_id, version)
        self.name = name
        self.total = total

    @classmethod
    def open(cls, counter_id: str, name: str) -> Counter:
        counter = cls(counter_id, name)
        counter.raise_event(CounterOpened(counter_id=counter_id, name=name))
        return counter

    def increment(self, by: int) -> None:
        if by <= 0:
            raise Conflict("a counter only goes up")
        self.total += by
        self.raise_event(Incremented(counter_id=self.id, by=by, total=self.total))
