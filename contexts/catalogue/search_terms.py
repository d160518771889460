"""What a product search asks for (SPEC §9): the raw parameters of `GET /products` validated into a
`Search` (422 naming the parameter), and the opaque cursors that page it by keyset. `search` runs it."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

import msgspec

from bus.errors import Invalid
from contexts.catalogue.values import MAX_MONEY, Currency

MAX_QUERY = 200
# A JSON number (with an exponent NUMERIC can hold) or boolean.
_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")
MAX_FACET_VALUES = 100
BANDS = (
    Decimal(0),
    Decimal(10),
    Decimal(25),
    Decimal(50),
    Decimal(100),
    Decimal(250),
    Decimal(500),
    Decimal(1000),
)


class Sort(StrEnum):
    NEWEST = "newest"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    TITLE = "title"
    RELEVANCE = "relevance"


class Facet(StrEnum):
    BRAND = "brand"
    CATEGORY = "category"
    PRICE = "price"


class Search(msgspec.Struct, frozen=True, kw_only=True):
    """Validated filters, sort and page of a search; every filter given must hold."""

    q: str | None = None
    category_id: str | None = None
    include_subcategories: bool = True
    seller_id: str | None = None
    status: str | None = None
    brands: tuple[str, ...] = ()
    currency: str | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (key, alternative values)
    sort: Sort = Sort.NEWEST
    facets: tuple[Facet, ...] = ()
    limit: int = 20
    after: tuple[object, str] | None = None  # the last card's sort key and product id


# --- validation ------------------------------------------------------------------------------------


def _text(field: str, value: str, max_length: int) -> str:
    """The text stripped: 1 to `max_length` characters, no U+0000."""
    if "\x00" in value:
        raise Invalid(field, "must not contain U+0000")
    if not 1 <= len(value.strip()) <= max_length:
        raise Invalid(field, f"must be 1 to {max_length} characters, not blank")
    return value.strip()


def _money(field: str, raw: str | None, currency: Currency | None) -> Decimal | None:
    if raw is None:
        return None
    if currency is None:
        raise Invalid("currency", f"is needed with {field}")
    digits = currency.minor_digits
    if not _AMOUNT.fullmatch(raw) or (number := Decimal(raw)) != round(number, digits):
        raise Invalid(field, f"must be an amount below {MAX_MONEY:f} with at most {digits} decimals")
    return number


def _attributes(raw: Sequence[tuple[str, str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    grouped: dict[str, list[str]] = {}
    for key, value in raw:
        field = f"attr.{key}"
        if not key or "\x00" in key or len(key) > 100:
            raise Invalid(field, "needs a key of 1 to 100 characters")
        grouped.setdefault(key, []).append(_text(field, value, 500))
    if len(grouped) > 20 or sum(map(len, grouped.values())) > 50:
        raise Invalid("attr", "at most 20 keys and 50 values")
    return tuple((key, tuple(values)) for key, values in grouped.items())


def filters(
    *,
    q: str | None = None,
    category_id: str | None = None,
    include_subcategories: bool = True,
    seller_id: str | None = None,
    status: str | None = None,
    brands: Sequence[str] = (),
    currency: str | None = None,
    price_min: str | None = None,
    price_max: str | None = None,
    attributes: Sequence[tuple[str, str]] = (),
    sort: str | None = None,
    facets: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> Search:
    """The raw parameters of a search, validated; ids and status are the caller's to check."""
    q = None if q is None else _text("q", q, MAX_QUERY)
    if sort is None:
        chosen = Sort.RELEVANCE if q is not None else Sort.NEWEST
    elif sort in Sort.__members__.values():
        chosen = Sort(sort)
    else:
        raise Invalid("sort", "must be one of " + ", ".join(Sort))
    if chosen is Sort.RELEVANCE and q is None:
        raise Invalid("sort", "relevance needs q")
    if currency is not None and currency not in Currency.__members__.values():
        raise Invalid("currency", "must be one of " + ", ".join(Currency))
    money = None if currency is None else Currency(currency)
    low, high = _money("price_min", price_min, money), _money("price_max", price_max, money)
    if low is not None and high is not None and low > high:
        raise Invalid("price_max", "must not be below price_min")
    asked = [] if facets is None else facets.split(",")
    if any(name not in Facet.__members__.values() for name in asked):
        raise Invalid("facets", "must list some of " + ", ".join(Facet))
    if Facet.PRICE in asked and money is None:
        raise Invalid("currency", "is needed with the price facet")
    if len(brands) > 50:
        raise Invalid("brand", "at most 50 brands")
    return Search(
        q=q,
        category_id=category_id,
        include_subcategories=include_subcategories,
        seller_id=seller_id,
        status=status,
        brands=tuple(_text("brand", brand, 100) for brand in brands),
        currency=currency,
        price_min=low,
        price_max=high,
        attributes=_attributes(attributes),
        sort=chosen,
        facets=tuple(dict.fromkeys(Facet(name) for name in asked)),
        limit=min(max(limit, 1), 100),
        after=None if cursor is None else _decode_cursor(cursor, chosen),
    )


# --- cursors ---------------------------------------------------------------------------------------


class _Cursor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The sort, and the sort key and id of the last card of a page (the key as text)."""

    s: str
    k: str
    id: str


_cursor_decoder = msgspec.json.Decoder(_Cursor)
_RANKS = (Decimal("1e-37"), Decimal("1e38"))  # within what a `real` holds


def encode_cursor(sort: Sort, key: object, product_id: str) -> str:
    if isinstance(key, datetime):
        text = key.isoformat()
    elif isinstance(key, Decimal) and key.is_finite():
        text = f"{key:f}"
    else:
        text = str(key)
    raw = msgspec.json.encode(_Cursor(s=sort, k=text, id=product_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _typed_key(sort: Sort, key: str) -> object:
    """The cursor's key as the value its sort compares, or None if it is not one this service issues."""
    try:
        if sort is Sort.NEWEST:
            moment = datetime.fromisoformat(key)
            return moment if moment.tzinfo is not None else None
        if sort in (Sort.PRICE_ASC, Sort.PRICE_DESC):
            price = Decimal(key)
            return price if price.is_infinite() or (price.is_finite() and abs(price) < MAX_MONEY) else None
        if sort is Sort.RELEVANCE:  # a `real` as PostgreSQL writes it, read back exactly by it
            rank = Decimal(key)
            return key if rank.is_finite() and (rank == 0 or _RANKS[0] < rank < _RANKS[1]) else None
    except (ValueError, InvalidOperation):
        return None
    return key if "\x00" not in key else None


def _decode_cursor(cursor: str, sort: Sort) -> tuple[object, str]:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        after = _cursor_decoder.decode(raw)
    except (ValueError, binascii.Error, msgspec.MsgspecError):
        raise Invalid("cursor", "is not a cursor this service issued") from None
    if after.s != sort:
        raise Invalid("cursor", f"was issued for another sort than {sort}")
    key = _typed_key(sort, after.k)
    if key is None or "\x00" in after.id:
        raise Invalid("cursor", "is not a cursor this service issued")
    return key, after.id
