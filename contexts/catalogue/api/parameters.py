"""Path and query parameters of the catalogue routes, who may use them, and what a path addresses."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter

from bus.errors import Invalid
from contexts.catalogue import viewer
from contexts.catalogue.values import ProductStatus
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
Cursor = Annotated[
    str | None,
    QueryParameter(
        description="`next_cursor` of the previous page; any other value is 422",
        schema_extra={"format": "product-cursor"},
    ),
]


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
    if principal.role is Role.SELLER and principal.subject:
        subject = principal.subject
        return viewer.seller(str(uuid.UUID(subject)) if re.fullmatch(wire.UUID_PATTERN, subject) else subject)
    if principal.role is Role.CUSTOMER and principal.subject:
        return viewer.customer(principal.subject)
    return viewer.ANONYMOUS


Viewer = NamedDependency[viewer.Viewer]
# A catalogue controller's dependencies: the context's own, and the viewer its reads are scoped to.
DEPENDENCIES = command_dependencies("catalogue") | {"viewer": Provide(viewer_of, sync_to_thread=False)}
