"""The Product and Category aggregates, pure: every rule of SPEC §5, checked without I/O."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

import contexts.catalogue
from bus.errors import Conflict, Invalid, NotFound
from bus.messages import Event
from contexts.catalogue import events, values
from contexts.catalogue.category import MAX_LEVEL, Category
from contexts.catalogue.errors import (
    ActiveVariantRequired,
    CategoryAlreadyActive,
    CategoryAlreadyInactive,
    CategoryCycle,
    CategoryInactive,
    CategoryTooDeep,
    CurrencyMismatch,
    ImageExists,
    ImageLimitReached,
    ImageNotFound,
    ProductArchived,
    TierPriceCurrencyMismatch,
    TierPriceNotBelowBase,
    TransitionNotAllowed,
    VariantAlreadyActive,
    VariantAlreadyInactive,
    VariantExists,
    VariantNotFound,
    VariantRequired,
    VariantSkuTaken,
)
from contexts.catalogue.images import MAX_IMAGES
from contexts.catalogue.product import Product, ProductState
from contexts.catalogue.values import Currency, DimensionUnit, ProductStatus, Visibility, WeightUnit
from contexts.contracts import Tier

NOW = datetime(2024, 6, 15, 9, 30, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
SELLER = "5f0c6d1e-8a2b-4c3d-9e4f-0a1b2c3d4e5f"
USD = Currency.USD


def create(**overrides: Any) -> Product:
    fields: dict[str, Any] = {"product_id": "p-1", "sku": "LAMP-01", "title": "Desk lamp", "now": NOW}
    return Product.create(**(fields | overrides))


def saved(aggregate: Any) -> Any:
    aggregate.mark_saved()
    return aggregate


def variant(**overrides: Any) -> dict[str, Any]:
    return {"variant_sku": "LAMP-01-RED", "base_price": Decimal("100.00"), "now": NOW} | overrides


def with_variants(count: int, **overrides: Any) -> Product:
    """A saved Draft product with variants v1..v<count> at 100.00 (in `currency`, USD by default)."""
    product = create()
    for n in range(1, count + 1):
        product.add_variant(f"v{n}", **variant(variant_sku=f"LAMP-{n}", **overrides))
    return saved(product)


def with_images(count: int) -> Product:
    """A saved product with images i1..i<count>; i1 is primary."""
    product = create()
    for n in range(1, count + 1):
        product.add_image(f"i{n}", url=f"https://cdn.example.com/{n}.jpg", now=NOW)
    return saved(product)


def in_status(status: ProductStatus) -> Product:
    product = with_variants(1)
    steps = {
        ProductStatus.DRAFT: (),
        ProductStatus.ACTIVE: (product.activate,),
        ProductStatus.DISCONTINUED: (product.activate, product.discontinue),
        ProductStatus.ARCHIVED: (product.activate, product.discontinue, product.archive),
    }
    for step in steps[status]:
        step(now=NOW)
    return saved(product)


def category(level: int = 0, *, active: bool = True) -> Category:
    """A saved category at `level`, under a chain of active ancestors."""
    node = Category.create("cat-0", name="Root", parent=None, now=NOW)
    for n in range(1, level + 1):
        node = Category.create(f"cat-{n}", name=f"Level {n}", parent=node, now=NOW)
    if not active:
        node.deactivate(now=NOW)
    return saved(node)


def only_event(aggregate: Any) -> Event:
    assert len(aggregate.pending_events) == 1
    return aggregate.pending_events[0]


def fields_of(excinfo: pytest.ExceptionInfo[Invalid]) -> list[str]:
    return [error["field"] for error in excinfo.value.errors]


def primaries(product: Product) -> list[str]:
    return [i.image_id for i in product.images if i.is_primary]


class TestMoney:
    def test_every_currency_of_the_spec_is_known(self) -> None:
        assert [c.value for c in Currency] == (
            "USD EUR GBP JPY CAD AUD CHF CNY INR MXN BRL KRW SGD HKD NOK SEK DKK NZD ZAR TWD".split()  # noqa: SIM905
        )

    @pytest.mark.parametrize("currency", list(Currency))
    def test_yen_and_won_have_no_minor_digits_the_rest_two(self, currency: Currency) -> None:
        assert currency.minor_digits == (0 if currency in (Currency.JPY, Currency.KRW) else 2)

    @pytest.mark.parametrize(
        ("amount", "currency", "stored"),
        [
            ("19.99", "USD", "19.99"),
            ("19.9", "USD", "19.90"),
            ("19", "EUR", "19.00"),
            ("19.990", "GBP", "19.99"),
            ("0.01", "USD", "0.01"),
            ("999999999999.99", "USD", "999999999999.99"),
            ("1500", "JPY", "1500"),
            ("1500.000", "JPY", "1500"),
            ("1.5E+3", "KRW", "1500"),
            ("1", "KRW", "1"),
        ],
    )
    def test_amount_is_quantized_to_the_digits_of_its_currency(
        self, amount: str, currency: str, stored: str
    ) -> None:
        checked = values.money("price", Decimal(amount), Currency(currency))
        assert str(checked) == stored

    def test_an_integer_amount_is_accepted(self) -> None:
        assert str(values.money("price", 20, USD)) == "20.00"  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("amount", "currency"),
        [
            ("19.999", "USD"),
            ("0.001", "EUR"),
            ("1500.5", "JPY"),
            ("0.1", "KRW"),
            ("19.99000000000000000000000000001", "USD"),
            ("1E-100000", "USD"),
        ],
    )
    def test_more_minor_digits_than_the_currency_has_are_refused(self, amount: str, currency: str) -> None:
        with pytest.raises(Invalid) as excinfo:
            values.money("price", Decimal(amount), Currency(currency))
        assert fields_of(excinfo) == ["price"]

    @pytest.mark.parametrize(
        "amount",
        ["0", "0.00", "-0", "-1", "-19.99", "1000000000000", "1E+12", "NaN", "sNaN", "Infinity", "-Infinity"],
    )
    def test_amount_must_be_finite_positive_and_below_a_trillion(self, amount: str) -> None:
        with pytest.raises(Invalid):
            values.money("price", Decimal(amount), USD)

    @pytest.mark.parametrize("amount", [19.99, True, "19.99", None])
    def test_only_decimals_and_integers_are_amounts(self, amount: Any) -> None:
        with pytest.raises(Invalid):
            values.money("price", amount, USD)


class TestMeasure:
    @pytest.mark.parametrize(
        ("given", "stored"),
        [(None, None), ("0", "0"), ("-0", "0"), ("1.5", "1.5"), ("999999999.999999", "999999999.999999")],
    )
    def test_measure_is_optional_and_at_least_zero(self, given: str | None, stored: str | None) -> None:
        checked = values.measure("length", None if given is None else Decimal(given))
        assert (None if checked is None else str(checked)) == stored

    @pytest.mark.parametrize("given", ["-0.01", "1000000000", "NaN", "Infinity", "0.0000001"])
    def test_negative_huge_non_finite_or_over_precise_measure_is_refused(self, given: str) -> None:
        with pytest.raises(Invalid) as excinfo:
            values.measure("length", Decimal(given))
        assert fields_of(excinfo) == ["length"]

    @pytest.mark.parametrize("given", [1.5, True, "1.5"])
    def test_only_decimals_and_integers_are_measures(self, given: Any) -> None:
        with pytest.raises(Invalid):
            values.measure("length", given)


class TestFieldFormats:
    @pytest.mark.parametrize("sku", ["ABC", "abc-123", "A-B-C", "Lamp-01-Red", "x" * 50, "123"])
    def test_valid_sku_is_kept_as_given(self, sku: str) -> None:
        assert values.sku("sku", sku) == sku

    @pytest.mark.parametrize(
        "sku",
        [
            "",
            "AB",
            "x" * 51,
            "-ABC",
            "ABC-",
            "AB--C",
            "AB C",
            " ABC",
            "ABC\n",
            "AB_C",
            "AB.C",
            "ÄBC",
            "\uff21BC",
            "A\x00BC",
            None,
            123,
        ],
    )
    def test_invalid_sku_is_refused(self, sku: Any) -> None:
        with pytest.raises(Invalid) as excinfo:
            values.sku("sku", sku)
        assert fields_of(excinfo) == ["sku"]

    @pytest.mark.parametrize("slug", [None, "a", "desk-lamp", "lamp-2024", "x" * 200])
    def test_valid_slug_is_kept(self, slug: str | None) -> None:
        assert values.slug(slug) == slug

    @pytest.mark.parametrize(
        "slug",
        [
            "",
            "Desk-Lamp",
            "desk_lamp",
            "-desk",
            "desk-",
            "desk--lamp",
            "desk lamp",
            "désk",
            "x" * 201,
            "desk\n",
        ],
    )
    def test_invalid_slug_is_refused(self, slug: str) -> None:
        with pytest.raises(Invalid) as excinfo:
            values.slug(slug)
        assert fields_of(excinfo) == ["slug"]

    @pytest.mark.parametrize(
        "given", [SELLER, SELLER.upper(), SELLER.replace("-", ""), "5F0C6D1E8A2B4C3D9E4F0A1B2C3D4E5F"]
    )
    def test_seller_id_is_normalised_to_the_canonical_uuid(self, given: str) -> None:
        assert values.seller_id(given) == SELLER

    @pytest.mark.parametrize(
        "given",
        [
            "",
            "seller-1",
            SELLER[:-1],
            SELLER + "0",
            "{" + SELLER + "}",
            "urn:uuid:" + SELLER,
            " " + SELLER,
            "+" + SELLER[1:],
            SELLER.replace("-", "_"),
        ],
    )
    def test_anything_but_a_uuid_is_not_a_seller_id(self, given: str) -> None:
        with pytest.raises(Invalid) as excinfo:
            values.seller_id(given)
        assert fields_of(excinfo) == ["seller_id"]

    @pytest.mark.parametrize(
        "url",
        [
            "http://example.com",
            "https://cdn.example.com/a/b.jpg?w=200#x",
            "HTTPS://EXAMPLE.COM/A.PNG",
            "https://[2001:db8::1]/a.png",
            "https://example.com:8443/a",
        ],
    )
    def test_http_and_https_urls_are_kept_as_given(self, url: str) -> None:
        assert values.url(url) == url

    def test_url_of_500_characters_is_accepted(self) -> None:
        url = "https://example.com/" + "a" * 480
        assert values.url(url) == url

    @pytest.mark.parametrize(
        "url",
        [
            "",
            None,
            "https://example.com/" + "a" * 481,
            "ftp://example.com/a.jpg",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "example.com/a.jpg",
            "/a.jpg",
            "https://",
            "https:///a.jpg",
            "https://exa mple.com/a.jpg",
            "https://example.com/a b.jpg",
            " https://example.com",
            "https://example.com/\n",
            "https://example.com/\x00",
            "https://example.com/\x7f",
            "https://[::1/a.jpg",
            "https://example.com:99999/a.jpg",
            "https://example.com:port/a.jpg",
            "https://exämple.com/a.jpg",
            "https://[v1.x]/a.jpg",
        ],
    )
    def test_invalid_url_is_refused(self, url: Any) -> None:
        with pytest.raises(Invalid) as excinfo:
            values.url(url)
        assert fields_of(excinfo) == ["url"]

    @pytest.mark.parametrize("order", [0, 1, 2_147_483_647])
    def test_display_order_is_a_non_negative_32_bit_integer(self, order: int) -> None:
        assert values.display_order("new_display_order", order) == order

    @pytest.mark.parametrize("order", [-1, 2_147_483_648, True, False, 1.0, "1", None])
    def test_display_order_out_of_range_or_not_an_integer_is_refused(self, order: Any) -> None:
        with pytest.raises(Invalid):
            values.display_order("new_display_order", order)


class TestAttributes:
    def test_absent_attributes_are_empty(self) -> None:
        assert values.attributes("attributes", None) == {}

    def test_any_json_values_are_accepted(self) -> None:
        given = {
            "colour": "red",
            "watts": 40,
            "dimmable": True,
            "ratio": Decimal("0.5"),
            "ratio_from_json": 0.5,
            "none": None,
            "tags": ["desk", {"nested": [1, 2, {"deep": "ok"}]}],
            "": "an empty key is still a string",
        }
        assert values.attributes("attributes", given) == given

    @pytest.mark.parametrize(
        "given",
        [
            {"a\x00": 1},
            {"a": "b\x00"},
            {"a": ["ok", "b\x00"]},
            {"a": {"b": {"c\x00": 1}}},
            {"a": [{"b": "\x00"}]},
        ],
    )
    def test_nul_is_refused_in_keys_and_strings_at_any_depth(self, given: dict[str, Any]) -> None:
        with pytest.raises(Invalid) as excinfo:
            values.attributes("attributes", given)
        assert fields_of(excinfo) == ["attributes"]

    @pytest.mark.parametrize(
        "given",
        [
            {"a": Decimal("NaN")},
            {"a": Decimal("Infinity")},
            {"a": [1, {"b": -Decimal("Infinity")}]},
            {"a": 1e400},
            {"a": [-1e400]},
            {"a": 1e400 - 1e400},
        ],
    )
    def test_non_finite_numbers_are_refused(self, given: dict[str, Any]) -> None:
        with pytest.raises(Invalid):
            values.attributes("attributes", given)

    @pytest.mark.parametrize(
        "given",
        [[1, 2], "colour=red", 5, {1: "a"}, {"a": {2: "b"}}, {"a": b"bytes"}, {"a": {1, 2}}, {"a": NOW}],
    )
    def test_attributes_are_a_json_object_with_string_keys(self, given: Any) -> None:
        with pytest.raises(Invalid):
            values.attributes("attributes", given)

    def test_deep_nesting_is_refused_without_recursion(self) -> None:
        deep: Any = "leaf"
        for _ in range(10_000):
            deep = {"a": deep}
        with pytest.raises(Invalid):
            values.attributes("attributes", deep)
        shallow: Any = "leaf"
        for _ in range(values.MAX_ATTRIBUTE_DEPTH - 1):
            shallow = [shallow]
        assert values.attributes("attributes", {"a": shallow}) == {"a": shallow}
        with pytest.raises(Invalid):
            values.attributes("attributes", {"a": [shallow]})


class TestCreateProduct:
    def test_product_starts_as_a_draft_without_variants_or_images(self) -> None:
        product = create(
            seller_id=SELLER.upper(),
            description="  Bright and adjustable.  ",
            category=category(),
            brand="Lumen",
            attributes={"colour": "red"},
            visibility="Unlisted",
            meta_title="Desk lamp",
            meta_description="A bright desk lamp",
            slug="desk-lamp",
        )
        assert only_event(product) == events.ProductCreated(
            product_id="p-1",
            sku="LAMP-01",
            seller_id=SELLER,
            title="Desk lamp",
            description="Bright and adjustable.",
            category_id="cat-0",
            brand="Lumen",
            attributes={"colour": "red"},
            visibility="Unlisted",
            meta_title="Desk lamp",
            meta_description="A bright desk lamp",
            slug="desk-lamp",
            status="Draft",
            created_at=NOW,
        )
        assert product.status is ProductStatus.DRAFT
        assert (product.variants, product.images) == ((), ())
        assert product.state.created_at == product.state.updated_at == NOW
        assert product.version == 1

    def test_optional_fields_default_to_absent_and_public(self) -> None:
        state = create().state
        assert (state.seller_id, state.description, state.category_id, state.brand) == (
            None,
            None,
            None,
            None,
        )
        assert (state.meta_title, state.meta_description, state.slug) == (None, None, None)
        assert state.attributes == {}
        assert state.visibility is Visibility.PUBLIC

    @pytest.mark.parametrize("visibility", ["Public", "Unlisted", "Tier_Restricted"])
    def test_every_visibility_is_accepted(self, visibility: str) -> None:
        assert create(visibility=visibility).state.visibility == visibility

    @pytest.mark.parametrize("visibility", ["public", "Private", "", None])
    def test_unknown_visibility_is_refused(self, visibility: Any) -> None:
        with pytest.raises(Invalid) as excinfo:
            create(visibility=visibility)
        assert fields_of(excinfo) == ["visibility"]

    def test_title_holds_1_to_255_characters_once_stripped(self) -> None:
        assert create(title="  x  ").state.title == "x"
        assert create(title="x" * 255).state.title == "x" * 255
        for bad in ("", "   ", "x" * 256, None):
            with pytest.raises(Invalid) as excinfo:
                create(title=bad)
            assert fields_of(excinfo) == ["title"]

    @pytest.mark.parametrize(
        ("field", "longest"),
        [("description", 10_000), ("brand", 100), ("meta_title", 70), ("meta_description", 160)],
    )
    def test_optional_texts_hold_up_to_their_limit(self, field: str, longest: int) -> None:
        assert getattr(create(**{field: "x" * longest}).state, field) == "x" * longest
        assert getattr(create(**{field: "   "}).state, field) is None
        with pytest.raises(Invalid) as excinfo:
            create(**{field: "x" * (longest + 1)})
        assert fields_of(excinfo) == [field]

    def test_slug_holds_up_to_200_characters(self) -> None:
        assert create(slug="x" * 200).state.slug == "x" * 200
        with pytest.raises(Invalid) as excinfo:
            create(slug="x" * 201)
        assert fields_of(excinfo) == ["slug"]

    def test_nul_in_text_is_refused(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            create(title="Desk\x00lamp")
        assert fields_of(excinfo) == ["title"]

    def test_nul_in_attributes_is_refused(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            create(attributes={"colour": "re\x00d"})
        assert fields_of(excinfo) == ["attributes"]

    def test_every_invalid_field_is_reported_at_once(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            create(
                sku="-",
                title="",
                seller_id="nope",
                visibility="Hidden",
                brand="x" * 101,
                attributes=[],
                meta_title="x" * 71,
                meta_description="x" * 161,
                slug="Bad Slug",
                description="x" * 10_001,
            )
        assert sorted(fields_of(excinfo)) == sorted(
            [
                "sku",
                "title",
                "seller_id",
                "visibility",
                "brand",
                "attributes",
                "meta_title",
                "meta_description",
                "slug",
                "description",
            ]
        )

    def test_sku_is_kept_as_given(self) -> None:
        assert create(sku="Lamp-01-Red").state.sku == "Lamp-01-Red"

    def test_a_category_at_any_level_files_the_product(self) -> None:
        assert create(category=category(MAX_LEVEL)).state.category_id == f"cat-{MAX_LEVEL}"

    def test_an_inactive_category_is_a_conflict(self) -> None:
        with pytest.raises(CategoryInactive) as excinfo:
            create(category=category(1, active=False))
        assert isinstance(excinfo.value, Conflict)
        assert "cat-1" in str(excinfo.value)

    def test_invalid_values_are_reported_before_an_inactive_category(self) -> None:
        with pytest.raises(Invalid):
            create(title="", category=category(active=False))


class TestUpdateDetails:
    def test_omitted_details_stay_unchanged(self) -> None:
        product = saved(create(brand="Lumen", slug="desk-lamp", attributes={"a": 1}))
        before = product.state
        product.update_details(title="Floor lamp", now=LATER)
        assert product.state.title == "Floor lamp"
        assert msgspec.structs.replace(product.state, title=before.title, updated_at=NOW) == before

    def test_details_updated_carries_every_detail(self) -> None:
        product = saved(create(brand="Lumen", description="Bright"))
        product.update_details(title="Floor lamp", slug="floor-lamp", attributes={"watts": 60}, now=LATER)
        assert only_event(product) == events.ProductDetailsUpdated(
            product_id="p-1",
            title="Floor lamp",
            description="Bright",
            brand="Lumen",
            attributes={"watts": 60},
            meta_title=None,
            meta_description=None,
            slug="floor-lamp",
        )
        assert product.state.updated_at == LATER
        assert product.state.created_at == NOW

    @pytest.mark.parametrize("field", ["description", "brand", "meta_title", "meta_description", "slug"])
    def test_none_clears_an_optional_detail(self, field: str) -> None:
        given = {"description": "d", "brand": "b", "meta_title": "m", "meta_description": "md", "slug": "s"}
        product = saved(create(**given))
        product.update_details(**{field: None}, now=LATER)
        assert getattr(product.state, field) is None

    def test_none_empties_the_attributes(self) -> None:
        product = saved(create(attributes={"a": 1}))
        product.update_details(attributes=None, now=LATER)
        assert product.state.attributes == {}

    def test_title_cannot_be_cleared(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            saved(create()).update_details(title=None, now=LATER)  # type: ignore[arg-type]
        assert fields_of(excinfo) == ["title"]

    def test_no_change_raises_no_event(self) -> None:
        product = saved(create(brand="Lumen", attributes={"a": 1}))
        product.update_details(title="  Desk lamp ", brand="Lumen", attributes={"a": 1}, now=LATER)
        product.update_details(now=LATER)
        assert product.pending_events == []
        assert product.state.updated_at == NOW
        assert product.version == 1

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("title", "x" * 256),
            ("description", "x" * 10_001),
            ("brand", "x" * 101),
            ("meta_title", "x" * 71),
            ("meta_description", "x" * 161),
            ("slug", "UPPER"),
            ("attributes", {"a": "\x00"}),
        ],
    )
    def test_values_are_checked_like_on_create(self, field: str, value: Any) -> None:
        with pytest.raises(Invalid) as excinfo:
            saved(create()).update_details(**{field: value}, now=LATER)
        assert fields_of(excinfo) == [field]

    def test_details_may_change_while_discontinued(self) -> None:
        product = in_status(ProductStatus.DISCONTINUED)
        product.update_details(title="Old lamp", now=LATER)
        assert product.state.title == "Old lamp"


class TestAddVariant:
    def test_variant_added_carries_the_whole_variant(self) -> None:
        product = saved(create())
        added = product.add_variant(
            "v1",
            variant_sku="LAMP-01-RED",
            base_price=Decimal("49.9"),
            currency="EUR",
            attributes={"colour": "red"},
            weight_value=Decimal("1.25"),
            weight_unit="lb",
            length=Decimal("30"),
            width=Decimal("20.5"),
            height=Decimal("45"),
            dimension_unit="in",
            now=LATER,
        )
        assert only_event(product) == events.VariantAdded(
            product_id="p-1",
            variant_id="v1",
            variant_sku="LAMP-01-RED",
            attributes={"colour": "red"},
            base_price=Decimal("49.90"),
            currency="EUR",
            tier_prices={},
            weight_value=Decimal("1.25"),
            weight_unit="lb",
            length=Decimal("30"),
            width=Decimal("20.5"),
            height=Decimal("45"),
            dimension_unit="in",
            is_active=True,
        )
        assert str(added.base_price) == "49.90"
        assert added == product.variant("v1")
        assert product.state.updated_at == LATER
        assert product.version == 2

    def test_defaults_are_usd_kg_cm_without_measures(self) -> None:
        added = saved(create()).add_variant("v1", **variant())
        assert (added.currency, added.weight_unit, added.dimension_unit) == (
            USD,
            WeightUnit.KG,
            DimensionUnit.CM,
        )
        assert (added.weight_value, added.length, added.width, added.height) == (None, None, None, None)
        assert added.attributes == {}
        assert added.tier_prices == {}
        assert added.is_active is True

    @pytest.mark.parametrize("unit", ["kg", "lb", "g", "oz"])
    def test_every_weight_unit_is_accepted(self, unit: str) -> None:
        assert saved(create()).add_variant("v1", **variant(weight_unit=unit)).weight_unit == unit

    @pytest.mark.parametrize("unit", ["cm", "in"])
    def test_every_dimension_unit_is_accepted(self, unit: str) -> None:
        assert saved(create()).add_variant("v1", **variant(dimension_unit=unit)).dimension_unit == unit

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("variant_sku", "X"),
            ("variant_sku", "BAD SKU"),
            ("base_price", Decimal("0")),
            ("base_price", Decimal("19.999")),
            ("currency", "usd"),
            ("currency", "BTC"),
            ("attributes", {"a": "\x00"}),
            ("weight_value", Decimal("-1")),
            ("weight_unit", "stone"),
            ("length", Decimal("-0.5")),
            ("width", Decimal("NaN")),
            ("height", Decimal("1E9")),
            ("dimension_unit", "mm"),
        ],
    )
    def test_invalid_value_names_its_field(self, field: str, value: Any) -> None:
        with pytest.raises(Invalid) as excinfo:
            saved(create()).add_variant("v1", **variant(**{field: value}))
        assert fields_of(excinfo) == [field]

    def test_price_digits_follow_the_variant_currency(self) -> None:
        assert (
            str(
                saved(create())
                .add_variant("v1", **variant(base_price=Decimal(1500), currency="JPY"))
                .base_price
            )
            == "1500"
        )
        with pytest.raises(Invalid) as excinfo:
            saved(create()).add_variant("v1", **variant(base_price=Decimal("1500.50"), currency="KRW"))
        assert fields_of(excinfo) == ["base_price"]

    def test_unknown_currency_is_reported_once(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            saved(create()).add_variant("v1", **variant(currency="XXX", base_price=Decimal("1.234")))
        assert fields_of(excinfo) == ["currency"]

    def test_every_invalid_field_is_reported_at_once(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            saved(create()).add_variant(
                "v1", **variant(variant_sku="", base_price=Decimal(-1), weight_unit="t", height=Decimal(-1))
            )
        assert fields_of(excinfo) == ["base_price", "variant_sku", "weight_unit", "height"]

    def test_all_variants_of_a_product_share_one_currency(self) -> None:
        product = with_variants(1, currency="EUR")
        product.add_variant("v2", **variant(variant_sku="LAMP-2", currency="EUR"))
        with pytest.raises(CurrencyMismatch) as excinfo:
            product.add_variant("v3", **variant(variant_sku="LAMP-3", currency="USD"))
        assert isinstance(excinfo.value, Conflict)
        assert [v.variant_id for v in product.variants] == ["v1", "v2"]

    def test_variant_sku_is_unique_within_the_product(self) -> None:
        with pytest.raises(VariantSkuTaken) as excinfo:
            with_variants(1).add_variant("v2", **variant(variant_sku="LAMP-1"))
        assert isinstance(excinfo.value, Conflict)

    def test_variant_sku_differing_in_case_is_another_sku(self) -> None:
        product = with_variants(1)
        product.add_variant("v2", **variant(variant_sku="lamp-1"))
        assert len(product.variants) == 2

    def test_the_same_variant_id_cannot_be_added_twice(self) -> None:
        with pytest.raises(VariantExists):
            with_variants(1).add_variant("v1", **variant(variant_sku="OTHER"))

    def test_invalid_values_are_reported_before_conflicts(self) -> None:
        with pytest.raises(Invalid):
            with_variants(1).add_variant(
                "v1", **variant(variant_sku="LAMP-1", currency="EUR", base_price=Decimal(0))
            )


class TestChangePrice:
    def test_price_change_names_previous_and_new_price(self) -> None:
        product = with_variants(1)
        product.change_price("v1", base_price=Decimal("89.5"), now=LATER)
        assert only_event(product) == events.VariantPriceChanged(
            product_id="p-1",
            variant_id="v1",
            previous_price=Decimal("100.00"),
            new_price=Decimal("89.50"),
            previous_currency="USD",
            currency="USD",
        )
        assert str(product.variant("v1").base_price) == "89.50"
        assert product.state.updated_at == LATER

    def test_tier_prices_are_kept(self) -> None:
        product = with_variants(1)
        product.set_tier_price("v1", tier="Gold", price=Decimal("80"), now=NOW)
        product.change_price("v1", base_price=Decimal("90"), now=LATER)
        assert product.variant("v1").tier_prices == {Tier.GOLD: Decimal("80.00")}

    @pytest.mark.parametrize("new_price", ["80.00", "79.99", "1"])
    def test_base_price_must_stay_above_every_tier_price(self, new_price: str) -> None:
        product = with_variants(1)
        product.set_tier_price("v1", tier="Silver", price=Decimal("90"), now=NOW)
        product.set_tier_price("v1", tier="Platinum", price=Decimal("80"), now=NOW)
        saved(product)
        with pytest.raises(TierPriceNotBelowBase) as excinfo:
            product.change_price("v1", base_price=Decimal(new_price), now=LATER)
        assert isinstance(excinfo.value, Conflict)
        assert product.variant("v1").base_price == Decimal("100.00")
        assert product.pending_events == []

    def test_base_price_just_above_the_highest_tier_price_is_accepted(self) -> None:
        product = with_variants(1)
        product.set_tier_price("v1", tier="Silver", price=Decimal("90"), now=NOW)
        product.change_price("v1", base_price=Decimal("90.01"), now=LATER)
        assert product.variant("v1").base_price == Decimal("90.01")

    def test_same_price_raises_no_event(self) -> None:
        product = with_variants(1)
        product.change_price("v1", base_price=Decimal("100"), now=LATER)
        product.change_price("v1", base_price=Decimal("100.000"), currency="USD", now=LATER)
        assert product.pending_events == []
        assert product.state.updated_at == NOW

    def test_price_digits_follow_the_currency(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            with_variants(1).change_price("v1", base_price=Decimal("99.999"), now=LATER)
        assert fields_of(excinfo) == ["base_price"]
        with pytest.raises(Invalid):
            with_variants(1, currency="JPY").change_price("v1", base_price=Decimal("99.5"), now=LATER)

    def test_currency_may_change_on_the_only_variant(self) -> None:
        product = with_variants(1)
        product.change_price("v1", base_price=Decimal(15000), currency="JPY", now=LATER)
        changed = only_event(product)
        assert isinstance(changed, events.VariantPriceChanged)
        assert (changed.previous_currency, changed.currency, str(changed.new_price)) == (
            "USD",
            "JPY",
            "15000",
        )
        assert product.variant("v1").currency is Currency.JPY

    def test_currency_cannot_change_while_other_variants_exist(self) -> None:
        product = with_variants(2)
        with pytest.raises(CurrencyMismatch):
            product.change_price("v1", base_price=Decimal(100), currency="EUR", now=LATER)
        assert product.variant("v1").currency is USD

    def test_kept_tier_prices_are_re_expressed_in_the_new_currency(self) -> None:
        product = with_variants(1)
        product.set_tier_price("v1", tier="Gold", price=Decimal("80"), now=NOW)
        product.change_price("v1", base_price=Decimal(15000), currency="JPY", now=LATER)
        assert str(product.variant("v1").tier_prices[Tier.GOLD]) == "80"

    def test_a_tier_price_the_new_currency_cannot_express_is_a_conflict(self) -> None:
        product = with_variants(1)
        product.set_tier_price("v1", tier="Gold", price=Decimal("80.50"), now=NOW)
        saved(product)
        with pytest.raises(TierPriceCurrencyMismatch) as excinfo:
            product.change_price("v1", base_price=Decimal(15000), currency="KRW", now=LATER)
        assert isinstance(excinfo.value, Conflict)
        assert product.variant("v1").currency is USD

    def test_new_currency_must_keep_the_base_above_the_tier_prices(self) -> None:
        product = with_variants(1)
        product.set_tier_price("v1", tier="Gold", price=Decimal("80"), now=NOW)
        with pytest.raises(TierPriceNotBelowBase):
            product.change_price("v1", base_price=Decimal(80), currency="JPY", now=LATER)

    def test_unknown_currency_is_invalid(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            with_variants(1).change_price("v1", base_price=Decimal(1), currency="XBT", now=LATER)
        assert fields_of(excinfo) == ["currency"]

    def test_unknown_variant_is_not_found(self) -> None:
        with pytest.raises(VariantNotFound) as excinfo:
            with_variants(1).change_price("nope", base_price=Decimal(1), now=LATER)
        assert isinstance(excinfo.value, NotFound)
        assert str(excinfo.value) == "variant nope does not exist"

    def test_unknown_variant_is_reported_before_invalid_values(self) -> None:
        with pytest.raises(NotFound):
            with_variants(1).change_price("nope", base_price=Decimal(-1), now=LATER)

    def test_invalid_values_are_reported_before_conflicts(self) -> None:
        with pytest.raises(Invalid):
            with_variants(2).change_price("v1", base_price=Decimal("1.001"), currency="EUR", now=LATER)


class TestSetTierPrice:
    @pytest.mark.parametrize("tier", ["Silver", "Gold", "Platinum"])
    def test_tier_price_set_carries_price_and_currency(self, tier: str) -> None:
        product = with_variants(1)
        product.set_tier_price("v1", tier=tier, price=Decimal("89.9"), now=LATER)
        assert only_event(product) == events.TierPriceSet(
            product_id="p-1", variant_id="v1", tier=tier, price=Decimal("89.90"), currency="USD"
        )
        assert product.variant("v1").tier_prices == {Tier(tier): Decimal("89.90")}
        assert product.state.updated_at == LATER

    def test_setting_a_tier_again_replaces_only_its_price(self) -> None:
        product = with_variants(1)
        product.set_tier_price("v1", tier="Silver", price=Decimal("95"), now=NOW)
        product.set_tier_price("v1", tier="Gold", price=Decimal("90"), now=NOW)
        product.set_tier_price("v1", tier="Silver", price=Decimal("94"), now=NOW)
        assert product.variant("v1").tier_prices == {Tier.SILVER: Decimal("94"), Tier.GOLD: Decimal("90")}

    @pytest.mark.parametrize("tier", ["Standard", "silver", "Diamond", "", None])
    def test_standard_or_unknown_tier_is_invalid(self, tier: Any) -> None:
        with pytest.raises(Invalid) as excinfo:
            with_variants(1).set_tier_price("v1", tier=tier, price=Decimal(50), now=LATER)
        assert fields_of(excinfo) == ["tier"]

    @pytest.mark.parametrize(
        ("currency", "price"),
        [("USD", "50.001"), ("JPY", "50.5"), ("KRW", "0.1"), ("USD", "0"), ("USD", "-5")],
    )
    def test_price_is_checked_in_the_variant_currency(self, currency: str, price: str) -> None:
        with pytest.raises(Invalid) as excinfo:
            with_variants(1, currency=currency).set_tier_price(
                "v1", tier="Gold", price=Decimal(price), now=LATER
            )
        assert fields_of(excinfo) == ["price"]

    def test_yen_tier_price_is_whole(self) -> None:
        product = with_variants(1, currency="JPY")
        product.set_tier_price("v1", tier="Gold", price=Decimal("50.00"), now=LATER)
        assert str(product.variant("v1").tier_prices[Tier.GOLD]) == "50"

    @pytest.mark.parametrize("price", ["100", "100.00", "100.01", "5000"])
    def test_tier_price_must_be_below_the_base_price(self, price: str) -> None:
        product = with_variants(1)
        with pytest.raises(TierPriceNotBelowBase) as excinfo:
            product.set_tier_price("v1", tier="Gold", price=Decimal(price), now=LATER)
        assert isinstance(excinfo.value, Conflict)
        assert product.variant("v1").tier_prices == {}

    def test_same_tier_price_raises_no_event(self) -> None:
        product = with_variants(1)
        product.set_tier_price("v1", tier="Gold", price=Decimal("80"), now=NOW)
        saved(product)
        product.set_tier_price("v1", tier="Gold", price=Decimal("80.00"), now=LATER)
        assert product.pending_events == []
        assert product.state.updated_at == NOW

    def test_unknown_variant_is_reported_before_invalid_values(self) -> None:
        with pytest.raises(VariantNotFound):
            with_variants(1).set_tier_price("nope", tier="Standard", price=Decimal(-1), now=LATER)

    def test_every_invalid_field_is_reported_at_once(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            with_variants(1).set_tier_price("v1", tier="Standard", price=Decimal(0), now=LATER)
        assert fields_of(excinfo) == ["tier", "price"]

    def test_invalid_values_are_reported_before_conflicts(self) -> None:
        with pytest.raises(Invalid):
            with_variants(1).set_tier_price("v1", tier="Gold", price=Decimal("200.001"), now=LATER)


class TestAddImage:
    def test_first_image_is_primary_and_first_in_order(self) -> None:
        product = saved(create())
        added = product.add_image("i1", url="https://cdn.example.com/1.jpg", alt_text="  Front ", now=LATER)
        assert only_event(product) == events.ProductImageAdded(
            product_id="p-1",
            image_id="i1",
            url="https://cdn.example.com/1.jpg",
            alt_text="Front",
            is_primary=True,
            display_order=0,
            previous_primary_id=None,
        )
        assert added == product.image("i1")
        assert primaries(product) == ["i1"]
        assert product.state.updated_at == LATER

    def test_later_images_follow_in_display_order_without_the_flag(self) -> None:
        product = with_images(3)
        assert [(i.image_id, i.display_order, i.is_primary) for i in product.images] == [
            ("i1", 0, True),
            ("i2", 1, False),
            ("i3", 2, False),
        ]

    def test_adding_a_primary_image_moves_the_flag(self) -> None:
        product = with_images(2)
        product.add_image("i3", url="https://cdn.example.com/3.jpg", is_primary=True, now=LATER)
        added = only_event(product)
        assert isinstance(added, events.ProductImageAdded)
        assert (added.is_primary, added.previous_primary_id) == (True, "i1")
        assert primaries(product) == ["i3"]

    def test_first_image_added_as_primary_displaces_nothing(self) -> None:
        product = saved(create())
        product.add_image("i1", url="https://cdn.example.com/1.jpg", is_primary=True, now=LATER)
        added = only_event(product)
        assert isinstance(added, events.ProductImageAdded)
        assert added.previous_primary_id is None

    def test_display_order_continues_after_the_highest_even_after_removals(self) -> None:
        product = with_images(3)
        product.remove_image("i3", now=LATER)
        product.remove_image("i1", now=LATER)
        assert product.add_image("i4", url="https://cdn.example.com/4.jpg", now=LATER).display_order == 2

    def test_a_product_holds_at_most_ten_images(self) -> None:
        product = with_images(MAX_IMAGES - 1)
        product.add_image("i10", url="https://cdn.example.com/10.jpg", now=LATER)
        assert len(product.images) == 10
        with pytest.raises(ImageLimitReached) as excinfo:
            product.add_image("i11", url="https://cdn.example.com/11.jpg", now=LATER)
        assert isinstance(excinfo.value, Conflict)
        assert len(product.images) == 10

    def test_the_same_image_id_cannot_be_added_twice(self) -> None:
        with pytest.raises(ImageExists):
            with_images(1).add_image("i1", url="https://cdn.example.com/x.jpg", now=LATER)

    @pytest.mark.parametrize(
        ("given", "field"),
        [
            ({"url": "ftp://cdn.example.com/1.jpg"}, "url"),
            ({"url": "https://cdn.example.com/" + "a" * 480}, "url"),
            ({"alt_text": "x" * 256}, "alt_text"),
            ({"is_primary": "yes"}, "is_primary"),
            ({"is_primary": None}, "is_primary"),
        ],
    )
    def test_invalid_value_names_its_field(self, given: dict[str, Any], field: str) -> None:
        fields = {"url": "https://cdn.example.com/1.jpg"} | given
        with pytest.raises(Invalid) as excinfo:
            saved(create()).add_image("i1", **fields, now=LATER)
        assert fields_of(excinfo) == [field]

    def test_alt_text_is_optional_up_to_255_characters(self) -> None:
        product = saved(create())
        assert (
            product.add_image("i1", url="https://x.io/1", alt_text="x" * 255, now=LATER).alt_text == "x" * 255
        )
        assert product.add_image("i2", url="https://x.io/2", alt_text=" ", now=LATER).alt_text is None

    def test_invalid_values_are_reported_before_the_image_limit(self) -> None:
        with pytest.raises(Invalid):
            with_images(10).add_image("i11", url="not a url", now=LATER)


class TestRemoveImage:
    def test_removing_the_primary_makes_the_first_remaining_image_primary(self) -> None:
        product = with_images(3)
        product.remove_image("i1", now=LATER)
        assert only_event(product) == events.ProductImageRemoved(
            product_id="p-1", image_id="i1", new_primary_id="i2"
        )
        assert primaries(product) == ["i2"]
        assert product.state.updated_at == LATER

    def test_the_new_primary_is_the_lowest_in_display_order(self) -> None:
        product = with_images(3)
        product.add_image("i4", url="https://cdn.example.com/4.jpg", is_primary=True, now=NOW)
        product.remove_image("i2", now=NOW)
        product.remove_image("i4", now=LATER)
        assert primaries(product) == ["i1"]

    def test_removing_another_image_keeps_the_primary(self) -> None:
        product = with_images(3)
        product.remove_image("i2", now=LATER)
        assert only_event(product) == events.ProductImageRemoved(
            product_id="p-1", image_id="i2", new_primary_id=None
        )
        assert primaries(product) == ["i1"]
        assert [i.display_order for i in product.images] == [0, 2]

    def test_the_last_image_may_be_removed(self) -> None:
        product = with_images(1)
        product.remove_image("i1", now=LATER)
        assert product.images == ()

    def test_unknown_image_is_not_found(self) -> None:
        with pytest.raises(ImageNotFound) as excinfo:
            with_images(1).remove_image("nope", now=LATER)
        assert isinstance(excinfo.value, NotFound)
        assert str(excinfo.value) == "image nope does not exist"


class TestLifecycle:
    @pytest.mark.parametrize(
        ("start", "action", "end", "event"),
        [
            (ProductStatus.DRAFT, "activate", ProductStatus.ACTIVE, events.ProductActivated),
            (ProductStatus.ACTIVE, "discontinue", ProductStatus.DISCONTINUED, events.ProductDiscontinued),
            (ProductStatus.DISCONTINUED, "archive", ProductStatus.ARCHIVED, events.ProductArchived),
        ],
    )
    def test_allowed_transition(
        self, start: ProductStatus, action: str, end: ProductStatus, event: type[Event]
    ) -> None:
        product = in_status(start)
        getattr(product, action)(now=LATER)
        assert only_event(product) == event(product_id="p-1")  # type: ignore[call-arg]
        assert product.status is end
        assert product.state.updated_at == LATER

    @pytest.mark.parametrize(
        ("start", "action"),
        [
            (ProductStatus.DRAFT, "discontinue"),
            (ProductStatus.DRAFT, "archive"),
            (ProductStatus.ACTIVE, "activate"),
            (ProductStatus.ACTIVE, "archive"),
            (ProductStatus.DISCONTINUED, "activate"),
            (ProductStatus.DISCONTINUED, "discontinue"),
        ],
    )
    def test_refused_transition(self, start: ProductStatus, action: str) -> None:
        product = in_status(start)
        with pytest.raises(TransitionNotAllowed) as excinfo:
            getattr(product, action)(now=LATER)
        assert isinstance(excinfo.value, Conflict)
        assert product.status is start
        assert product.pending_events == []

    def test_activation_needs_a_variant(self) -> None:
        product = saved(create())
        with pytest.raises(VariantRequired) as excinfo:
            product.activate(now=LATER)
        assert isinstance(excinfo.value, Conflict)
        assert product.status is ProductStatus.DRAFT

    def test_a_discontinued_product_without_variants_is_refused_for_its_status(self) -> None:
        with pytest.raises(TransitionNotAllowed):
            in_status(ProductStatus.DISCONTINUED).activate(now=LATER)


class TestArchivedProduct:
    COMMANDS: dict[str, Callable[[Product], object]] = {
        "update_details": lambda p: p.update_details(title="New", now=LATER),
        "update_details_without_change": lambda p: p.update_details(now=LATER),
        "add_variant": lambda p: p.add_variant("v9", **variant(variant_sku="NEW-1")),
        "add_invalid_variant": lambda p: p.add_variant("v9", **variant(base_price=Decimal(-1))),
        "change_price": lambda p: p.change_price("v1", base_price=Decimal(50), now=LATER),
        "change_price_of_unknown_variant": lambda p: p.change_price(
            "nope", base_price=Decimal(50), now=LATER
        ),
        "set_tier_price": lambda p: p.set_tier_price("v1", tier="Gold", price=Decimal(50), now=LATER),
        "set_invalid_tier_price": lambda p: p.set_tier_price(
            "v1", tier="Standard", price=Decimal(500), now=LATER
        ),
        "add_image": lambda p: p.add_image("i9", url="https://cdn.example.com/9.jpg", now=LATER),
        "remove_image": lambda p: p.remove_image("nope", now=LATER),
        "activate": lambda p: p.activate(now=LATER),
        "discontinue": lambda p: p.discontinue(now=LATER),
        "archive": lambda p: p.archive(now=LATER),
        "file_under": lambda p: p.file_under(None, now=LATER),
        "change_visibility": lambda p: p.change_visibility(visibility="Unlisted", now=LATER),
        "change_invalid_visibility": lambda p: p.change_visibility(visibility="Private", now=LATER),
        "update_variant": lambda p: p.update_variant("v1", weight_value=Decimal(1), now=LATER),
        "update_unknown_variant": lambda p: p.update_variant("nope", now=LATER),
        "deactivate_variant": lambda p: p.deactivate_variant("v1", now=LATER),
        "activate_variant": lambda p: p.activate_variant("v1", now=LATER),
        "make_primary": lambda p: p.make_primary("nope", now=LATER),
        "reorder_images": lambda p: p.reorder_images(["nope"], now=LATER),
    }

    @pytest.mark.parametrize("command", list(COMMANDS))
    def test_archived_product_refuses_every_command_first(self, command: str) -> None:
        product = in_status(ProductStatus.ARCHIVED)
        before = product.state
        with pytest.raises(ProductArchived) as excinfo:
            self.COMMANDS[command](product)
        assert isinstance(excinfo.value, Conflict)
        assert product.state == before
        assert product.pending_events == []


class TestFileUnder:
    def test_moves_to_an_active_category_naming_the_one_it_left(self) -> None:
        product = saved(create(category=category()))
        target = category(1)
        product.file_under(target, now=LATER)
        assert product.state.category_id == target.id
        assert only_event(product) == events.ProductCategoryChanged(
            product_id="p-1", category_id=target.id, previous_category_id="cat-0"
        )
        assert product.state.updated_at == LATER

    def test_null_files_it_in_none(self) -> None:
        product = saved(create(category=category()))
        product.file_under(None, now=LATER)
        assert product.state.category_id is None
        assert only_event(product) == events.ProductCategoryChanged(
            product_id="p-1", category_id=None, previous_category_id="cat-0"
        )

    def test_an_inactive_category_is_a_conflict(self) -> None:
        product = saved(create())
        with pytest.raises(CategoryInactive):
            product.file_under(category(active=False), now=LATER)
        assert product.pending_events == [] and product.state.category_id is None

    @pytest.mark.parametrize("active", [True, False])
    def test_its_own_category_changes_nothing(self, active: bool) -> None:
        filed = category()
        product = saved(create(category=filed))
        if not active:
            filed.deactivate(now=NOW)
        product.file_under(filed, now=LATER)
        assert product.pending_events == [] and product.version == 1

    def test_none_when_in_none_changes_nothing(self) -> None:
        product = saved(create())
        product.file_under(None, now=LATER)
        assert product.pending_events == []


class TestChangeVisibility:
    def test_tier_restricted_to_a_tier(self) -> None:
        product = saved(create())
        product.change_visibility(visibility="Tier_Restricted", restricted_to_tier="Gold", now=LATER)
        assert (product.state.visibility, product.state.restricted_to_tier) == (
            Visibility.TIER_RESTRICTED,
            Tier.GOLD,
        )
        assert only_event(product) == events.ProductVisibilityChanged(
            product_id="p-1", visibility="Tier_Restricted", restricted_to_tier="Gold"
        )

    def test_the_tier_defaults_to_silver(self) -> None:
        product = saved(create(visibility="Tier_Restricted", restricted_to_tier="Platinum"))
        product.change_visibility(visibility="Unlisted", now=LATER)
        assert product.state.restricted_to_tier == Tier.SILVER

    def test_the_same_visibility_changes_nothing(self) -> None:
        product = saved(create())
        product.change_visibility(visibility="Public", now=LATER)
        assert product.pending_events == []

    def test_unknown_values_are_invalid_naming_each_field(self) -> None:
        product = saved(create())
        with pytest.raises(Invalid) as excinfo:
            product.change_visibility(visibility="Private", restricted_to_tier="Standard", now=LATER)
        assert fields_of(excinfo) == ["visibility", "restricted_to_tier"]
        assert product.pending_events == []


class TestUpdateVariant:
    def test_given_fields_change_and_the_event_carries_them_all(self) -> None:
        product = with_variants(2, attributes={"colour": "red"}, weight_value=Decimal(2))
        product.update_variant("v2", length=Decimal("30.5"), dimension_unit="in", now=LATER)
        changed = product.variant("v2")
        assert (changed.length, changed.dimension_unit, changed.weight_value) == (Decimal("30.5"), "in", 2)
        assert changed.attributes == {"colour": "red"}
        assert product.variant("v1").length is None
        assert only_event(product) == events.VariantUpdated(
            product_id="p-1", variant_id="v2", attributes={"colour": "red"}, weight_value=Decimal(2),
            weight_unit="kg", length=Decimal("30.5"), width=None, height=None, dimension_unit="in",
        )  # fmt: skip

    def test_none_clears_a_measure(self) -> None:
        product = with_variants(1, weight_value=Decimal(2))
        product.update_variant("v1", weight_value=None, now=LATER)
        assert product.variant("v1").weight_value is None

    def test_nothing_new_changes_nothing(self) -> None:
        product = with_variants(1, weight_value=Decimal(2))
        product.update_variant("v1", weight_value=Decimal("2.0"), now=LATER)
        product.update_variant("v1", now=LATER)
        assert product.pending_events == []

    def test_values_are_checked_as_on_adding(self) -> None:
        product = with_variants(1)
        with pytest.raises(Invalid) as excinfo:
            product.update_variant(
                "v1", weight_value=Decimal(-1), weight_unit="stone", height=Decimal("0.1234567"),
                attributes=["red"], now=LATER,
            )  # fmt: skip
        assert sorted(fields_of(excinfo)) == ["attributes", "height", "weight_unit", "weight_value"]

    def test_an_unknown_variant_is_not_found_before_its_values(self) -> None:
        with pytest.raises(VariantNotFound):
            with_variants(1).update_variant("nope", weight_unit="stone", now=LATER)


class TestVariantActivation:
    def test_deactivating_and_activating_again(self) -> None:
        product = with_variants(2)
        product.deactivate_variant("v2", now=LATER)
        assert not product.variant("v2").is_active
        assert product.pending_events == [events.VariantDeactivated(product_id="p-1", variant_id="v2")]
        product.activate_variant("v2", now=LATER)
        assert product.variant("v2").is_active
        assert product.pending_events[-1] == events.VariantActivated(product_id="p-1", variant_id="v2")

    def test_an_active_product_keeps_one_active_variant(self) -> None:
        product = in_status(ProductStatus.ACTIVE)
        with pytest.raises(ActiveVariantRequired):
            product.deactivate_variant("v1", now=LATER)
        assert product.pending_events == [] and product.variant("v1").is_active

    @pytest.mark.parametrize("status", [ProductStatus.DRAFT, ProductStatus.DISCONTINUED])
    def test_a_product_not_on_sale_may_deactivate_its_last_variant(self, status: ProductStatus) -> None:
        product = in_status(status)
        product.deactivate_variant("v1", now=LATER)
        assert not product.variant("v1").is_active

    def test_deactivating_an_inactive_variant_is_a_conflict(self) -> None:
        product = with_variants(2)
        product.deactivate_variant("v1", now=LATER)
        with pytest.raises(VariantAlreadyInactive):
            product.deactivate_variant("v1", now=LATER)

    def test_activating_an_active_variant_is_a_conflict(self) -> None:
        with pytest.raises(VariantAlreadyActive):
            with_variants(1).activate_variant("v1", now=LATER)

    def test_a_draft_needs_an_active_variant_to_be_activated(self) -> None:
        product = with_variants(1)
        product.deactivate_variant("v1", now=LATER)
        with pytest.raises(VariantRequired):
            product.activate(now=LATER)
        product.activate_variant("v1", now=LATER)
        product.activate(now=LATER)
        assert product.status == ProductStatus.ACTIVE

    def test_an_unknown_variant_is_not_found(self) -> None:
        with pytest.raises(VariantNotFound):
            with_variants(1).deactivate_variant("nope", now=LATER)


class TestMakePrimary:
    def test_the_flag_moves_and_the_event_names_the_image_that_lost_it(self) -> None:
        product = with_images(3)
        product.make_primary("i3", now=LATER)
        assert primaries(product) == ["i3"]
        assert only_event(product) == events.PrimaryImageChanged(
            product_id="p-1", image_id="i3", previous_primary_id="i1"
        )
        assert [i.image_id for i in product.images] == ["i1", "i2", "i3"]

    def test_the_primary_already_changes_nothing(self) -> None:
        product = with_images(2)
        product.make_primary("i1", now=LATER)
        assert product.pending_events == [] and product.version == 3

    def test_an_unknown_image_is_not_found(self) -> None:
        with pytest.raises(ImageNotFound):
            with_images(1).make_primary("nope", now=LATER)


class TestReorderImages:
    def test_display_order_follows_the_list_and_the_primary_stays(self) -> None:
        product = with_images(3)
        product.reorder_images(["i3", "i1", "i2"], now=LATER)
        assert [(i.image_id, i.display_order) for i in product.images] == [("i3", 0), ("i1", 1), ("i2", 2)]
        assert primaries(product) == ["i1"]
        assert only_event(product) == events.ProductImagesReordered(
            product_id="p-1", image_ids=["i3", "i1", "i2"]
        )

    def test_the_current_order_changes_nothing(self) -> None:
        product = with_images(3)
        product.reorder_images(["i1", "i2", "i3"], now=LATER)
        assert product.pending_events == []

    @pytest.mark.parametrize(
        "image_ids",
        [[], ["i1", "i2"], ["i1", "i2", "i3", "i3"], ["i1", "i2", "i9"], ["i1", "i2", "i3", "i9"], ["i1", "i1", "i2"],
         "i1,i2,i3", [1, 2, 3], ["i1", None, "i3"]],
    )  # fmt: skip
    def test_every_image_exactly_once_else_invalid(self, image_ids: Any) -> None:
        product = with_images(3)
        with pytest.raises(Invalid) as excinfo:
            product.reorder_images(image_ids, now=LATER)
        assert fields_of(excinfo) == ["image_ids"]
        assert product.pending_events == []

    def test_an_empty_gallery_takes_an_empty_list(self) -> None:
        product = saved(create())
        product.reorder_images([], now=LATER)
        assert product.pending_events == []


class TestUpdatedAt:
    def test_every_change_moves_updated_at_and_bumps_the_version(self) -> None:
        product = create()
        steps: list[Callable[[datetime], object]] = [
            lambda t: product.update_details(brand="Lumen", now=t),
            lambda t: product.add_variant("v1", **variant(now=t)),
            lambda t: product.change_price("v1", base_price=Decimal(90), now=t),
            lambda t: product.set_tier_price("v1", tier="Gold", price=Decimal(80), now=t),
            lambda t: product.add_image("i1", url="https://cdn.example.com/1.jpg", now=t),
            lambda t: product.remove_image("i1", now=t),
            lambda t: product.activate(now=t),
            lambda t: product.discontinue(now=t),
            lambda t: product.archive(now=t),
        ]
        for minutes, step in enumerate(steps, start=1):
            moment = NOW + timedelta(minutes=minutes)
            step(moment)
            assert product.state.updated_at == moment
            assert product.version == minutes + 1
        assert product.state.created_at == NOW


class TestProductState:
    def test_state_round_trips_through_json_with_exact_money(self) -> None:
        product = with_variants(1, currency="JPY", base_price=Decimal(1500), weight_value=Decimal("0.25"))
        product.set_tier_price("v1", tier="Gold", price=Decimal(1200), now=NOW)
        product.add_image("i1", url="https://cdn.example.com/1.jpg", now=NOW)
        encoded = msgspec.json.encode(product.state)
        assert b'"base_price":"1500"' in encoded
        assert b'"tier_prices":{"Gold":"1200"}' in encoded
        assert msgspec.json.decode(encoded, type=ProductState) == product.state

    def test_events_carry_money_as_decimal_strings(self) -> None:
        product = with_variants(0)
        product.add_variant("v1", **variant(base_price=Decimal("19.9")))
        encoded = msgspec.json.encode(only_event(product))
        assert b'"base_price":"19.90"' in encoded


class TestCreateCategory:
    def test_root_category_is_active_at_level_zero(self) -> None:
        root = Category.create("cat-0", name="  Lighting ", parent=None, attributes={"icon": "lamp"}, now=NOW)
        assert only_event(root) == events.CategoryCreated(
            category_id="cat-0",
            name="Lighting",
            parent_category_id=None,
            level=0,
            attributes={"icon": "lamp"},
            is_active=True,
            display_order=0,
            created_at=NOW,
        )
        assert root.is_active and root.level == 0
        assert root.state.updated_at == NOW
        assert root.version == 1

    def test_child_is_one_level_below_its_parent(self) -> None:
        child = Category.create("cat-9", name="Desk lamps", parent=category(2), now=NOW)
        assert (child.state.parent_category_id, child.level) == ("cat-2", 3)
        assert child.state.attributes == {}

    def test_categories_nest_at_most_four_levels_below_a_root(self) -> None:
        assert category(MAX_LEVEL).level == 4
        with pytest.raises(CategoryTooDeep) as excinfo:
            Category.create("cat-5", name="Too deep", parent=category(MAX_LEVEL), now=NOW)
        assert isinstance(excinfo.value, Conflict)

    def test_an_inactive_parent_is_a_conflict(self) -> None:
        with pytest.raises(CategoryInactive) as excinfo:
            Category.create("cat-9", name="Desk lamps", parent=category(1, active=False), now=NOW)
        assert isinstance(excinfo.value, Conflict)

    def test_name_holds_1_to_100_characters(self) -> None:
        assert Category.create("c", name="x" * 100, parent=None, now=NOW).state.name == "x" * 100
        for bad in ("", "  ", "x" * 101, None, "a\x00b"):
            with pytest.raises(Invalid) as excinfo:
                Category.create("c", name=bad, parent=None, now=NOW)  # type: ignore[arg-type]
            assert fields_of(excinfo) == ["name"]

    def test_every_invalid_field_is_reported_at_once(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            Category.create("c", name="", parent=None, attributes={"a": "\x00"}, now=NOW)
        assert fields_of(excinfo) == ["name", "attributes"]

    def test_invalid_values_are_reported_before_conflicts(self) -> None:
        with pytest.raises(Invalid):
            Category.create("c", name="", parent=category(MAX_LEVEL, active=False), now=NOW)


class TestUpdateCategory:
    def test_details_updated_carries_name_and_attributes(self) -> None:
        node = category()
        node.update_details(name="Lights", now=LATER)
        assert only_event(node) == events.CategoryDetailsUpdated(
            category_id="cat-0", name="Lights", attributes={}
        )
        assert node.state.updated_at == LATER

    def test_none_empties_the_attributes(self) -> None:
        node = saved(Category.create("c", name="Lights", parent=None, attributes={"a": 1}, now=NOW))
        node.update_details(attributes=None, now=LATER)
        assert node.state.attributes == {}

    def test_no_change_raises_no_event(self) -> None:
        node = category()
        node.update_details(name=" Root ", attributes={}, now=LATER)
        node.update_details(now=LATER)
        assert node.pending_events == []
        assert node.state.updated_at == NOW

    def test_values_are_checked(self) -> None:
        with pytest.raises(Invalid) as excinfo:
            category().update_details(name="x" * 101, attributes=[], now=LATER)  # type: ignore[arg-type]
        assert fields_of(excinfo) == ["name", "attributes"]


class TestReorderCategory:
    def test_reordered_names_previous_and_new_order(self) -> None:
        node = category()
        node.reorder(3, now=LATER)
        assert only_event(node) == events.CategoryReordered(
            category_id="cat-0", previous_display_order=0, display_order=3
        )
        assert node.state.display_order == 3
        assert node.state.updated_at == LATER

    def test_same_order_raises_no_event(self) -> None:
        node = category()
        node.reorder(0, now=LATER)
        assert node.pending_events == []

    @pytest.mark.parametrize("order", [-1, 2_147_483_648, True, None])
    def test_order_out_of_range_is_invalid(self, order: Any) -> None:
        with pytest.raises(Invalid) as excinfo:
            category().reorder(order, now=LATER)
        assert fields_of(excinfo) == ["new_display_order"]


class TestDeactivateCategory:
    def test_deactivated_category_is_inactive(self) -> None:
        node = category()
        node.deactivate(now=LATER)
        assert only_event(node) == events.CategoryDeactivated(category_id="cat-0")
        assert not node.is_active
        assert node.state.updated_at == LATER

    def test_deactivating_an_inactive_category_is_a_conflict(self) -> None:
        node = category(active=False)
        with pytest.raises(CategoryAlreadyInactive) as excinfo:
            node.deactivate(now=LATER)
        assert isinstance(excinfo.value, Conflict)


def lineage(level: int, *, active: bool = True, prefix: str = "p") -> list[Category]:
    """A category at `level` and its ancestors, nearest first, under ids of their own."""
    nodes = [saved(Category.create(f"{prefix}-0", name="Root", parent=None, now=NOW))]
    for n in range(1, level + 1):
        nodes.append(saved(Category.create(f"{prefix}-{n}", name=f"P{n}", parent=nodes[-1], now=NOW)))
    if not active:
        nodes[-1].deactivate(now=NOW)
        saved(nodes[-1])
    return nodes[::-1]


def subtree(depth: int) -> tuple[Category, list[Category]]:
    """A root `m-0` with a chain of `depth` descendants below it."""
    nodes = lineage(depth, prefix="m")[::-1]
    return nodes[0], nodes[1:]


class TestMoveCategory:
    def test_the_category_moves_under_the_parent_and_its_subtree_shifts_levels(self) -> None:
        moved, below = subtree(2)
        moved.move(lineage(1), below, now=LATER)
        assert moved.pending_events == [
            events.CategoryMoved(
                category_id="m-0", previous_parent_category_id=None, parent_category_id="p-1", level=2
            )
        ]
        assert [only_event(d) for d in below] == [
            events.CategoryLevelChanged(category_id="m-1", level=3),
            events.CategoryLevelChanged(category_id="m-2", level=4),
        ]
        assert (moved.state.parent_category_id, moved.level, moved.state.updated_at) == ("p-1", 2, LATER)

    def test_becoming_a_root_lifts_the_subtree(self) -> None:
        moved, below = subtree(1)
        moved.move(lineage(2), below, now=LATER)
        for d in [moved, *below]:
            saved(d)
        moved.move([], below, now=LATER)
        assert (moved.state.parent_category_id, moved.level, below[0].level) == (None, 0, 1)

    def test_a_move_to_the_same_level_leaves_the_descendants_alone(self) -> None:
        _, child, grandchild = lineage(2)[::-1]
        child.move(lineage(0, prefix="r"), [grandchild], now=LATER)
        assert child.level == 1 and grandchild.pending_events == []

    def test_the_same_parent_is_no_change(self) -> None:
        chain = lineage(2)
        child = chain[0]
        child.move(chain[1:], [], now=LATER)
        assert child.pending_events == [] and child.version == 1

    def test_under_itself_or_a_descendant_is_a_cycle(self) -> None:
        chain = lineage(3)
        top = chain[-1]
        for parent in range(3):
            with pytest.raises(CategoryCycle) as excinfo:
                top.move(chain[parent:], [], now=LATER)
            assert isinstance(excinfo.value, Conflict)
        assert top.pending_events == []

    def test_no_node_of_the_subtree_may_go_below_level_4(self) -> None:
        moved, below = subtree(2)
        with pytest.raises(CategoryTooDeep):
            moved.move(lineage(2), below, now=LATER)  # the deepest would be at 5
        assert moved.pending_events == [] and all(d.pending_events == [] for d in below)
        with pytest.raises(CategoryTooDeep):
            saved(Category.create("x", name="X", parent=None, now=NOW)).move(lineage(4), [], now=LATER)
        moved.move(lineage(1), below, now=LATER)
        assert below[-1].level == MAX_LEVEL

    def test_an_inactive_parent_is_a_conflict(self) -> None:
        moved, below = subtree(0)
        with pytest.raises(CategoryInactive):
            moved.move(lineage(1, active=False), below, now=LATER)


class TestActivateCategory:
    def test_an_inactive_category_under_an_active_parent_is_active_again(self) -> None:
        node = category(1, active=False)
        node.activate(category(0), now=LATER)
        assert only_event(node) == events.CategoryActivated(category_id="cat-1")
        assert node.is_active and node.state.updated_at == LATER

    def test_a_root_needs_no_parent(self) -> None:
        node = category(active=False)
        node.activate(None, now=LATER)
        assert node.is_active

    def test_an_active_category_or_an_inactive_parent_is_a_conflict(self) -> None:
        with pytest.raises(CategoryAlreadyActive):
            category(1).activate(category(0), now=LATER)
        with pytest.raises(CategoryInactive):
            category(1, active=False).activate(category(0, active=False), now=LATER)


class TestErrorKinds:
    def test_every_catalogue_conflict_has_its_own_kind(self) -> None:
        from contexts.catalogue import errors

        conflicts = [
            c
            for c in vars(errors).values()
            if isinstance(c, type) and issubclass(c, Conflict) and c is not Conflict
        ]
        kinds = [c.kind for c in conflicts]
        assert len(conflicts) >= 14
        assert len(set(kinds)) == len(kinds)
        assert "conflict" not in kinds


CATALOGUE = Path(contexts.catalogue.__file__).parent
MODELS = ["product.py", "category.py", "values.py", "errors.py", "events.py", "variants.py", "images.py"]


class TestPurity:
    def test_no_catalogue_file_mentions_binary_floats(self) -> None:
        files = [p for p in CATALOGUE.rglob("*") if p.is_file() and p.suffix in (".py", ".sql")]
        assert files
        offending = [p.name for p in files if re.search("float", p.read_text(), re.IGNORECASE)]
        assert offending == []

    @pytest.mark.parametrize("name", MODELS)
    def test_model_files_do_no_io(self, name: str) -> None:
        tree = ast.parse((CATALOGUE / name).read_text())
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            assert not isinstance(node, ast.AsyncFunctionDef | ast.Await)
        assert not imported & {"asyncpg", "redis", "litestar", "shopstream", "anyio", "asyncio"}
        assert not any(module.startswith("contexts.identity") for module in _modules(tree))


def _modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


class TestBounds:
    def test_a_product_holds_at_most_100_variants(self):
        from contexts.catalogue.errors import VariantLimitReached
        from contexts.catalogue.variants import MAX_VARIANTS

        product = with_variants(MAX_VARIANTS)
        with pytest.raises(VariantLimitReached) as refused:
            product.add_variant("one-more", **variant(variant_sku="LAMP-MORE"))
        assert (
            refused.value.status == 409 and product.version == MAX_VARIANTS + 1
        )  # created, then its variants

    @pytest.mark.parametrize(
        ("attributes", "message"),
        [
            ({f"k{n}": n for n in range(101)}, "at most 100 keys per object"),
            ({"nested": {f"k{n}": n for n in range(101)}}, "at most 100 keys per object"),
            ({"text": "x" * (16 * 1024)}, "at most 16 KiB of JSON"),
        ],
    )
    def test_attributes_are_bounded(self, attributes, message):
        with pytest.raises(Invalid, match=message):
            values.attributes("attributes", attributes)
        assert values.attributes("attributes", {f"k{n}": n for n in range(100)})
