"""A test-only context built the way a new context is added: this folder, plus its module path in the
list of contexts. It pins notes (its own aggregate and read model) and keeps a board of the counters
context's totals, fed by the counters' events: a read model of another context's stream."""

from pathlib import Path

from bus.module import ContextModule
from tests.messaging.board.notes import HANDLERS
from tests.messaging.board.projections import CounterBoard, PinnedNotes
from tests.messaging.board.routes import ROUTES

module = ContextModule(
    name="board",
    migrations=Path(__file__).parent / "migrations",
    handlers=HANDLERS,
    projections=[PinnedNotes(), CounterBoard()],
    route_handlers=ROUTES,
)
