"""The identity bounded context: exports its handlers, projections, routes and migrations."""

from importlib.resources import files

from bus.module import ContextModule

module = ContextModule(name="identity", migrations=files(__name__) / "migrations")
