"""HTTP routes of the counters context, for tests that drive it through the app."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Response, post, put
from litestar.params import FromPath, JSONBody

from contexts.edge.bodies import Body
from contexts.edge.dependencies import CommandRunner, ExpectedVersion, command_dependencies
from contexts.edge.responses import accepted, created
from tests.messaging.counters.model import Increment, OpenCounter


class NewCounter(Body):
    name: str


class Step(Body):
    by: int = 1


@post("/test-only/counters", dependencies=command_dependencies("counters"))
async def open_counter(commands: CommandRunner, data: JSONBody[NewCounter]) -> Response[Any]:
    outcome = await commands.run(OpenCounter(counter_id=uuid.uuid4().hex, name=data.name))
    return created({"counter_id": outcome.created_id, "version": outcome.version}, "/", outcome.version)


@put("/test-only/counters/{counter_id:str}/increment", dependencies=command_dependencies("counters"))
async def increment(
    commands: CommandRunner,
    counter_id: FromPath[str],
    expected_version: ExpectedVersion,
    data: JSONBody[Step],
) -> Response[Any]:
    command = Increment(counter_id=counter_id, by=data.by, expected_version=expected_version)
    return accepted(await commands.run(command))


ROUTES = [open_counter, increment]
