"""Errors the messaging core raises to its callers; the API maps each to one HTTP status."""


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
    """A value breaks a rule that needs no state to check (422); `field` names the offender."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.problem_extensions = {"errors": [{"field": field, "message": message, "source": "body"}]}
