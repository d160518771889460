"""A small test-only context that exercises the messaging core: counters that are opened and
incremented, and a projection of their totals that records every version it applied."""

from pathlib import Path

from bus.module import ContextModule
from tests.messaging.counters.handlers import HANDLERS
from tests.messaging.counters.projection import Totals
from tests.messaging.counters.routes import ROUTES

module = ContextModule(
    name="counters",
    migrations=Path(__file__).parent / "migrations",
    handlers=HANDLERS,
    projections=[Totals()],
    route_handlers=ROUTES,
)
