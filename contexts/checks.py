"""Field checks shared by every context; each raises `Invalid(field, message)` naming its API field.

Text is stripped of surrounding whitespace before it is checked and stored, so a blank-only value
counts as empty. No stored text may hold U+0000: PostgreSQL text and jsonb cannot.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from bus.errors import Invalid

E = TypeVar("E", bound=StrEnum)


def choice(kind: type[E], field: str, value: str | None) -> E:
    """The member of `kind` whose value is `value`; anything else is invalid."""
    allowed = [member.value for member in kind]
    if isinstance(value, str) and value in allowed:
        return kind(value)
    raise Invalid(field, "must be one of " + ", ".join(allowed))


def text(field: str, value: str | None, max_len: int) -> str:
    """A required text of 1..max_len characters once surrounding whitespace is stripped."""
    if value is None:
        raise Invalid(field, "is required")
    if not isinstance(value, str):
        raise Invalid(field, "must be a string")
    stripped = value.strip()
    if not stripped:
        raise Invalid(field, "must not be blank")
    if len(stripped) > max_len:
        raise Invalid(field, f"must be at most {max_len} characters")
    return without_nul(field, stripped)


def optional_text(field: str, value: str | None, max_len: int) -> str | None:
    """An optional text of at most max_len characters; blank counts as absent."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return text(field, value, max_len)


def without_nul(field: str, value: str) -> str:
    # PostgreSQL text and jsonb cannot hold U+0000: refuse it here rather than fail when saving.
    if "\x00" in value:
        raise Invalid(field, "must not contain NUL characters")
    return value
