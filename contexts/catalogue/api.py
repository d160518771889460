"""Catalogue routes: a thin edge that turns HTTP into commands and reads the projections."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Annotated, Any, ClassVar

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter
from msgspec import UNSET, Meta, UnsetType

from bus.errors import Forbidden, Invalid
from contexts.catalogue import queries
from contexts.catalogue.categories import CreateCategory, DeactivateCategory, ReorderCategory, UpdateCategory
from contexts.catalogue.details import UpdateProductDetails
from contexts.catalogue.gallery import AddProductImage, RemoveProductImage
from contexts.catalogue.lifecycle import ActivateProduct, ArchiveProduct, DiscontinueProduct
from contexts.catalogue.listing import CreateProduct
from contexts.catalogue.pricing import AddVariant, ChangeVariantPrice, SetTierPrice
from contexts.catalogue.values import (
    MAX_DISPLAY_ORDER,
    PRICED_TIERS,
    URL_PATTERN,
    Currency,
    DimensionUnit,
    ProductStatus,
    Visibility,
    WeightUnit,
)
from contexts.edge import wire
from contexts.edge.access import BEARER, GUARDED, Role, allow, principal_of
from contexts.edge.bodies import Body, command_from
from contexts.edge.changes import change
from contexts.edge.dependencies import CommandRunner, ExpectedVersion, ReadPool, command_dependencies
from contexts.edge.idempotency import Commands
from contexts.edge.paths import path_id
from contexts.edge.problems import PROBLEMS
from contexts.edge.responses import Accepted, created, found

Money = Annotated[
    Decimal, wire.money("a decimal string or JSON number; JPY and KRW amounts have no decimals")
]
Measure = Annotated[Decimal, wire.measure()]
Attributes = Annotated[
    dict[str, Any],
    Meta(
        examples=[{"colour": "navy", "material": "cotton"}], description="string keys, at most 32 levels deep"
    ),
]
Uuid = Annotated[str, wire.pattern(wire.UUID_PATTERN, description="a UUID")]
Title = Annotated[str, wire.text(255), Meta(examples=["Classic T-shirt"])]
Slug = Annotated[str, wire.pattern(wire.SLUG_PATTERN, max_length=200), Meta(examples=["classic-t-shirt"])]
CategoryReference = Annotated[
    Uuid,
    Meta(
        examples=["9a1c4e7b-2d3f-4a5b-8c6d-7e8f9a0b1c2d"],
        description="an existing category (else 422), active (else 409)",
    ),
]
CategoryName = Annotated[str, wire.text(100), Meta(examples=["Clothing"])]
_WHOLE_AMOUNT = {"anyOf": [{"type": "string", "pattern": "^[1-9][0-9]{0,11}$"}, {"type": "integer"}]}


def _priced_in_whole_units(*prices: str) -> dict[str, Any]:
    """JPY and KRW have no minor unit: their amounts are whole (the other currencies have two decimals)."""
    return {
        "if": {"required": ["currency"], "properties": {"currency": {"enum": ["JPY", "KRW"]}}},
        "then": {"properties": dict.fromkeys(prices, _WHOLE_AMOUNT)},
    }


class NewProduct(Body, command=CreateProduct):
    sku: Annotated[str, wire.pattern(wire.SKU_PATTERN, 3, 50), Meta(examples=["TSHIRT-CLASSIC"])]
    title: Title
    seller_id: Annotated[Uuid, Meta(examples=["4f8e2a10-5c3b-4d6e-9f7a-1b2c3d4e5f60"])] | None = None
    description: Annotated[str, wire.optional_text(10_000)] | None = None
    category_id: CategoryReference | None = None
    brand: Annotated[str, wire.optional_text(100), Meta(examples=["Acme"])] | None = None
    attributes: Attributes | None = None
    visibility: Annotated[str, wire.one_of(Visibility), Meta(examples=["Public"])] = "Public"
    meta_title: Annotated[str, wire.optional_text(70)] | None = None
    meta_description: Annotated[str, wire.optional_text(160)] | None = None
    slug: Slug | None = None


class ProductChange(Body, command=UpdateProductDetails):
    title: Title | UnsetType = UNSET
    description: Annotated[str, wire.optional_text(10_000)] | UnsetType | None = UNSET
    brand: Annotated[str, wire.optional_text(100)] | UnsetType | None = UNSET
    attributes: Attributes | UnsetType = UNSET
    meta_title: Annotated[str, wire.optional_text(70)] | UnsetType | None = UNSET
    meta_description: Annotated[str, wire.optional_text(160)] | UnsetType | None = UNSET
    slug: Slug | UnsetType | None = UNSET


class NewVariant(Body, command=AddVariant):
    schema_extra: ClassVar[dict[str, Any]] = _priced_in_whole_units("base_price")

    variant_sku: Annotated[
        str, wire.pattern(wire.SKU_PATTERN, 3, 50), Meta(examples=["TSHIRT-CLASSIC-M-NAVY"])
    ]
    base_price: Annotated[Money, Meta(examples=["19.99"])]
    currency: Annotated[str, wire.one_of(Currency), Meta(examples=["EUR"])] = "USD"
    attributes: Attributes | None = None
    weight_value: Annotated[Measure, Meta(examples=["0.2"])] | None = None
    weight_unit: Annotated[str, wire.one_of(WeightUnit)] = "kg"
    length: Measure | None = None
    width: Measure | None = None
    height: Measure | None = None
    dimension_unit: Annotated[str, wire.one_of(DimensionUnit)] = "cm"


class PriceChange(Body, command=ChangeVariantPrice):
    schema_extra: ClassVar[dict[str, Any]] = {
        **_priced_in_whole_units("base_price"),
        "description": "Without `currency`, the variant's own decides the decimals (JPY and KRW: none).",
    }

    base_price: Annotated[Money, Meta(examples=["19.99"])]
    currency: Annotated[str, wire.one_of(Currency), Meta(examples=["EUR"])] | UnsetType = UNSET


class TierPriceChange(Body, command=SetTierPrice):
    schema_extra: ClassVar[dict[str, Any]] = {
        "description": "The variant's currency decides the decimals (JPY and KRW: none)."
    }

    tier: Annotated[str, wire.one_of(PRICED_TIERS), Meta(examples=["Gold"])]
    price: Annotated[Money, Meta(examples=["14.99"])]


class NewImage(Body, command=AddProductImage):
    url: Annotated[
        str,
        wire.pattern(URL_PATTERN, max_length=500, description="an absolute http or https URL"),
        Meta(examples=["https://cdn.example.com/tshirt-front.jpg"]),
    ]
    alt_text: Annotated[str, wire.optional_text(255), Meta(examples=["Front view"])] | None = None
    is_primary: bool = False


class NewCategory(Body, command=CreateCategory):
    name: CategoryName
    parent_category_id: CategoryReference | None = None
    attributes: Attributes | None = None


class CategoryChange(Body, command=UpdateCategory):
    name: CategoryName | UnsetType = UNSET
    attributes: Attributes | UnsetType = UNSET


class Reorder(Body, command=ReorderCategory):
    # Read as JSON Schema reads an integer (3.0 is 3); the domain check refuses every other value.
    new_display_order: Annotated[
        msgspec.Raw,
        Meta(examples=[3], extra_json_schema={"type": "integer", "minimum": 0, "maximum": MAX_DISPLAY_ORDER}),
    ]


def _created(name: str) -> type[msgspec.Struct]:
    return msgspec.defstruct(
        f"{name.title().replace('_', '')}Created",
        [(name, Annotated[str, Meta(examples=["0b5e6c1e-3f4a-4c55-9a43-2f1d8f0c9e21"])]), ("version", int)],
        frozen=True,
    )


ProductCreated, VariantCreated, ImageCreated, CategoryCreated = (
    _created("product_id"),
    _created("variant_id"),
    _created("image_id"),
    _created("category_id"),
)

_product_id = path_id("product")
_category_id = path_id("category")
_seller_id = path_id("seller")
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


def _product(commands: Commands, product_id: str) -> dict[str, str | None]:
    """The product a command addresses: its id from the path; a seller's commands carry its id, so
    that only its own products change."""
    return {
        "product_id": _product_id(product_id),
        "acting_seller_id": principal_of(commands.request).acting_as(Role.SELLER),
    }


def _category(category_id: str) -> dict[str, str]:
    """The category a command addresses: its id from the path."""
    return {"category_id": _category_id(category_id)}


def _uuid_filter(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(wire.UUID_PATTERN, value):
        raise Invalid(field, "must be a UUID")
    return str(uuid.UUID(value))


def _status_filter(value: str | None) -> str | None:
    if value is None or value in ProductStatus.__members__.values():
        return value
    raise Invalid("status", "must be one of " + ", ".join(ProductStatus))


class ProductController(Controller):
    path = "/products"
    tags = ["catalogue"]
    dependencies = command_dependencies("catalogue")

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
            commands, UpdateProductDetails, _product(commands, product_id), expected_version, data
        )

    @post(
        "/{product_id:str}/variants",
        operation_id="addVariant",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Add a variant",
    )
    async def add_variant(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        expected_version: ExpectedVersion,
        data: JSONBody[NewVariant],
    ) -> Response[VariantCreated]:  # type: ignore[valid-type]
        """`variant_sku` is unique across all products (409); all variants of a product share one currency (409)."""
        command = command_from(
            AddVariant,
            data,
            variant_id=str(uuid.uuid4()),
            expected_version=expected_version,
            **_product(commands, product_id),
        )
        outcome = await commands.run(command)
        body = VariantCreated(variant_id=outcome.created_id, version=outcome.version)
        return created(body, f"/products/{command.product_id}", outcome.version)

    @put(
        "/{product_id:str}/variants/{variant_id:str}/price",
        operation_id="changeVariantPrice",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Change a variant's base price",
    )
    async def change_price(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        variant_id: VariantId,
        expected_version: ExpectedVersion,
        data: JSONBody[PriceChange],
    ) -> Response[Accepted]:
        """Tier prices are kept: a base price that would not stay above each of them is refused (409)."""
        return await change(
            commands,
            ChangeVariantPrice,
            _product(commands, product_id),
            expected_version,
            data,
            variant_id=variant_id,
        )

    @put(
        "/{product_id:str}/variants/{variant_id:str}/tier-price",
        operation_id="setTierPrice",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Set a loyalty-tier price",
    )
    async def set_tier_price(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        variant_id: VariantId,
        expected_version: ExpectedVersion,
        data: JSONBody[TierPriceChange],
    ) -> Response[Accepted]:
        """The price must be above 0 and below the variant's base price (409)."""
        return await change(
            commands,
            SetTierPrice,
            _product(commands, product_id),
            expected_version,
            data,
            variant_id=variant_id,
        )

    @post(
        "/{product_id:str}/images",
        operation_id="addProductImage",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Add an image",
    )
    async def add_image(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        expected_version: ExpectedVersion,
        data: JSONBody[NewImage],
    ) -> Response[ImageCreated]:  # type: ignore[valid-type]
        """At most 10 images; the first, or one sent with `is_primary`, becomes the primary image."""
        command = command_from(
            AddProductImage,
            data,
            image_id=str(uuid.uuid4()),
            expected_version=expected_version,
            **_product(commands, product_id),
        )
        outcome = await commands.run(command)
        body = ImageCreated(image_id=outcome.created_id, version=outcome.version)
        return created(body, f"/products/{command.product_id}", outcome.version)

    @delete(
        "/{product_id:str}/images/{image_id:str}",
        operation_id="removeProductImage",
        responses=GUARDED,
        security=BEARER,
        guards=[SELLERS],
        summary="Remove an image",
        status_code=200,
    )
    async def remove_image(
        self,
        commands: CommandRunner,
        product_id: ProductId,
        image_id: ImageId,
        expected_version: ExpectedVersion,
    ) -> Response[Accepted]:
        """Removing the primary image makes the first remaining one primary."""
        return await change(
            commands, RemoveProductImage, _product(commands, product_id), expected_version, image_id=image_id
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
        return await change(commands, ActivateProduct, _product(commands, product_id), expected_version)

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
        return await change(commands, DiscontinueProduct, _product(commands, product_id), expected_version)

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
        return await change(commands, ArchiveProduct, _product(commands, product_id), expected_version)

    @get("/", operation_id="listProducts", responses=PROBLEMS, summary="Product cards")
    async def list_cards(
        self,
        pool: ReadPool,
        category_id: UuidFilter = None,
        seller_id: UuidFilter = None,
        status: StatusFilter = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> queries.ProductCardPage:
        """Newest first; `next_cursor` fetches the next page (null on the last)."""
        return await queries.list_product_cards(
            pool,
            category_id=_uuid_filter("category_id", category_id),
            seller_id=_uuid_filter("seller_id", seller_id),
            status=_status_filter(status),
            limit=limit,
            cursor=cursor,
        )

    @get("/{product_id:str}", operation_id="getProduct", responses=PROBLEMS, summary="Product detail")
    async def detail(self, pool: ReadPool, product_id: ProductId) -> Response[queries.ProductDetail]:
        """Every field, variants with prices and tier prices, images in display order."""
        return found(await queries.get_product(pool, _product_id(product_id)), "product", product_id)

    @get(
        "/{product_id:str}/price-history",
        operation_id="getPriceHistory",
        responses=PROBLEMS,
        summary="Price history",
    )
    async def price_history(self, pool: ReadPool, product_id: ProductId) -> Response[queries.PriceHistory]:
        """Every base-price change of every variant, newest first."""
        return found(await queries.get_price_history(pool, _product_id(product_id)), "product", product_id)


class SellerController(Controller):
    path = "/sellers"
    tags = ["catalogue"]
    dependencies = command_dependencies("catalogue")

    @get(
        "/{seller_id:str}/products",
        operation_id="listSellerProducts",
        responses=PROBLEMS,
        summary="A seller's products",
    )
    async def products(
        self,
        pool: ReadPool,
        seller_id: Annotated[str, PathParameter(description="The seller's id", format="uuid")],
        status: StatusFilter = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> queries.ProductCardPage:
        """The seller's product cards, newest first (an unknown seller has none)."""
        return await queries.list_product_cards(
            pool, seller_id=_seller_id(seller_id), status=_status_filter(status), limit=limit, cursor=cursor
        )


class CategoryController(Controller):
    path = "/categories"
    tags = ["catalogue"]
    dependencies = command_dependencies("catalogue")

    @post(
        "/",
        operation_id="createCategory",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Create a category",
    )
    async def create(self, commands: CommandRunner, data: JSONBody[NewCategory]) -> Response[CategoryCreated]:  # type: ignore[valid-type]
        """A root, or a child of an existing (422) and active (409) parent, at most at level 4 (409)."""
        outcome = await commands.run(command_from(CreateCategory, data, category_id=str(uuid.uuid4())))
        body = CategoryCreated(category_id=outcome.aggregate_id, version=outcome.version)
        return created(body, f"/categories/{outcome.aggregate_id}", outcome.version)

    @put(
        "/{category_id:str}",
        operation_id="updateCategory",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Rename or change attributes",
    )
    async def update(
        self,
        commands: CommandRunner,
        category_id: CategoryId,
        expected_version: ExpectedVersion,
        data: JSONBody[CategoryChange],
    ) -> Response[Accepted]:
        """A new name shows in the breadcrumb of every descendant."""
        return await change(commands, UpdateCategory, _category(category_id), expected_version, data)

    @put(
        "/{category_id:str}/reorder",
        operation_id="reorderCategory",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Move among siblings",
    )
    async def reorder(
        self,
        commands: CommandRunner,
        category_id: CategoryId,
        expected_version: ExpectedVersion,
        data: JSONBody[Reorder],
    ) -> Response[Accepted]:
        """Siblings are listed by `display_order`, then by name."""
        return await change(
            commands,
            ReorderCategory,
            _category(category_id),
            expected_version,
            new_display_order=wire.whole_number(data.new_display_order),
        )

    @put(
        "/{category_id:str}/deactivate",
        operation_id="deactivateCategory",
        responses=GUARDED,
        security=BEARER,
        guards=[ADMINS],
        summary="Deactivate",
    )
    async def deactivate(
        self, commands: CommandRunner, category_id: CategoryId, expected_version: ExpectedVersion
    ) -> Response[Accepted]:
        """Nothing new can be filed in an inactive category; deactivating one twice is 409."""
        return await change(commands, DeactivateCategory, _category(category_id), expected_version)

    @get("/", operation_id="getCategoryTree", responses=PROBLEMS, summary="The category tree")
    async def tree(
        self,
        pool: ReadPool,
        include_inactive: Annotated[bool, QueryParameter(description="also inactive categories")] = False,
    ) -> queries.CategoryTree:
        """Children nested, ordered by `display_order` then `name`; an inactive category hides its subtree."""
        return await queries.get_category_tree(pool, include_inactive=include_inactive)

    @get(
        "/{category_id:str}",
        operation_id="getCategory",
        responses=PROBLEMS,
        summary="A category with breadcrumb",
    )
    async def node(self, pool: ReadPool, category_id: CategoryId) -> Response[queries.CategoryNode]:
        """`breadcrumb` holds the names from the root down to this category; `product_count` the products filed here."""
        return found(await queries.get_category(pool, _category_id(category_id)), "category", category_id)
