"""What the request fields of the API accept, stated as JSON Schema for the OpenAPI document.

The domain checks every rule and names the failing field (contexts/checks.py, */values.py); the
schemas here say the same so a client, or a fuzzer, is never told a value is fine that the server
refuses. Each is a msgspec `Meta` for `Annotated[str, ...]` (or float, Decimal) that only documents
(`extra_json_schema`): decoding stays with the domain checks.
Where a rule cannot be one JSON Schema exactly, the schema is the stricter side of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import Meta

# Python's `re` and ECMA-262 read these patterns alike (character classes, `{m,n}`, no look-arounds).
_NO_NUL = r"^[^\x00]*$"
_HEX = "[0-9a-fA-F]"
UUID_PATTERN = rf"^{_HEX}{{8}}-?{_HEX}{{4}}-?{_HEX}{{4}}-?{_HEX}{{4}}-?{_HEX}{{12}}$"
SKU_PATTERN = r"^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$"
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
# At most 20 characters, digits, spaces, '-', '(' and ')' after an optional '+', at least one digit.
PHONE_PATTERN = r"^\+?[0-9 ()-]{0,9}[0-9][0-9 ()-]{0,9}$"


# Exactly what str.strip() and str.isspace() take for whitespace, spelled out: `\s` differs between
# Python (U+001C..U+001F, U+0085) and ECMA-262 (U+FEFF), the dialect JSON Schema names.
WS = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def text_pattern(max_len: int) -> str:
    """1..max_len characters once surrounding whitespace is stripped, no U+0000 (checks.text)."""
    inner = f"[^{WS}\\x00]" if max_len == 1 else f"[^{WS}\\x00](?:[^\\x00]{{0,{max_len - 2}}}[^{WS}\\x00])?"
    return f"^[{WS}]*{inner}[{WS}]*$"


def text(max_len: int, **extra: Any) -> Meta:
    """A required text: not blank, at most `max_len` characters once stripped."""
    return Meta(
        extra_json_schema={"pattern": text_pattern(max_len), **extra},
        description=f"1 to {max_len} characters, surrounding whitespace stripped",
    )


def optional_text(max_len: int, **extra: Any) -> Meta:
    """An optional text: blank counts as absent, else at most `max_len` characters once stripped."""
    pattern = f"^[{WS}]*(?:[^{WS}\\x00](?:[^\\x00]{{0,{max_len - 2}}}[^{WS}\\x00])?)?[{WS}]*$"
    return Meta(
        extra_json_schema={"pattern": pattern, **extra},
        description=f"at most {max_len} characters, surrounding whitespace stripped; blank = none",
    )


def one_of(kind: Iterable[str], **extra: Any) -> Meta:
    allowed = [str(v) for v in kind]
    return Meta(extra_json_schema={"enum": allowed, **extra})


def pattern(regex: str, min_length: int | None = None, max_length: int | None = None, **extra: Any) -> Meta:
    schema: dict[str, Any] = {"pattern": regex, **extra}
    if min_length is not None:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    return Meta(extra_json_schema=schema)


def _email_pattern() -> str:
    # SPEC §4, identity/values.email: one '@'; no whitespace, no '..'; neither part starts or ends with
    # '.'; none of ; , ( ) " : < > \ [ ]; the domain has a dot and no label starts or ends with '-', or
    # is an IPv4 literal [192.0.2.1] or a full IPv6 one [IPv6:2001:db8:0:0:0:0:0:1] (stricter: the
    # server takes compressed IPv6 forms too).
    char = f'[^{WS}\\x00@;,()":<>\\\\\\[\\].]'
    edge = f'[^{WS}\\x00@;,()":<>\\\\\\[\\].-]'
    local = f"{char}+(?:\\.{char}+)*"
    label = f"{edge}(?:{char}*{edge})?"
    octet = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    ipv4 = rf"{octet}(?:\.{octet}){{3}}"
    ipv6 = rf"[Ii][Pp][Vv]6:{_HEX}{{1,4}}(?::{_HEX}{{1,4}}){{7}}"
    return rf"^{local}@(?:{label}(?:\.{label})+|\[(?:{ipv4}|{ipv6})\])$"


EMAIL_PATTERN = _email_pattern()


def past_date_pattern(today: date) -> str:
    """ISO dates from 1900-01-01 to the end of last year: never in the future, whatever the day. A
    February has 28 days here (stricter than the calendar); the server takes any real date up to today."""
    years = "|".join(["19[0-9]{2}", *(str(y) for y in range(2000, today.year))])
    days = (
        "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
        "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
        "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    )
    return f"^(?:{years})-{days}$"


def money(description: str) -> Meta:
    """A price: a JSON number or a decimal string, > 0 and < 10^12, at most two decimal places."""
    return Meta(
        extra_json_schema={
            "anyOf": [
                {
                    "type": "string",
                    "pattern": r"^(?:[1-9][0-9]{0,11}(?:\.[0-9]{1,2})?|0\.(?:0[1-9]|[1-9][0-9]?))$",
                },
                {"type": "integer", "minimum": 1, "maximum": 999_999_999_999},
            ],
            "description": description,
        }
    )


def measure() -> Meta:
    """A weight or length: at least 0, below 10^9, at most six decimal places."""
    return Meta(
        extra_json_schema={
            "anyOf": [
                {"type": "string", "pattern": r"^(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,6})?$"},
                {"type": "integer", "minimum": 0, "maximum": 999_999_999},
            ],
            "description": "at least 0 and below 10^9, at most 6 decimal places",
        }
    )


_JSON_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def whole_number(raw: msgspec.Raw) -> object:
    """An integer field as JSON Schema reads one: any JSON number of integral value (3, 3.0, 3e0) → int.
    Anything else is handed on as its JSON text, for the domain check to refuse and name the field."""
    text = bytes(raw).strip()
    if _JSON_NUMBER.fullmatch(text):
        number = Decimal(text.decode())
        if number.adjusted() <= 18 and number == number.to_integral_value():  # no 10^(10^9) built
            return int(number)
    return text.decode()


def coordinate(limit: int) -> Meta:
    return Meta(extra_json_schema={"minimum": -limit, "maximum": limit})


NO_NUL = _NO_NUL
