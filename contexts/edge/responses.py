"""The answers of the API: a change accepted, an aggregate created, a view found."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Response

from bus.errors import NotFound
from bus.uow import Outcome
from contexts.edge.conditional import etag


class Accepted(msgspec.Struct, frozen=True):
    """The answer to a command that changed an existing aggregate."""

    status: Annotated[str, msgspec.Meta(examples=["ok"])]
    version: Annotated[
        int, msgspec.Meta(examples=[4], description="the aggregate's version after the command")
    ]


def accepted(outcome: Outcome) -> Response[Accepted]:
    return Response(Accepted(status="ok", version=outcome.version), headers={"ETag": etag(outcome.version)})


def created(body: Any, location: str, version: int) -> Response[Any]:
    return Response(body, status_code=201, headers={"Location": location, "ETag": etag(version)})


def found(view: Any, what: str, which: str | None = None) -> Response[Any]:
    """A read model's view with its version as ETag; no view → 404."""
    if view is None:
        raise NotFound(what, which)
    return Response(view, headers={"ETag": etag(view.version)})
