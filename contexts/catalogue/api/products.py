"""Product routes: listing, details and lifecycle; product cards, detail and price history, by seller too."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.params import JSONBody, PathParameter

from bus.errors import Forbidden
from contexts.catalogue import queries
from contexts.catalogue.api import NewProduct, ProductChange, ProductCreated
from contexts.catalogue.api.parameters import (
    DEPENDENCIES,
    SELLERS,
    Cursor,
    Limit,
    ProductId,
    StatusFilter,
    UuidFilter,
    Viewer,
    parse_product_id,
    parse_seller_id,
    product_target,
    status_filter,
    uuid_filter,
)
from contexts.catalogue.details import UpdateProductDetails
from contexts.catalogue.lifecycle import ActivateProduct, ArchiveProduct, DiscontinueProduct
from contexts.catalogue.listing import CreateProduct
from contexts.edge.access import BEARER, GUARDED, Role, principal_of
from contexts.edge.bodies import command_from
from contexts.edge.changes import change
from contexts.edge.dependencies import CommandRunner, ExpectedVersion, ReadPool
from contexts.edge.problems import PROBLEMS
from contexts.edge.responses import Accepted, created, found


class ProductController(Controller):
    path = "/products"
    tags = ["catalogue"]
    dependencies = DEPENDENCIES

    @post(
        "/",
        operation_id="createProduct",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="List a new product",
    )
    async def create(
        self, commands: CommandRunner, request: Request[Any, Any, Any], data: JSONBody[NewProduct]
    ) -> Response[ProductCreated]:  # type: ignore[valid-type]
        """A Draft product. `sku` is unique (409); `category_id` must name an existing (422), active (409) category.
        A seller lists as itself: `seller_id` defaults to its token's `sub`, and any other is refused (403)."""
        if (seller := principal_of(request).acting_as(Role.SELLER)) is not None:
            if data.seller_id not in (None, seller):
                raise Forbidden("a seller lists products only under its own seller_id")
            data = msgspec.structs.replace(data, seller_id=seller)
        outcome = await commands.run(command_from(CreateProduct, data, product_id=str(uuid.uuid4())))
        body = ProductCreated(product_id=outcome.aggregate_id, version=outcome.version)
        return created(body, f"/products/{outcome.aggregate_id}", outcome.version)

    @put(
        "/{product_id:str}/details",
        operation_id="updateProductDetails",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Change details",
    )
    async def update_details(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        expected_version: ExpectedVersion,
        data: JSONBody[ProductChange],
    ) -> Response[Accepted]:
        """Omitted fields stay as they are; `null` clears an optional one."""
        return await change(
            commands, UpdateProductDetails, product_target(commands, product_id), expected_version, data
        )

    @put(
        "/{product_id:str}/activate",
        operation_id="activateProduct",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Put on sale",
    )
    async def activate(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """Draft → Active; needs at least one variant (409)."""
        return await change(commands, ActivateProduct, product_target(commands, product_id), expected_version)

    @put(
        "/{product_id:str}/discontinue",
        operation_id="discontinueProduct",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Stop selling",
    )
    async def discontinue(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """Active → Discontinued."""
        return await change(
            commands, DiscontinueProduct, product_target(commands, product_id), expected_version
        )

    @put(
        "/{product_id:str}/archive",
        operation_id="archiveProduct",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Archive",
    )
    async def archive(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """Discontinued → Archived; an archived product refuses every further command (409)."""
        return await change(commands, ArchiveProduct, product_target(commands, product_id), expected_version)

    @get("/", operation_id="listProducts", responses=PROBLEMS, summary="Product cards")
    async def list_cards(
        self,
        pool: ReadPool,
        viewer: Viewer,
        category_id: UuidFilter = None,
        seller_id: UuidFilter = None,
        status: StatusFilter = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> queries.ProductCardPage:
        """Newest first; `next_cursor` fetches the next page (null on the last)."""
        return await queries.list_product_cards(
            pool,
            category_id=uuid_filter("category_id", category_id),
            seller_id=uuid_filter("seller_id", seller_id),
            status=status_filter(status),
            limit=limit,
            cursor=cursor,
            viewer=viewer,
        )

    @get("/{product_id:str}", operation_id="getProduct", responses=PROBLEMS, summary="Product detail")
    async def detail(
        self, pool: ReadPool, viewer: Viewer, product_id: ProductId
    ) -> Response[queries.ProductDetail]:
        """Every field, variants with prices and tier prices (and, for a customer, `your_price`), images in
        display order. A product the caller may not see is 404, as an unknown one."""
        return found(
            await queries.get_product(pool, parse_product_id(product_id), viewer=viewer),
            "product",
            product_id,
        )

    @get(
        "/{product_id:str}/price-history",
        operation_id="getPriceHistory",
        responses=PROBLEMS,
        summary="Price history",
    )
    async def price_history(
        self, pool: ReadPool, viewer: Viewer, product_id: ProductId
    ) -> Response[queries.PriceHistory]:
        """Every base-price change of every variant, newest first; 404 for a product the caller may not see."""
        return found(
            await queries.get_price_history(pool, parse_product_id(product_id), viewer=viewer),
            "product",
            product_id,
        )


class SellerController(Controller):
    path = "/sellers"
    tags = ["catalogue"]
    dependencies = DEPENDENCIES

    @get(
        "/{seller_id:str}/products",
        operation_id="listSellerProducts",
        responses=PROBLEMS,
        summary="A seller's products",
    )
    async def products(
        self,
        pool: ReadPool,
        viewer: Viewer,
        seller_id: Annotated[str, PathParameter(description="The seller's id", format="uuid")],
        status: StatusFilter = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> queries.ProductCardPage:
        """The seller's product cards, newest first (an unknown seller has none)."""
        return await queries.list_product_cards(
            pool,
            seller_id=parse_seller_id(seller_id),
            status=status_filter(status),
            limit=limit,
            cursor=cursor,
            viewer=viewer,
        )
