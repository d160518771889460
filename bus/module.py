"""What a bounded context hands to the composition root: handlers, projections, routes, migrations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from bus.bus import Handler
from bus.inbox import Projection
from bus.messages import Command


@dataclass(frozen=True)
class ContextModule:
    name: str
    migrations: Traversable | Path
    handlers: Mapping[type[Command], Handler] = field(default_factory=dict)
    projections: Sequence[Projection] = ()
    route_handlers: Sequence[Any] = ()
