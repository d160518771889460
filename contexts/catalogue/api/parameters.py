"""Path and query parameters of the catalogue routes, who may use them, and what a path addresses."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Annotated, Any

from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Example
from litestar.params import PathParameter, QueryParameter

from bus.errors import Invalid
from contexts.catalogue import viewer
from contexts.catalogue.search_terms import MAX_QUERY, Facet, Sort
from contexts.catalogue.values import Currency, ProductStatus
from contexts.edge import wire
from contexts.edge.access import Role, allow, principal_of
from contexts.edge.dependencies import command_dependencies
from contexts.edge.idempotency import Commands
from contexts.edge.paths import path_id

parse_product_id = path_id("product")
parse_category_id = path_id("category")
parse_seller_id = path_id("seller")
# Ids in paths are UUIDs: any other value names nothing (404).
ProductId = Annotated[str, PathParameter(description="The product's id", format="uuid")]
VariantId = Annotated[str, PathParameter(description="The variant's id", format="uuid")]
ImageId = Annotated[str, PathParameter(description="The image's id", format="uuid")]
CategoryId = Annotated[str, PathParameter(description="The category's id", format="uuid")]
UuidFilter = Annotated[
    str | None, QueryParameter(description="a UUID (else 422)", schema_extra={"pattern": wire.UUID_PATTERN})
]
StatusFilter = Annotated[
    str | None, QueryParameter(description="a product status", schema_extra={"enum": list(ProductStatus)})
]
Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Items per page (1-100)")]
SELLERS = allow(Role.SELLER)  # a seller changes only the products it listed; admins any
ADMINS = allow()  # the category tree is the shop's own: admins only


SearchCursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page with the same sort; any other value is 422",
        schema_extra={"format": "product-search-cursor"},
        examples=[
            Example(value="eyJzIjoibmV3ZXN0IiwiayI6IjIwMjYtMTEtMjdUMTE6NTE6NDMrMDA6MDAiLCJpZCI6IjZmMWMifQ")
        ],
    ),
]
# A seller's list is newest first only: its cursors are those of the search's `newest` sort.
NewestCursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page; any other value is 422",
        schema_extra={"format": "product-newest-cursor"},
        examples=[
            Example(value="eyJzIjoibmV3ZXN0IiwiayI6IjIwMjYtMTEtMjdUMTE6NTE6NDMrMDA6MDAiLCJpZCI6IjZmMWMifQ")
        ],
    ),
]

HistoryCursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page of this product's price history; any other value is 422",
        schema_extra={"format": "price-history-cursor"},
        examples=[Example(value="eyJ2IjoxMn0")],
    ),
]


def _examples(*values: object) -> list[Example]:
    return [Example(summary=str(value), value=value) for value in values]


SearchText = Annotated[
    str | None,
    QueryParameter(
        description=(
            "Full-text search over title, brand, description, SKU and variant SKUs, in web-search syntax:"
            ' `"exact phrase"`, `-word` to exclude, `or` between alternatives. Hits come by relevance'
            " unless `sort` says otherwise. English stemming: `shirts` finds `shirt`."
        ),
        schema_extra={"pattern": wire.text_pattern(MAX_QUERY)},
        examples=_examples("organic cotton", '"classic tee" -black', "TSHIRT-CLASSIC-M"),
    ),
]
SubtreeCategory = Annotated[
    str | None,
    QueryParameter(
        description="a UUID (else 422): cards filed in this category (and below it, see include_subcategories)",
        schema_extra={"pattern": wire.UUID_PATTERN},
        examples=_examples("7e6d5c4b-3a29-4817-9605-f4e3d2c1b0a9"),
    ),
]
IncludeSubcategories = Annotated[
    bool,
    QueryParameter(
        description="With `category_id`: true (default) takes its whole subtree, false only the category itself",
        examples=_examples(True, False),
    ),
]
Brands = Annotated[
    list[str] | None,
    QueryParameter(
        description="Repeatable; cards of any of these brands, matched exactly (at most 50)",
        max_items=50,
        schema_extra={"items": {"type": "string", "pattern": wire.text_pattern(100)}},
        examples=_examples(["Northwind"], ["Northwind", "Acme"]),
    ),
]
CurrencyFilter = Annotated[
    str | None,
    QueryParameter(
        description=(
            "Cards with an active variant priced in this currency; needed by price_min, price_max and the"
            " price facet (else 422)"
        ),
        schema_extra={"enum": list(Currency)},
        examples=_examples("USD", "EUR"),
    ),
]


def _price(bound: str) -> object:
    return QueryParameter(
        description=(
            f"With `currency` (else 422): an active variant in that currency is priced {bound} (inclusive);"
            " a decimal with at most the currency's decimals (2; JPY and KRW: 0)"
        ),
        schema_extra={"pattern": r"^[0-9]{1,12}(\.[0-9]{1,2})?$"},
        examples=_examples("10", "24.99"),
    )


PriceMin = Annotated[str | None, _price("at least this")]
PriceMax = Annotated[str | None, _price("at most this")]
SortOrder = Annotated[
    str | None,
    QueryParameter(
        description=(
            "newest (default without q), price_asc and price_desc (by the card's lowest price, cards without"
            " one last), title, relevance (default with q; needs q, else 422)"
        ),
        schema_extra={"enum": list(Sort)},
        examples=_examples("newest", "price_asc"),
    ),
]
FacetList = Annotated[
    str | None,
    QueryParameter(
        description=(
            "Comma-separated: brand, category, price. Counts over the whole result set (not the page): per"
            " brand and per category (the 100 largest), and per price band in `currency` (bands from 0, 10,"
            " 25, 50, 100, 250, 500 and 1000; a card counts in each band one of its active variants is in)"
        ),
        schema_extra={"pattern": "^(" + "|".join(Facet) + ")(,(" + "|".join(Facet) + "))*$"},
        examples=_examples("brand,category", "brand"),
    ),
]


def attribute_filters(query: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The `attr.<key>=<value>` pairs of a query string, as (key, value)."""
    return [(name.removeprefix("attr."), value) for name, value in query if name.startswith("attr.")]


def product_target(commands: Commands, product_id: str) -> dict[str, str | None]:
    """The product a command addresses: its id from the path; a seller's commands carry its id, so
    that only its own products change."""
    return {
        "product_id": parse_product_id(product_id),
        "acting_seller_id": principal_of(commands.request).acting_as(Role.SELLER),
    }


def category_target(category_id: str) -> dict[str, str]:
    """The category a command addresses: its id from the path."""
    return {"category_id": parse_category_id(category_id)}


def uuid_filter(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(wire.UUID_PATTERN, value):
        raise Invalid(field, "must be a UUID")
    return str(uuid.UUID(value))


def status_filter(value: str | None) -> str | None:
    if value is None or value in ProductStatus.__members__.values():
        return value
    raise Invalid("status", "must be one of " + ", ".join(ProductStatus))


def viewer_of(request: ASGIConnection[Any, Any, Any, Any]) -> viewer.Viewer:
    """The caller as the catalogue's reads see it; a token without a known role, or one not accepted,
    reads as anonymous."""
    principal = principal_of(request)
    if principal.role is Role.ADMIN:
        return viewer.ADMIN
    if (seller := principal.acting_as(Role.SELLER)) is not None:
        return viewer.seller(seller)
    if (customer := principal.acting_as(Role.CUSTOMER)) is not None:
        return viewer.customer(customer)
    return viewer.ANONYMOUS


Viewer = NamedDependency[viewer.Viewer]
# A catalogue controller's dependencies: the context's own, and the viewer its reads are scoped to.
DEPENDENCIES = command_dependencies("catalogue") | {"viewer": Provide(viewer_of, sync_to_thread=False)}
