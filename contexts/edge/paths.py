"""Ids in paths: UUIDs, so that anything else names nothing that exists (404)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from bus.errors import NotFound


def path_id(what: str) -> Callable[[str], str]:
    """A parser of `what`'s id in a path: the UUID in its canonical form, else 404."""

    def parse(raw: str) -> str:
        try:
            return str(uuid.UUID(raw))
        except ValueError:
            raise NotFound(what, raw) from None

    return parse
