"""The one list of bounded contexts. Adding a context is its folder under `contexts/` and one line here;
settings (`<NAME>_DATABASE_URL`), migrations, relays, consumers, routes, `/ops` and docs derive from it.

`SHOPSTREAM_CONTEXTS` replaces the list for one process (module paths, comma-separated), e.g. to serve a
context that lives outside this repository.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from types import ModuleType

from bus.conformance import NonConformingContext, check
from bus.module import ContextModule

CONTEXTS: tuple[str, ...] = (
    "contexts.identity",
    "contexts.catalogue",
)


def context_name(path: str) -> str:
    """A context's name: its folder's."""
    return path.rsplit(".", 1)[-1]


@functools.cache
def load(paths: tuple[str, ...]) -> tuple[ContextModule, ...]:
    """Import each context's package and check it keeps the frame's rules; its `module` is what it hands over."""
    modules = []
    for path in paths:
        try:
            package = importlib.import_module(path)
        except ImportError as exc:
            raise NonConformingContext(f"context {path}: cannot be imported ({exc})") from None
        module = getattr(package, "module", None)
        if not isinstance(module, ContextModule):
            raise NonConformingContext(
                f"context {path}: its __init__ must define `module = ContextModule(...)`"
            )
        module = dataclasses.replace(
            module, package=path, description=module.description or _summary(package)
        )
        check(module)
        modules.append(module)
    return tuple(modules)


def _summary(package: ModuleType) -> str:
    """The first line of the package's docstring, which says what the context is for."""
    return (package.__doc__ or "").strip().splitlines()[0] if package.__doc__ else ""
