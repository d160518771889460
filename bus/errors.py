"""Errors the messaging core raises to its callers; the API maps each to one HTTP status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class NotFound(Exception):
    """The addressed aggregate or sub-entity does not exist (404)."""


class ConcurrencyError(Exception):
    """Another command saved the aggregate first; the bus re-runs the command."""


class Conflict(Exception):
    """The command is valid but clashes with the current state (409)."""


class VersionMismatch(Exception):
    """`If-Match` named a version the aggregate no longer has (412)."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected version {expected}, current version is {actual}")
        self.expected = expected
        self.actual = actual


class IdempotencyKeyReused(Exception):
    """The `Idempotency-Key` was first used with a different request (422)."""


class IdempotencyKeyInFlight(Exception):
    """A request with this `Idempotency-Key` is still running (409)."""


class Overloaded(Exception):
    """Too many commands are queued; the caller should retry later (503 + Retry-After)."""

    retry_after = 1


class Invalid(Exception):
    """Values break rules that need no state to check (422); `errors` names each offending field."""

    def __init__(self, field: str, message: str, *more: Invalid) -> None:
        self.field = field
        self.message = message
        self.errors = [{"field": field, "message": message, "source": "body"}]
        for other in more:
            self.errors += other.errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in self.errors))

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
