"""RFC 9457 problem details: the shape of every error, and the responses routes document."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.openapi.datastructures import ResponseSpec


class FieldError(msgspec.Struct, frozen=True):
    field: Annotated[str, msgspec.Meta(examples=["email"])]
    message: Annotated[str, msgspec.Meta(examples=["must contain exactly one '@'"])]
    source: Annotated[str, msgspec.Meta(examples=["body"])] = "body"


_AWAY = msgspec.Meta(examples=["PostgreSQL"], description="With 503: the backing service that is away.")


class ProblemDetails(msgspec.Struct, frozen=True, omit_defaults=True):
    """RFC 9457 problem details: every error of the API has this shape."""

    type: Annotated[str, msgspec.Meta(examples=["urn:shopstream:problem:validation"])]
    title: Annotated[str, msgspec.Meta(examples=["Unprocessable Entity"])]
    status: Annotated[int, msgspec.Meta(examples=[422])]
    detail: Annotated[str, msgspec.Meta(examples=["email: must contain exactly one '@'"])]
    errors: list[FieldError] | None = None
    service: Annotated[str, _AWAY] | None = None


def problem(description: str) -> ResponseSpec:
    """A documented error response: problem details, for the reason `description` gives."""
    return ResponseSpec(
        data_container=ProblemDetails,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


# The `responses` of every route.
PROBLEMS = {
    400: problem("The body is not JSON, or not a JSON object."),
    404: problem("The resource (an aggregate or one of its parts) in the path does not exist."),
    409: problem(
        "Valid, but in conflict with the current state (uniqueness, transitions, state-dependent limits)."
    ),
    412: problem("`If-Match` named a version the aggregate no longer has."),
    413: problem("The body exceeds 1 MiB."),
    422: problem("Invalid fields; `errors` names each one."),
    503: problem(
        "Overloaded, or a backing service is down (`unavailable`, `service` names it); retry after"
        " `Retry-After` seconds. `outcome-unknown`: it went away while the command committed, which may"
        " have taken effect; a retry with the same `Idempotency-Key` answers as it would have, or runs it."
    ),
}
