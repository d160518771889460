"""Product routes: listing, details, category, visibility and lifecycle; product cards, detail and price
history, by seller too."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.openapi.spec import Example
from litestar.params import JSONBody, PathParameter

from bus.errors import Forbidden
from contexts.catalogue import queries, search
from contexts.catalogue.api import CategoryChoice, NewProduct, ProductChange, ProductCreated, VisibilityChange
from contexts.catalogue.api.parameters import (
    DEPENDENCIES,
    SELLERS,
    Brands,
    CurrencyFilter,
    FacetList,
    HistoryCursor,
    IncludeSubcategories,
    Limit,
    NewestCursor,
    PriceMax,
    PriceMin,
    ProductId,
    SearchCursor,
    SearchText,
    SortOrder,
    StatusFilter,
    SubtreeCategory,
    UuidFilter,
    Viewer,
    attribute_filters,
    parse_product_id,
    parse_seller_id,
    product_target,
    status_filter,
    uuid_filter,
)
from contexts.catalogue.details import UpdateProductDetails
from contexts.catalogue.filing import ChangeProductCategory
from contexts.catalogue.lifecycle import ActivateProduct, ArchiveProduct, DiscontinueProduct
from contexts.catalogue.listing import CreateProduct
from contexts.catalogue.visibility import ChangeProductVisibility
from contexts.edge.access import BEARER, BEARER_OPTIONAL, GUARDED, Role, principal_of
from contexts.edge.bodies import command_from
from contexts.edge.changes import change
from contexts.edge.dependencies import CommandRunner, ExpectedVersion, ReadPool
from contexts.edge.problems import PROBLEMS
from contexts.edge.responses import Accepted, created, found

SLUGS = [Example(summary="a slug", value="classic-t-shirt")]


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
        "/{product_id:str}/category",
        operation_id="changeProductCategory",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="File in another category",
    )
    async def change_category(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        expected_version: ExpectedVersion,
        data: JSONBody[CategoryChoice],
    ) -> Response[Accepted]:
        """`category_id` must name an existing category (422) that is still active when the change commits
        (409); `null` files the product in none. Naming its current category changes nothing."""
        return await change(
            commands, ChangeProductCategory, product_target(commands, product_id), expected_version, data
        )

    @put(
        "/{product_id:str}/visibility",
        operation_id="changeProductVisibility",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Change who may see it",
    )
    async def change_visibility(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        expected_version: ExpectedVersion,
        data: JSONBody[VisibilityChange],
    ) -> Response[Accepted]:
        """Public (in lists and by id), Unlisted (by id or slug only) or Tier_Restricted (to customers of at least
        `restricted_to_tier`, Silver when omitted). Sending what the product already has changes nothing."""
        return await change(
            commands, ChangeProductVisibility, product_target(commands, product_id), expected_version, data
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
        """Draft → Active; needs at least one active variant (409)."""
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

    @get(
        "/",
        operation_id="listProducts",
        responses=PROBLEMS,
        security=BEARER_OPTIONAL,
        summary="Find products",
    )
    async def list_cards(
        self,
        request: Request[Any, Any, Any],
        pool: ReadPool,
        viewer: Viewer,
        q: SearchText = None,
        category_id: SubtreeCategory = None,
        include_subcategories: IncludeSubcategories = True,
        seller_id: UuidFilter = None,
        status: StatusFilter = None,
        brand: Brands = None,
        currency: CurrencyFilter = None,
        price_min: PriceMin = None,
        price_max: PriceMax = None,
        sort: SortOrder = None,
        facets: FacetList = None,
        limit: Limit = 20,
        cursor: SearchCursor = None,
    ) -> search.SearchPage:
        """Product cards matching every filter given, a page at a time: `next_cursor` fetches the next page
        (null on the last). `attr.<key>=<value>` (repeatable) keeps cards whose attribute `<key>` is
        `<value>` (a string, or the number or boolean it spells): values of one key are alternatives,
        different keys must all hold, e.g. `attr.colour=navy&attr.colour=black&attr.size=M`. `facets`
        adds counts over the whole result set beside the page."""
        return await search.list_product_cards(
            pool,
            viewer=viewer,
            q=q,
            category_id=uuid_filter("category_id", category_id),
            include_subcategories=include_subcategories,
            seller_id=uuid_filter("seller_id", seller_id),
            status=status_filter(status),
            brands=brand or (),
            currency=currency,
            price_min=price_min,
            price_max=price_max,
            attributes=attribute_filters(request.query_params.multi_items()),
            sort=sort,
            facets=facets,
            limit=limit,
            cursor=cursor,
        )

    @get(
        "/by-slug/{slug:str}",
        operation_id="getProductBySlug",
        responses=PROBLEMS,
        security=BEARER_OPTIONAL,
        summary="Product detail by slug",
    )
    async def by_slug(
        self,
        pool: ReadPool,
        viewer: Viewer,
        slug: Annotated[str, PathParameter(description="The product's slug, in any case", examples=SLUGS)],
    ) -> Response[queries.ProductDetail]:
        """The detail of the product that holds the slug (archived products hold none): as `GET /products/{id}`."""
        return found(await queries.get_product_by_slug(pool, slug, viewer=viewer), "product", slug)

    @get(
        "/{product_id:str}",
        operation_id="getProduct",
        responses=PROBLEMS,
        security=BEARER_OPTIONAL,
        summary="Product detail",
    )
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
        security=BEARER_OPTIONAL,
        summary="Price history",
    )
    async def price_history(
        self,
        pool: ReadPool,
        viewer: Viewer,
        product_id: ProductId,
        limit: Limit = 20,
        cursor: HistoryCursor = None,
    ) -> Response[queries.PriceHistory]:
        """Every base-price change of every variant, newest first, a page at a time: `next_cursor` fetches
        the next page (null on the last); `version` is the product's. 404 for a product the caller may not
        see."""
        history = await queries.get_price_history(
            pool, parse_product_id(product_id), viewer=viewer, limit=limit, cursor=cursor
        )
        return found(history, "product", product_id)


class SellerController(Controller):
    path = "/sellers"
    tags = ["catalogue"]
    dependencies = DEPENDENCIES

    @get(
        "/{seller_id:str}/products",
        operation_id="listSellerProducts",
        responses=PROBLEMS,
        security=BEARER_OPTIONAL,
        summary="A seller's products",
    )
    async def products(
        self,
        pool: ReadPool,
        viewer: Viewer,
        seller_id: Annotated[str, PathParameter(description="The seller's id", format="uuid")],
        status: StatusFilter = None,
        limit: Limit = 20,
        cursor: NewestCursor = None,
    ) -> search.SearchPage:
        """The seller's product cards, newest first (an unknown seller has none)."""
        return await search.list_product_cards(
            pool,
            viewer=viewer,
            seller_id=parse_seller_id(seller_id),
            status=status_filter(status),
            limit=limit,
            cursor=cursor,
        )
