"""Catalogue's HTTP API: request bodies, each feeding the command of the same field names, and
created answers; the routes live in the modules beside. The bodies stay in this module because
OpenAPI names a component whose class name is taken twice after its module (`api_PriceChange`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from contexts.catalogue.categories import CreateCategory, MoveCategory, ReorderCategory, UpdateCategory
from contexts.catalogue.details import UpdateProductDetails
from contexts.catalogue.filing import ChangeProductCategory
from contexts.catalogue.gallery import AddProductImage, ReorderProductImages
from contexts.catalogue.images import MAX_IMAGES
from contexts.catalogue.listing import CreateProduct
from contexts.catalogue.pricing import AddVariant, ChangeVariantPrice, SetTierPrice
from contexts.catalogue.values import (
    MAX_DISPLAY_ORDER,
    PRICED_TIERS,
    URL_PATTERN,
    Currency,
    DimensionUnit,
    Visibility,
    WeightUnit,
)
from contexts.catalogue.variant_edits import UpdateVariant
from contexts.catalogue.visibility import ChangeProductVisibility
from contexts.edge import wire
from contexts.edge.bodies import Body

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
    restricted_to_tier: Annotated[
        str,
        wire.one_of(PRICED_TIERS),
        Meta(
            examples=["Gold"],
            description="with visibility Tier_Restricted, the least customer tier that sees the product",
        ),
    ] = "Silver"
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


class CategoryChoice(Body, command=ChangeProductCategory):
    category_id: Annotated[
        CategoryReference | None,
        Meta(
            description="an existing (else 422), active (else 409) category; null files the product in none"
        ),
    ]


class VisibilityChange(Body, command=ChangeProductVisibility):
    visibility: Annotated[str, wire.one_of(Visibility), Meta(examples=["Tier_Restricted"])]
    restricted_to_tier: Annotated[
        str,
        wire.one_of(PRICED_TIERS),
        Meta(
            examples=["Gold"],
            description="with visibility Tier_Restricted, the least customer tier that sees the product",
        ),
    ] = "Silver"


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


class VariantChange(Body, command=UpdateVariant):
    attributes: Attributes | UnsetType = UNSET
    weight_value: Annotated[Measure, Meta(examples=["0.25"])] | UnsetType | None = UNSET
    weight_unit: Annotated[str, wire.one_of(WeightUnit), Meta(examples=["kg"])] | UnsetType = UNSET
    length: Annotated[Measure, Meta(examples=["30"])] | UnsetType | None = UNSET
    width: Annotated[Measure, Meta(examples=["20"])] | UnsetType | None = UNSET
    height: Annotated[Measure, Meta(examples=["2"])] | UnsetType | None = UNSET
    dimension_unit: Annotated[str, wire.one_of(DimensionUnit), Meta(examples=["cm"])] | UnsetType = UNSET


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


class ImageOrder(Body, command=ReorderProductImages):
    image_ids: Annotated[
        list[Uuid],
        Meta(
            max_length=MAX_IMAGES,
            examples=[["9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "0b5e6c1e-3f4a-4c55-9a43-2f1d8f0c9e21"]],
            description="every image of the product exactly once (else 422), in the new display order",
        ),
    ]


class NewCategory(Body, command=CreateCategory):
    name: CategoryName
    parent_category_id: CategoryReference | None = None
    attributes: Attributes | None = None


class NewParent(Body, command=MoveCategory):
    # Required: null makes the category a root, so that leaving the field out is not read as that.
    parent_category_id: CategoryReference | None


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
