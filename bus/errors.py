"""Errors the messaging core and the domains raise to their callers. Each base carries the HTTP
status and problem `kind` it answers with, so the edge maps any of them without a table."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")

_MSGSPEC_PATH = re.compile(r"^(.*?)(?: - at `\$\.?([^`]*)`)?$", re.DOTALL)
_NAMED_FIELD = re.compile(r"(?:required|unknown) field `([^`]+)`")


def split_msgspec_path(message: str) -> tuple[str, str]:
    """msgspec's "Expected `int`, got `str` - at `$.items[0].price`" → ("Expected …", "items[0].price");
    a missing or unknown field is named by the message itself: "… required field `sku`" → "sku"."""
    text, path = _MSGSPEC_PATH.match(message).groups()  # type: ignore[union-attr]
    if named := _NAMED_FIELD.search(text):
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return text, path or ""


class Refusal(Exception):
    """A request the service refuses: `status` and `kind` become the problem's status and type."""

    status: ClassVar[int] = 400
    kind: ClassVar[str] = "bad-request"
    retry_after: ClassVar[int | None] = None

    @property
    def problem_extensions(self) -> dict[str, object]:
        return {}

    @property
    def problem_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class MalformedBody(Refusal):
    """The body is not JSON, or not a JSON object (400)."""

    status = 400
    kind = "malformed-body"


class NotFound(Refusal):
    """The addressed aggregate or sub-entity does not exist (404)."""

    status = 404
    kind = "not-found"

    def __init__(self, what: str, which: str | None = None) -> None:
        self.what = what
        self.which = which
        super().__init__(f"{what} {which} does not exist" if which else f"no {what} matches")


class ConcurrencyError(Exception):
    """Another command saved the aggregate first; the bus re-runs the command."""


class Forbidden(Refusal):
    """The caller is known but may not do this: its role does not allow it, or the aggregate is not its
    own (403)."""

    status = 403
    kind = "forbidden"


class Conflict(Refusal):
    """The command is valid but clashes with the current state (409)."""

    status = 409
    kind = "conflict"


class VersionMismatch(Refusal):
    """`If-Match` named a version the aggregate no longer has (412)."""

    status = 412
    kind = "version-mismatch"

    def __init__(self, expected: int | tuple[int, ...], actual: int) -> None:
        if isinstance(expected, int):
            wanted = f"version {expected}"
        elif expected:
            wanted = "one of versions " + ", ".join(map(str, expected))
        else:
            wanted = "a version If-Match does not name"
        super().__init__(f"expected {wanted}, current version is {actual}")
        self.expected = expected
        self.actual = actual


def ensure_version(expected: int | tuple[int, ...] | None, actual: int) -> None:
    """`If-Match` as a command carries it: None runs unconditionally, an int must be the aggregate's
    version, a tuple must hold it (an empty tuple holds none: every strong ETag named no version)."""
    if expected is None:
        return
    if actual != expected if isinstance(expected, int) else actual not in expected:
        raise VersionMismatch(expected, actual)


class IdempotencyKeyReused(Refusal):
    """The `Idempotency-Key` was first used with a different request (422)."""

    status = 422
    kind = "idempotency-key-reused"


class IdempotencyKeyInFlight(Refusal):
    """A request with this `Idempotency-Key` is still running (409)."""

    status = 409
    kind = "idempotency-key-in-flight"


class Overloaded(Refusal):
    """Too many commands are queued; the caller should retry later (503 + Retry-After)."""

    status = 503
    kind = "overloaded"
    retry_after = 1


class Unavailable(Exception):
    """A backing service (PostgreSQL, Redis) is down or did not answer in time: not a refusal of the
    request but a failure of the service, over once it is back (503 + Retry-After)."""

    status: ClassVar[int] = 503
    kind: ClassVar[str] = "unavailable"
    retry_after: ClassVar[int] = 5

    def __init__(self, service: str, detail: str | None = None) -> None:
        self.service = service
        super().__init__(detail or f"{service} is unreachable.")  # when to retry: `Retry-After`


class OutcomeUnknown(Unavailable):
    """The connection broke while the command committed: it may or may not have taken effect (503)."""

    kind = "outcome-unknown"

    def __init__(self, service: str) -> None:
        super().__init__(
            service,
            f"The connection to {service} broke while the command was committing, so whether it took effect"
            f" is unknown. Retry after {self.retry_after} seconds with the same Idempotency-Key: if it took"
            " effect, the retry answers as the first request would have; if not, the command runs once.",
        )


class Invalid(Refusal):
    """Values break rules that need no state to check (422); `errors` names each offending field."""

    status = 422
    kind = "validation"

    def __init__(self, field: str, message: str, *more: Invalid) -> None:
        self.field = field
        self.message = message
        self.errors = [{"field": field, "message": message, "source": "body"}]
        for other in more:
            self.errors += other.errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in self.errors))

    @classmethod
    def from_msgspec(cls, exc: Exception, default_field: str = "body") -> Invalid:
        message, field = split_msgspec_path(str(exc))
        return cls(field or default_field, message)

    @property
    def problem_extensions(self) -> dict[str, object]:
        return {"errors": self.errors}


class Validation:
    """Runs several checks and raises one `Invalid` naming every field that failed."""

    def __init__(self) -> None:
        self.failures: list[Invalid] = []

    def check(self, check: Callable[..., T], *args: Any) -> T:
        try:
            return check(*args)
        except Invalid as failure:
            self.failures.append(failure)
            return None  # type: ignore[return-value]  # never used: done() raises

    def done(self) -> None:
        if self.failures:
            first, *rest = self.failures
            raise Invalid(first.field, first.message, *rest)
