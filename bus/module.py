"""What a bounded context hands to the composition root: handlers, projections, routes, migrations.

A context's name is everything's name: its folder, its database schema, the prefix of its message tags,
projections and tables, its event log (`<name>.outbox`), its streams and its `<NAME>_DATABASE_URL`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from bus.bus import Handler
from bus.inbox import Projection
from bus.messages import Command
from bus.sealing import Keyring, Sealing


@dataclass(frozen=True)
class ContextModule:
    name: str
    migrations: Traversable | Path
    handlers: Mapping[type[Command], Handler] = field(default_factory=dict)
    projections: Sequence[Projection] = ()
    route_handlers: Sequence[Any] = ()
    # A context that seals personal fields of its events: its sealing over the process's keyring.
    sealing: Callable[[Keyring], Sealing] | None = None
    description: str = ""  # one line for the API's documentation
    package: str = ""  # where its code lives; set when the list of contexts loads it

    def source_of(self, projection: Projection) -> str:
        """The context whose events a projection reads: its `source` if it names one, else this one.
        Its tables live in this context's schema whichever stream it reads."""
        return getattr(projection, "source", None) or self.name
