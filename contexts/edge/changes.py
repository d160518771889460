"""The one way a route changes an existing aggregate: a command in, `200` with the new version out."""

from __future__ import annotations

from collections.abc import Mapping

from litestar import Response

from bus.messages import Command
from contexts.edge.bodies import Body, command_from
from contexts.edge.conditional import Versions
from contexts.edge.idempotency import Commands
from contexts.edge.responses import Accepted, accepted


async def change(
    commands: Commands,
    command_type: type[Command],
    target: Mapping[str, object],
    expected_version: Versions,
    body: Body | None = None,
    **values: object,
) -> Response[Accepted]:
    """Run `command_type` on `target` (the aggregate's id from the path and whom the caller acts as),
    at the versions `If-Match` accepts, with the body's fields and any other `values` (a sub-entity's
    id); answer with the aggregate's new version."""
    command = command_from(command_type, body, expected_version=expected_version, **target, **values)
    return accepted(await commands.run(command))
