"""Value objects of the catalogue context: currencies, statuses, units and the checks on every field.

Money and measures are `Decimal` end to end: a price is refused if it has more minor digits than its
currency, then quantized to exactly those digits, so "19.9" USD is stored as 19.90 and 1500 JPY as 1500.
Identifiers (SKU, slug, URL) are kept exactly as given; free text is stripped like everywhere else.
"""

from __future__ import annotations

import math
import numbers
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import msgspec

from bus.errors import Invalid, Validation
from contexts.checks import choice as choice  # re-exported: catalogue code checks fields from here
from contexts.checks import optional_text as optional_text
from contexts.checks import text as text
from contexts.checks import without_nul
from contexts.contracts import Tier

MAX_MONEY = Decimal(10) ** 12
MAX_MEASURE = Decimal(10) ** 9
MEASURE_DIGITS = 6
MAX_DISPLAY_ORDER = 2_147_483_647
MAX_URL = 500
MAX_SLUG = 200
MAX_ATTRIBUTE_DEPTH = 32
MAX_ATTRIBUTE_KEYS = 100  # per object, at any depth
MAX_ATTRIBUTE_BYTES = 16 * 1024  # encoded as JSON: attributes travel with every event and read
PRICED_TIERS = (Tier.SILVER, Tier.GOLD, Tier.PLATINUM)

_SKU = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def _url_pattern() -> str:
    """http(s)://, optional userinfo, a host of printable ASCII (an IDN as punycode) or a bracketed
    IPv6 address, an optional port up to 65535, then anything but whitespace and control characters.
    The OpenAPI document states this very pattern, so it reads as Python's `re` and ECMA-262 alike."""
    netloc = r"[!-\"$-.0->@-Z\\^-~]"  # printable ASCII but / ? # [ ]
    host = r"[!-\"$-.0-9;->A-Z\\^-~]"  # nor @ :
    h16 = "[0-9A-Fa-f]{1,4}"
    ipv6 = "|".join(
        [
            f"(?:{h16}:){{7}}{h16}",
            f"(?:{h16}:){{1,7}}:",
            f"(?:{h16}:){{1,6}}:{h16}",
            *(f"(?:{h16}:){{1,{6 - n}}}(?::{h16}){{1,{n + 1}}}" for n in range(1, 6)),
            f":(?:(?::{h16}){{1,7}}|:)",
        ]
    )
    port = "(?:0*(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    rest = r"[^\t-\r\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    return (
        rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:{netloc}*@)?(?:{host}+|\[(?:{ipv6})\])(?::{port})?(?:[/?#]{rest}*)?$"
    )


URL_PATTERN = _url_pattern()
_URL = re.compile(URL_PATTERN)


class Currency(StrEnum):
    USD = "USD"
    EUR = "EUR"
    GBP = "GBP"
    JPY = "JPY"
    CAD = "CAD"
    AUD = "AUD"
    CHF = "CHF"
    CNY = "CNY"
    INR = "INR"
    MXN = "MXN"
    BRL = "BRL"
    KRW = "KRW"
    SGD = "SGD"
    HKD = "HKD"
    NOK = "NOK"
    SEK = "SEK"
    DKK = "DKK"
    NZD = "NZD"
    ZAR = "ZAR"
    TWD = "TWD"

    @property
    def minor_digits(self) -> int:
        return 0 if self in (Currency.JPY, Currency.KRW) else 2


class Visibility(StrEnum):
    PUBLIC = "Public"
    UNLISTED = "Unlisted"
    TIER_RESTRICTED = "Tier_Restricted"


class ProductStatus(StrEnum):
    DRAFT = "Draft"
    ACTIVE = "Active"
    DISCONTINUED = "Discontinued"
    ARCHIVED = "Archived"


class WeightUnit(StrEnum):
    KG = "kg"
    LB = "lb"
    G = "g"
    OZ = "oz"


class DimensionUnit(StrEnum):
    CM = "cm"
    IN = "in"


def sku(field: str, value: str | None) -> str:
    """3..50 ASCII letters and digits in groups joined by single hyphens; kept as given."""
    if not isinstance(value, str) or not 3 <= len(value) <= 50:
        raise Invalid(field, "must be 3 to 50 characters")
    if not _SKU.fullmatch(value):
        raise Invalid(field, "may hold only ASCII letters, digits and single inner hyphens")
    return value


def slug(value: str | None) -> str | None:
    """Optional; at most 200 lowercase ASCII letters and digits in groups joined by single hyphens."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_SLUG:
        raise Invalid("slug", f"must be at most {MAX_SLUG} characters")
    if not _SLUG.fullmatch(value):
        raise Invalid("slug", "may hold only lowercase ASCII letters, digits and single inner hyphens")
    return value


def seller_id(value: str | None) -> str | None:
    """Optional; a UUID, stored in its canonical lower-case hyphenated form."""
    if value is None:
        return None
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise Invalid("seller_id", "must be a UUID")
    return str(uuid.UUID(value))


def attributes(field: str, value: dict[str, Any] | None) -> dict[str, Any]:
    """A JSON object with string keys (absent = empty), at most `MAX_ATTRIBUTE_KEYS` keys per object
    and `MAX_ATTRIBUTE_BYTES` encoded. PostgreSQL jsonb holds neither U+0000 nor non-finite numbers, so
    both are refused at any depth rather than failing when saving."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(field, "must be an object")
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_ATTRIBUTE_DEPTH and isinstance(node, dict | list | tuple):
            raise Invalid(field, f"must not nest objects and arrays more than {MAX_ATTRIBUTE_DEPTH} deep")
        if isinstance(node, dict):
            if len(node) > MAX_ATTRIBUTE_KEYS:
                raise Invalid(field, f"must hold at most {MAX_ATTRIBUTE_KEYS} keys per object")
            for key, item in node.items():
                if not isinstance(key, str):
                    raise Invalid(field, "keys must be strings")
                without_nul(field, key)
                pending.append((item, depth + 1))
        elif isinstance(node, list | tuple):
            pending.extend((item, depth + 1) for item in node)
        else:
            _json_scalar(field, node)
    if len(msgspec.json.encode(value)) > MAX_ATTRIBUTE_BYTES:
        raise Invalid(field, f"must encode to at most {MAX_ATTRIBUTE_BYTES // 1024} KiB of JSON")
    return dict(value)


def _json_scalar(field: str, value: object) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        without_nul(field, value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise Invalid(field, "numbers must be finite")
    elif isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise Invalid(field, "numbers must be finite")
    else:
        raise Invalid(field, "values must be JSON")


def money(field: str, amount: Decimal, currency: Currency) -> Decimal:
    """A positive amount below 10^12 with no more minor digits than `currency` has, quantized to them."""
    number = _decimal(field, amount)
    if number <= 0 or number >= MAX_MONEY:
        raise Invalid(field, f"must be greater than 0 and less than {MAX_MONEY:f}")
    digits = currency.minor_digits
    if _fraction_digits(number) > digits:
        raise Invalid(field, f"{currency} amounts have at most {digits} decimal places")
    return number.quantize(Decimal(1).scaleb(-digits))


def measure(field: str, value: Decimal | None) -> Decimal | None:
    """Optional weight or length: at least 0, less than 10^9, at most 6 decimal places."""
    if value is None:
        return None
    number = _decimal(field, value)
    if number < 0 or number >= MAX_MEASURE:
        raise Invalid(field, f"must be at least 0 and less than {MAX_MEASURE:f}")
    if _fraction_digits(number) > MEASURE_DIGITS:
        raise Invalid(field, f"must have at most {MEASURE_DIGITS} decimal places")
    return number.copy_abs()  # -0 is stored as 0


def _decimal(field: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise Invalid(field, "must be a decimal number")
    number = Decimal(value)
    if not number.is_finite():
        raise Invalid(field, "must be a finite number")
    return number


def _fraction_digits(number: Decimal) -> int:
    # Trailing zeros carry no value: 19.990 has two decimal places, 1.5E+3 none. Counted on the digits
    # rather than with normalize(), which would round away digits beyond the context's precision.
    _, digits, exponent = number.as_tuple()
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant or not isinstance(exponent, int):
        return 0
    return max(0, -(exponent + len(digits) - len(significant)))


def url(value: str | None) -> str:
    """An absolute http or https URL with a host, at most 500 characters, without whitespace."""
    if not isinstance(value, str) or not value:
        raise Invalid("url", "is required")
    if len(value) > MAX_URL:
        raise Invalid("url", f"must be at most {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value):
        raise Invalid("url", "must not contain whitespace or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise Invalid("url", "must be a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise Invalid("url", "must start with http:// or https://")
    if not host:
        raise Invalid("url", "must name a host")
    if not _URL.fullmatch(value):
        raise Invalid(
            "url", "must name its host in ASCII (an IDN as punycode) or as a bracketed IPv6 address"
        )
    return value


def display_order(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DISPLAY_ORDER:
        raise Invalid(field, f"must be an integer from 0 to {MAX_DISPLAY_ORDER}")
    return value


def priced_tier(value: str | None, field: str = "tier") -> Tier:
    """A tier that can have its own price: Standard customers pay the base price."""
    if isinstance(value, str) and value in PRICED_TIERS:
        return Tier(value)
    raise Invalid(field, "must be one of " + ", ".join(PRICED_TIERS))


def restricted_to_tier(value: str | None) -> Tier:
    """The least tier that sees a Tier_Restricted product; Standard would restrict nothing."""
    return priced_tier(value, "restricted_to_tier")


def product_details(check: Validation, **given: Any) -> dict[str, Any]:
    """The checked value of each product detail given; every failure is collected in `check`."""
    return {name: check.check(_PRODUCT_DETAILS[name], value) for name, value in given.items()}


_PRODUCT_DETAILS: dict[str, Callable[[Any], Any]] = {
    "title": partial(text, "title", max_len=255),
    "description": partial(optional_text, "description", max_len=10_000),
    "brand": partial(optional_text, "brand", max_len=100),
    "attributes": partial(attributes, "attributes"),
    "meta_title": partial(optional_text, "meta_title", max_len=70),
    "meta_description": partial(optional_text, "meta_description", max_len=160),
    "slug": slug,
}
