"""Value objects of the identity context: statuses, tiers, labels and the checks on every field.

Text fields (names, address parts, reason, phone) are stripped of surrounding whitespace before they
are checked and stored, so a blank-only value counts as empty. Identifiers and e-mail addresses are
kept exactly as given: `external_id` belongs to another system, and an e-mail may hold no whitespace.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import date
from enum import StrEnum

from bus.errors import Invalid
from contexts.checks import choice as choice  # re-exported: identity code checks fields from here
from contexts.checks import optional_text as optional_text
from contexts.checks import text as text
from contexts.checks import without_nul
from contexts.contracts import Tier as Tier  # re-exported: identity code names tiers from here

# What a personal text field reads once the customer's personal data is erased (optional ones read null).
ERASED = "[erased]"
MAX_EMAIL = 254
MAX_PHONE = 20
_EMAIL_FORBIDDEN = frozenset(';,()":<>\\[]')
_DIGITS = frozenset("0123456789")
_PHONE_CHARS = _DIGITS | frozenset(" -()")


class Status(StrEnum):
    ACTIVE = "Active"
    SUSPENDED = "Suspended"
    CLOSED = "Closed"


class AddressLabel(StrEnum):
    HOME = "Home"
    WORK = "Work"
    OTHER = "Other"


def external_id(value: str | None) -> str:
    if value is None or not value.strip():
        raise Invalid("external_id", "must not be blank")
    if len(value) > 255:
        raise Invalid("external_id", "must be at most 255 characters")
    return without_nul("external_id", value)


def email(value: str | None) -> str:
    """The address exactly as given, once it passes every rule of SPEC §4."""
    if value is None:
        raise Invalid("email", "is required")
    if len(value) > MAX_EMAIL:
        raise Invalid("email", f"must be at most {MAX_EMAIL} characters")
    if any(ch.isspace() for ch in value):
        raise Invalid("email", "must not contain whitespace")
    without_nul("email", value)
    if value.count("@") != 1:
        raise Invalid("email", "must contain exactly one '@'")
    local, domain = value.split("@")
    if not local or not domain:
        raise Invalid("email", "needs a local part and a domain")
    if ".." in value:
        raise Invalid("email", "must not contain '..'")
    if local[0] == "." or local[-1] == "." or domain[0] == "." or domain[-1] == ".":
        raise Invalid("email", "local part and domain must not start or end with '.'")
    if _EMAIL_FORBIDDEN & set(local):
        raise Invalid("email", 'must not contain any of ; , ( ) " : < > \\ [ ]')
    if domain[0] == "[" and domain[-1] == "]":
        if not _is_ip_literal(domain[1:-1]):
            raise Invalid("email", "domain literal must be an IPv4 address or 'IPv6:' and an IPv6 address")
        return value
    if _EMAIL_FORBIDDEN & set(domain):
        raise Invalid("email", 'must not contain any of ; , ( ) " : < > \\ [ ]')
    if "." not in domain:
        raise Invalid("email", "domain must contain a dot")
    if any(label.startswith("-") or label.endswith("-") for label in domain.split(".")):
        raise Invalid("email", "domain labels must not start or end with '-'")
    return value


def _is_ip_literal(content: str) -> bool:
    # RFC 5321 address literals: `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
    try:
        if content[:5].lower() == "ipv6:":
            ipaddress.IPv6Address(content[5:])
        else:
            ipaddress.IPv4Address(content)
    except ValueError:
        return False
    return True


def email_key(value: str) -> str:
    """The case-insensitive form under which an e-mail address must be unique."""
    return value.lower()


def phone(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    if len(stripped) > MAX_PHONE:
        raise Invalid("phone", f"must be at most {MAX_PHONE} characters")
    body = stripped.removeprefix("+")
    if not set(body) <= _PHONE_CHARS:
        raise Invalid("phone", "may hold only digits, spaces, '-', '(', ')' and one leading '+'")
    if not _DIGITS & set(body):
        raise Invalid("phone", "must contain at least one digit")
    return stripped


def date_of_birth(value: date | None, today: date) -> date | None:
    if value is not None and value > today:
        raise Invalid("date_of_birth", "must not be in the future")
    return value


def coordinate(field: str, value: float | None, limit: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not math.isfinite(value) or not -limit <= value <= limit:
        raise Invalid(field, f"must be between -{limit} and {limit}")
    return float(value)


def geo_pair(geo_lat: float | None, geo_lng: float | None) -> None:
    """Both coordinates or neither; the missing one is named."""
    if (geo_lat is None) != (geo_lng is None):
        raise Invalid("geo_lng" if geo_lng is None else "geo_lat", "geo_lat and geo_lng go together")
